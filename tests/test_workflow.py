"""End to end: Snakemake runs the whole chain on a tiny synthetic config; bad input fails clearly."""
import json

import cv2
import pandas as pd
import pytest
import yaml
from helpers import REPO, snakemake, tiny_config, write_cityscapes_tree


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    proc = snakemake(workdir, "--cores", "2", config=tiny_config())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    (workdir / "console.txt").write_text(proc.stdout + proc.stderr)
    return workdir


@pytest.mark.e2e
def test_the_default_run_ends_with_the_finding(finished_run):
    """The console's closing table: every method at rounds 1 and 2 with its gain against the
    control, then the two gates with their numbers (dars.finding)."""
    console = (finished_run / "console.txt").read_text()
    table = (finished_run / "results/synthetic/split4/finding.txt").read_text()
    assert table in console
    lines = table.splitlines()
    assert lines[0].startswith("Finding: synthetic, 1/4 split, seeds 0, 1: mIoU (%), gains against the "
                               "compute-matched control `supervised`")
    assert lines[1].startswith("round 0 (labeled images only): ") and "; oracle (every label): " in lines[1]
    assert lines[3].split() == ["method", "round", "1", "round", "2", "tail", "r1", "vs", "control", "r1", "vs",
                                "control", "r2"]
    widths = (12, 14, 14, 14, 20, 20)  # dars.finding: label, then COLUMNS
    cuts = [sum(widths[:k]) for k in range(len(widths) + 1)]
    rows = {line[:12].strip(): [line[a:b].strip() for a, b in zip(cuts[1:], cuts[2:])] for line in lines[4:8]}
    assert list(rows) == ["supervised", "ST", "CBST", "DARS"]
    csv = pd.read_csv(finished_run / "results/synthetic/split4/finding.csv").query("table == 'gates'")
    finding = dict(zip(csv["row"], csv["mean"]))
    for method, stage in (("ST", "st"), ("CBST", "cbst"), ("DARS", "dars")):
        per_seed = [json.loads((finished_run / f"results/synthetic/split4/seed{s}/{stage}/round1/miou.json")
                               .read_text())["miou"] - json.loads(
            (finished_run / f"results/synthetic/split4/seed{s}/supervised/round1/miou.json").read_text())["miou"]
            for s in (0, 1)]
        gain = 100 * sum(per_seed) / 2
        assert rows[method][3].startswith(f"{gain:+.1f}".replace("-0.0", "+0.0")), (method, gain, rows[method])
    assert all(rows[m][1] != "–" for m in ("supervised", "ST", "CBST", "DARS"))  # later_rounds: null = all
    assert rows["supervised"][3] == rows["supervised"][4] == "–"  # no gain against itself
    gates = [line for line in lines if line.startswith(("converged:", "label-limited:"))]
    assert len(gates) == 2 and all(("PASS" in g) != ("FAIL" in g) for g in gates)
    assert all(ok == ("PASS" in g) for ok, g in zip((finding["converged"], finding["label_limited"]), gates))


@pytest.mark.e2e
def test_pipeline_produces_every_artifact(finished_run):
    res = finished_run / "results/synthetic/split4"
    agg = json.loads((res / "round2/miou.json").read_text())
    assert agg["method"] == "dars" and agg["round"] == 2 and sorted(agg["seeds"]) == [0, 1]
    assert len(agg["per_seed"]) == 2 and 0 <= agg["miou_mean"] <= 1
    for seed in (0, 1):
        run = res / f"seed{seed}"
        for method in ("st", "cbst", "dars"):
            for r in (1, 2):
                stats = json.loads((run / f"{method}/round{r}/pseudo_stats.json").read_text())
                assert stats["labeler"] == method
                assert stats["alpha"] == [0.2, 0.5][r - 1]
                assert stats["kl_prior_pseudo"] is not None and stats["kl_pseudo_prior"] is not None
                listed = (run / f"{method}/round{r}/pseudo_labels.txt").read_text().splitlines()
                assert len(listed) == 24  # every unlabeled image, every round
                miou = json.loads((run / f"{method}/round{r}/miou.json").read_text())
                assert (miou["method"], miou["seed"], miou["round"]) == (method, seed, r)
                assert miou["split_source"] == "random" and miou["alpha"] == [0.2, 0.5][r - 1]
        assert json.loads((run / "round0/miou.json").read_text())["method"] == "baseline"
    table = (res / "round1/methods.md").read_text()
    for row in ("round 0", "supervised", "st", "cbst", "dars"):  # the report's per-class table
        assert f"| {row} " in table
    # Every rule left a log and a benchmark, and resumable state was cleaned up.
    assert (finished_run / "logs/synthetic/split4/seed0/round0/pretrain.log").is_file()
    assert (finished_run / "benchmarks/synthetic/split4/seed0/dars/round2/train.tsv").is_file()
    assert not list(res.glob("seed*/**/work/last.pt"))


