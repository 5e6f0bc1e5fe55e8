"""The evidence target: its DAG end to end on a tiny config, the `truth` labeler, paired gains and gates."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO, snakemake, tiny_config

from dars import evidence, records, render
from dars.io import read_label, write_json


def evidence_config():
    config = tiny_config(seeds=[0])
    config["datasets"]["synthetic_evidence"]["synthetic"].update(num_train=16, num_val=6)
    config["datasets"]["synthetic_evidence"]["train"].update(pretrain_steps=8, round_epochs=2)
    config["evidence"]["seeds"] = [0, 1]
    return config


@pytest.mark.e2e
def test_evidence_target_end_to_end(tmp_path):
    proc = snakemake(tmp_path, "--cores", "2", "evidence", config=evidence_config())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    md = (tmp_path / "results/evidence/evidence.md").read_text()
    assert md.startswith("# Evidence: synthetic_evidence, 1/8 split, 2 seeds")
    # Gates are computed (PASS or FAIL, with the numbers), never assumed.
    for gate in ("converged: ", "label-limited: ", "compute: "):
        line = next(x for x in md.splitlines() if x.startswith("- " + gate))
        assert "PASS" in line or "FAIL" in line
    for row in ("round 0", "oracle (all labels)", "supervised r1", "ST r1", "CBST r1", "DARS r1", "truth r1",
                "supervised r2", "DARS r2", "DARS r1 − CBST r1", "DARS r1 − ST r1", "truth r1 − supervised r1"):
        assert f"| {row} |" in md
    assert "[" in md.split("**Paired gains")[1]  # sign counts
    # 3 steps per epoch (14 unlabeled images, batch 4) x 2 epochs = 6 student steps vs 8 in round 0.
    assert "0.75x round 0's 8 steps" in md
    csv = pd.read_csv(tmp_path / "results/evidence/evidence.csv")
    assert set(csv.loc[csv.table == "gates", "row"]) == {"converged", "label_limited", "step_ratio"}
    gain = csv[(csv.row == "DARS r1 − supervised r1") & (csv.column == "mIoU")].iloc[0]
    runs = [json.loads((tmp_path / f"results/synthetic_evidence/split8/seed{s}/{m}/round1/miou.json").read_text())
            for s in (0, 1) for m in ("dars", "supervised")]
    diffs = [runs[0]["miou"] - runs[1]["miou"], runs[2]["miou"] - runs[3]["miou"]]
    assert gain["mean"] == pytest.approx(np.mean(diffs)) and gain["std"] == pytest.approx(np.std(diffs, ddof=1))
    assert (tmp_path / "results/evidence/evidence.html").read_text().startswith("<!DOCTYPE html>")
    # The truth labeler writes each unlabeled image's ground truth where pseudo labels go.
    run = tmp_path / "results/synthetic_evidence/split8/seed0/truth/round1"
    stats = json.loads((run / "pseudo_stats.json").read_text())
    assert stats["labeler"] == "truth" and stats["alpha"] == 1.0 and stats["gt"]["kl_true_pseudo"] == 0
    assert sum(stats["gt"]["tp"]) == sum(stats["gt"]["pseudo_on_gt"]) == sum(stats["gt"]["gt_pixels"])
    pairs = [line.split() for line in (run / "pseudo_labels.txt").read_text().splitlines()]
    assert len(pairs) == 14
    root = tmp_path / "results/synthetic_evidence/data"
    for image, label in pairs[:3]:
        gt = image.replace("leftImg8bit/", "gtFine/", 1).replace("_leftImg8bit.png", "_gtFine_labelTrainIds.png")
        assert np.array_equal(read_label(run / label), read_label(root / gt))


def test_evidence_plans_five_seeds_with_the_shipped_config(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    proc = snakemake(tmp_path, "-n", "evidence", config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert len(config["evidence"]["seeds"]) >= 5
    for seed in config["evidence"]["seeds"]:
        for stage in ("round0", "supervised/round1", "truth/round1", "dars/round2", "supervised/round2"):
            assert f"results/synthetic_evidence/split8/seed{seed}/{stage}/miou.json" in out
        assert f"results/synthetic_evidence/split1/seed{seed}/round0/miou.json" in out


def value(seeds, values, metric="miou"):
    return records.Value(metric, float(np.mean(values)), records.sample_std(values) if len(values) > 1 else 0.0,
                        len(values), tuple(seeds), values=tuple(values))


def test_paired_gain_is_the_per_seed_difference():
    a = value([0, 1, 2], [0.50, 0.60, 0.40])
    b = value([0, 1, 2, 3], [0.45, 0.62, 0.30, 0.9])  # seed 3 has no partner: left out
    g = records.paired_gain(a, b)
    d = [0.05, -0.02, 0.10]
    assert g.gain and g.n == 3 and g.seeds == (0, 1, 2)
    assert g.mean == pytest.approx(np.mean(d)) and g.std == pytest.approx(np.std(d, ddof=1))
    assert g.wins == 2  # two of three differences have the mean's (positive) sign
    assert render.fmt(g) == f"+{100 * np.mean(d):.1f} ± {100 * np.std(d, ddof=1):.1f} [2/3]"
    assert records.paired_gain(a, value([7], [0.1])) is None


def _runs(tmp_path, name, seeds, mious, iteration, stage):
    files = []
    for s, m in zip(seeds, mious):
        f = tmp_path / f"seed{s}/{stage}/miou.json"
        iou = [m] * 19
        write_json(f, {"dataset": "d", "split": 8 if name != "oracle" else 1, "round": 0 if "r" not in stage else 1,
                       "method": name, "labeler": "none" if name == "supervised" else None, "alpha": None,
                       "scale_range": [1, 1], "protocol": "whole", "seed": s, "miou": m, "iou": iou,
                       "iteration": iteration, "class_names": [f"c{i}" for i in range(19)]})
        files.append(str(f))
    return files


@pytest.mark.parametrize("control_gain, ok", [(0.004, True), (0.02, False)])
def test_converged_gate_is_computed_from_the_runs(tmp_path, control_gain, ok):
    seeds = [0, 1, 2]
    base = [0.40, 0.42, 0.38]
    cells = {}
    for label, name, mious, it, stage in [
            ("round 0", "baseline", base, 100, "round0"),
            ("oracle (all labels)", "oracle", [m + 0.1 for m in base], 100, "oracle"),
            ("supervised r1", "supervised", [m + control_gain for m in base], 50, "supervised/r1")]:
        runs = records.load_cell(_runs(tmp_path, name, seeds, mious, it, stage), label)
        cells[label] = (runs, records.stat([r["miou"] for r in runs], "miou", runs), None)
    spec = {"comparisons": [["converged", "supervised r1", "round 0"],
                            ["label_limited", "oracle (all labels)", "round 0"]]}
    g = evidence.gates(cells, spec)
    assert g["converged"][0] is ok and g["label_limited"][0] is True and g["step_ratio"][0] is True
    assert ("round 0 not converged: gains include extra training" in g["converged"][1]) is not ok
    assert math.isclose(float(g["converged"][1].split("= +")[1].split(" ")[0]), 100 * control_gain, abs_tol=0.06)
