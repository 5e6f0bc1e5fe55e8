"""Domain adaptation end to end on the two embedded domains, and the paper target's plan."""
import json

import pytest
from helpers import REPO, snakemake, uda_config

from dars import paper
from dars.io import DarsError


@pytest.mark.e2e
def test_uda_chain_trains_on_the_source_and_labels_the_target(tmp_path):
    run = "results/synthetic_uda/split0/seed0"
    targets = [f"{run}/{m}/round1/miou.json" for m in ("dars", "dars_td", "st")] + [f"{run}/round0/miou.json"]
    proc = snakemake(tmp_path, "--cores", "2", *targets, config=uda_config())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    split = json.loads((tmp_path / run / "split/split.json").read_text())
    assert split["labeled_root"] == "results/synthetic_game/data" and split["labeled_layout"] == "gta5"
    assert split["num_labeled"] == 16 and split["num_unlabeled"] == 16  # every source / target train image
    labeled = (tmp_path / run / "split/labeled.txt").read_text().split()
    assert labeled[0].startswith("images/") and labeled[1].startswith("labels_trainIds/")
    unlabeled = (tmp_path / run / "split/unlabeled.txt").read_text().split()
    assert unlabeled[0].startswith("leftImg8bit/train/")
    # The source prior (DARS(SD)) comes from the game domain, the TD prior from the target val.
    prior = json.loads((tmp_path / run / "prior.json").read_text())
    td = json.loads((tmp_path / run / "prior_td.json").read_text())
    assert prior["root"] == "results/synthetic_game/data" and td["root"] == "results/synthetic_evidence/data"
    for m in ("dars", "dars_td", "st"):
        miou = json.loads((tmp_path / run / f"{m}/round1/miou.json").read_text())
        assert miou["source"] == "synthetic_game" and miou["num_images"] == 6 and miou["split"] == 0
        stats = json.loads((tmp_path / run / f"{m}/round1/pseudo_stats.json").read_text())
        assert stats["num_images"] == 16 and stats["gt"]["kl_true_pseudo"] is not None
    base = json.loads((tmp_path / run / "round0/miou.json").read_text())
    assert base["method"] == "baseline" and base["teacher"] is None


def test_uda_dataset_refuses_other_splits(tmp_path):
    proc = snakemake(tmp_path, "-n", "results/synthetic_uda/split8/seed0/round0/miou.json", config=uda_config())
    assert proc.returncode != 0 and "split0" in proc.stdout + proc.stderr


def test_paper_target_plans_every_table_and_figure(tmp_path):
    proc = snakemake(tmp_path, "-n", "paper", config=uda_config())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for name in paper.TABLES:
        assert f"results/paper/{name}.html" in out
    for name in paper.FIGURES:
        assert f"results/paper/{name}.png" in out
    assert "results/paper/summary.html" in out  # the tables beside the published ones
    # Sweeps share the chain they continue: no round-1 run of a sweep-only preset is planned.
    assert "dars_a30/round1" not in out and "dars_a30/round2" in out
    assert "round0_none" in out and "split1/seed2/round0_scaling" in out


def test_paper_specs_resolve_presets_into_runs():
    import yaml
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    s1 = paper.table_spec(config, "s1")
    assert list(s1["columns"]) == ["20%", "30%", "40%", "50%", "60%"]
    assert s1["columns"]["30%"] == [f"results/synthetic_evidence/split8/seed{s}/dars_a30/round2/miou.json"
                                    for s in (0, 1, 2)]
    assert all(paper.table_spec(config, t)["min_seeds"] >= 3 for t in paper.TABLES)  # paired, 3 seeds
    summary = paper.summary_spec(config)
    assert summary["tables"]["s7"] == "results/paper/s7.csv" and summary["split"] == "1/8"
    assert summary["roles"]["s4"]["supervised"] == "control" and summary["roles"]["s7"]["DARS (TD)"] == "dars_td"
    s3 = paper.table_spec(config, "s3")
    assert s3["rows"]["none"][0] == "results/synthetic_evidence/split1/seed0/round0_none/miou.json"
    assert s3["title"].endswith("round 0, at 4,000 of its 8,000 steps)")  # half the budget, said so
    s6 = paper.table_spec(config, "s6")
    assert s6["rows"]["DARS (TD)"][1] == "results/synthetic_uda/split0/seed1/dars_td/round1/miou.json"
    config["paper"]["alpha_sweep"]["70%"] = "nonexistent"
    with pytest.raises(DarsError, match="paper.alpha_sweep.70%"):
        paper.table_spec(config, "s1")


def test_specs_list_the_pseudo_stats_of_labeler_rows_only():
    """Which runs have a pseudo_stats.json comes from each preset's labeler, never from a directory
    name: a control preset under another name than `supervised` is no KL row and has none."""
    import yaml

    from dars import specs as spec_lists
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    s7 = paper.table_spec(config, "s7")
    assert list(s7["pseudo_stats"]) == [k for k in s7["rows"] if k != "Source only"]
    assert s7["pseudo_stats"]["DARS (TD)"][0] == "results/synthetic_uda/split0/seed0/dars_td/round1/pseudo_stats.json"
    config["methods"]["ctrl"] = dict(config["methods"]["supervised"])
    config["compare_methods"] = ["ctrl", "st", "dars"]
    specs = paper.run_specs(config, "synthetic", 8, 1)
    assert list(specs["pseudo_labels"]["rows"]) == list(specs["pseudo_labels"]["pseudo_stats"]) == ["st", "dars"]
    inputs = spec_lists.spec_inputs(specs["pseudo_labels"])
    assert "results/synthetic/split8/seed0/st/round1/pseudo_stats.json" in inputs
    assert not any("ctrl" in f or "round0" in f for f in inputs)