@pytest.mark.e2e
def test_rerun_is_a_no_op(finished_run):
    proc = snakemake(finished_run, "-n", "--cores", "2")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_real_cityscapes_layout_plans_the_whole_chain(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes")
    config = tiny_config()
    config["datasets"]["cityscapes"]["root"] = str(root)
    # The authors' weights file is not here (tests/test_fidelity.py covers that plan-time error).
    config["datasets"]["cityscapes"]["train"]["backbone_weights"] = "torchvision"
    proc = snakemake(tmp_path, "-n", "results/cityscapes/split8/round2/miou.json", config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("split", "distribution", "pretrain", "infer", "pseudo_stats", "pseudo_thresholds",
                 "pseudo_label", "pseudo_merge", "train", "evaluate", "aggregate"):
        assert f"rule {rule}:" in out or f"\n{rule} " in out, rule
    assert "synthesize" not in out


@pytest.mark.parametrize("change, message", [
    ({"default_method": "dars2"}, "default_method"),
    ({"roundz": 2}, "roundz"),
    ({"methods": {"dars": {"labeler": "dars", "alpha": [0.2, 1.5]}}}, "1.5"),
    ({"methods": {"dars": {"labeler": "darts", "alpha": [0.2, 0.5]}}}, "darts"),
    ({"methods": {"dars": {"labeler": "dars", "scale_enlarge": [[0, 0]]}}}, "scale_enlarge"),
    ({"methods": {"dars2": {"labeler": "dars", "continues": "supervised"}}}, "continues"),
    ({"datasets": {"x": {"root": "results/x/data", "source": "nowhere"}}}, "datasets.x.source"),
])
def test_bad_config_stops_with_a_clear_error(tmp_path, change, message):
    config = tiny_config()
    for key in ("methods", "datasets"):
        if key in change:
            config[key].update(change.pop(key))
    config.update(change)
    proc = snakemake(tmp_path, "-n", config=config)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_missing_dataset_root_names_the_key_and_path(tmp_path):
    config = tiny_config()
    config["datasets"]["cityscapes"]["root"] = str(tmp_path / "nowhere")
    proc = snakemake(tmp_path, "-n", "results/cityscapes/split8/round1/miou.json", config=config)
    assert proc.returncode != 0
    assert "datasets.cityscapes.root" in proc.stderr + proc.stdout and "nowhere" in proc.stderr + proc.stdout


@pytest.mark.parametrize("section, where, key", [
    ("train", "synthetic", "pretrain_stepz"),
    ("evaluate", "synthetic", "mode_"),
    ("train", None, "scale_rang"),   # a pretrain preset (round0_<name>) overrides train: keys too
])
def test_typo_in_an_override_section_is_refused_by_name(tmp_path, section, where, key):
    config = tiny_config()
    if where is None:
        config["pretrain_presets"]["none"][key] = [1.0, 1.0]
    else:
        config["datasets"][where][section] = {key: 5}
    proc = snakemake(tmp_path, "-n", config=config)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr


def test_override_sections_accept_every_key_of_their_section():
    """datasets.<name>.train/.evaluate and pretrain presets are closed: each must list every key
    the top-level section has, or a valid override would be refused."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    for section in ("train", "evaluate"):
        overrides = schema["$defs"][f"{section}_overrides"]["properties"]
        assert overrides.keys() == schema["properties"][section]["properties"].keys(), section
        for key, ref in overrides.items():
            assert ref == {"$ref": f"#/properties/{section}/properties/{key}"}, key  # no default of its own


def test_a_tree_that_needs_prepare_fails_the_plan_naming_the_command(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", trainids=False)  # labels not prepared yet
    config = tiny_config()
    config["datasets"]["cityscapes"]["root"] = str(root)
    proc = snakemake(tmp_path, "-n", "results/cityscapes/split8/round2/miou.json", config=config)
    assert proc.returncode != 0
    assert f"python -m dars prepare cityscapes {root}" in proc.stdout + proc.stderr


@pytest.mark.e2e
def test_a_failed_stage_shows_its_own_message_on_the_console(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes")
    label = sorted((root / "gtFine/train").rglob("*_labelTrainIds.png"))[0]
    y = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    y[5, 5] = 50  # a labelId where a trainId belongs: the split stage refuses it, naming the file
    cv2.imwrite(str(label), y)
    config = tiny_config()
    config["datasets"]["cityscapes"]["root"] = str(root)
    proc = snakemake(tmp_path, "--cores", "1", "results/cityscapes/split1/seed0/split/split.json", config=config)
    assert proc.returncode != 0
    console = proc.stdout + proc.stderr
    assert f"{label}: label id 50 is neither a class" in console  # the stage's error, from its log
    assert "logs/cityscapes/split1/seed0/split.log" in console
