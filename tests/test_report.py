import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dars import tables
from dars.classes import CLASS_NAMES
from dars.io import DarsError
from dars.report import aggregate_seeds, method_table


def run(tmp_path, method="dars", seed=0, miou=0.5, rnd=1, alpha=0.5, iou=None, **extra):
    iou = iou if iou is not None else [miou] * 19
    obj = {"dataset": "synth", "split": 100, "split_source": "random", "method": method, "seed": seed,
           "round": rnd, "alpha": alpha, "scale_range": [0.5, 2.0], "protocol": "single-scale",
           "checkpoint": "x/model.pt", "num_images": 10, "class_names": list(CLASS_NAMES),
           "iou": iou, "acc": iou, "miou": miou, "macc": miou, "allacc": 0.9}
    obj.update(extra)
    path = tmp_path / f"{method}_{rnd}_{alpha}_{seed}.json"
    path.write_text(json.dumps(obj))
    return path


def test_aggregate_mean_sample_std_and_nan_aware_iou(tmp_path):
    iou0 = [0.4] * 19
    iou1 = [0.6] * 18 + [None]  # class 18 absent in seed 1: mean over the seeds where it exists
    files = [run(tmp_path, seed=1, miou=0.6, iou=iou1), run(tmp_path, seed=0, miou=0.4, iou=iou0),
             run(tmp_path, seed=2, miou=0.5)]
    out = aggregate_seeds(files, tmp_path / "agg" / "miou.json")
    saved = json.loads((tmp_path / "agg" / "miou.json").read_text())
    assert saved == json.loads(json.dumps(out))
    assert saved["seeds"] == [0, 1, 2]
    assert saved["miou_mean"] == pytest.approx(0.5)
    assert saved["miou_std"] == pytest.approx(0.1)  # sample std of 0.4, 0.5, 0.6
    assert saved["std"] == "sample"
    assert saved["iou_mean"][0] == pytest.approx(0.5)
    assert saved["iou_mean"][18] == pytest.approx(0.45)
    assert [s["seed"] for s in saved["per_seed"]] == [0, 1, 2]
    assert saved["alpha"] == 0.5 and saved["protocol"] == "single-scale" and saved["split_source"] == "random"
    assert saved["dataset"] == "synth" and saved["split"] == 100 and saved["round"] == 1


def test_aggregate_single_seed_std_zero_and_all_absent_class_null(tmp_path):
    f = run(tmp_path, seed=3, miou=0.7, iou=[0.7] * 18 + [None])
    out = aggregate_seeds([f], tmp_path / "miou.json")
    assert out["miou_std"] == 0.0 and out["miou_mean"] == pytest.approx(0.7)
    assert out["iou_mean"][18] is None
    assert "NaN" not in (tmp_path / "miou.json").read_text()


def test_aggregate_copies_only_agreeing_fields(tmp_path):
    files = [run(tmp_path, seed=0, alpha=0.5), run(tmp_path, seed=1, alpha=0.5, protocol="multi-scale")]
    out = aggregate_seeds(files, tmp_path / "miou.json")
    assert out["alpha"] == 0.5 and "protocol" not in out


@pytest.mark.parametrize("field,value", [("method", "st"), ("round", 2), ("split", 372), ("dataset", "cityscapes")])
def test_aggregate_rejects_disagreeing_files(tmp_path, field, value):
    a = run(tmp_path, seed=0)
    b = run(tmp_path, seed=1)
    obj = json.loads(b.read_text())
    obj[field] = value
    b.write_text(json.dumps(obj))
    with pytest.raises(DarsError, match=field):
        aggregate_seeds([a, b], tmp_path / "miou.json")
    assert not (tmp_path / "miou.json").exists()


def test_aggregate_rejects_duplicate_seed_and_aggregate_input(tmp_path):
    a = run(tmp_path, seed=0)
    with pytest.raises(DarsError, match="more than once"):
        aggregate_seeds([a, a], tmp_path / "miou.json")
    agg = tmp_path / "agg.json"
    aggregate_seeds([a], agg)
    with pytest.raises(DarsError, match="aggregate"):
        aggregate_seeds([agg], tmp_path / "x.json")


def table_spec(files, gains=()):
    """A per_class spec as dars.paper.run_specs writes it: one row per method, round 0 first if given."""
    rows = {}
    for f in files:
        method = json.loads(Path(f).read_text())["method"]
        rows.setdefault("round 0" if method == "baseline" else method, []).append(str(f))
    return {"kind": "per_class", "corner": "method", "title": "Per-class IoU", "rows": rows,
            "gains": [list(g) for g in gains]}


def test_method_table(tmp_path):
    files = [run(tmp_path, method="baseline", rnd=0, alpha=None, seed=0, miou=0.40),
             run(tmp_path, method="baseline", rnd=0, alpha=None, seed=1, miou=0.42),
             run(tmp_path, method="st", alpha=None, seed=0, miou=0.45),
             run(tmp_path, method="dars", seed=0, miou=0.50),
             run(tmp_path, method="dars", seed=1, miou=0.54),
             run(tmp_path, method="cbst", alpha=0.2, seed=0, miou=0.47)]
    # the baseline given last still comes first in the CSV
    spec = table_spec(files[2:] + files[:2], gains=[("dars", "round 0")])
    df = method_table(spec, tmp_path / "t" / "methods.csv", tmp_path / "t" / "methods.md")
    csv = pd.read_csv(tmp_path / "t" / "methods.csv")
    assert list(csv.columns[:6]) == ["method", "round", "alpha", "seeds", "miou_mean", "miou_std"]
    assert list(csv.columns[6:25]) == list(CLASS_NAMES)
    assert list(csv.columns[25:29]) == [f"gain_baseline_{x}" for x in ("mean", "std", "wins", "n")]
    assert list(csv["method"]) == ["baseline", "st", "dars", "cbst"]
    assert list(csv["seeds"]) == [2, 1, 2, 1]
    assert list(csv["round"]) == [0, 1, 1, 1]
    dars = csv[csv.method == "dars"].iloc[0]
    assert dars["miou_mean"] == pytest.approx(0.52, abs=1e-12)
    assert dars["miou_std"] == pytest.approx(np.std([0.5, 0.54], ddof=1))
    assert dars["road"] == pytest.approx(0.52, abs=1e-12)
    assert math.isnan(csv[csv.method == "st"].iloc[0]["alpha"])
    assert len(df) == 4
    # Gains are paired per seed: dars - baseline = +0.10, +0.12 (both positive).
    assert dars["gain_baseline_mean"] == pytest.approx(0.11) and dars["gain_baseline_n"] == 2
    assert dars["gain_baseline_std"] == pytest.approx(np.std([0.10, 0.12], ddof=1))
    assert csv[csv.method == "baseline"].iloc[0]["gain_baseline_n"] == 0
    # The Markdown is the per-class table of the same spec (the run report's per_class.md).
    md = (tmp_path / "t" / "methods.md").read_text()
    assert md == tables.markdown(tables.build_table(spec))
    dars_line = next(r for r in md.splitlines() if r.startswith("| dars |"))
    assert "| 52.0 ± 2.8 |" in dars_line
    assert "| dars − round 0 |" in md and "| +11.0 ± 1.4 [2/2] |" in md


def test_method_table_gain_against_the_control_is_paired(tmp_path):
    files = [run(tmp_path, method="supervised", alpha=None, seed=s, miou=m, labeler="none")
             for s, m in ((0, 0.50), (1, 0.40), (2, 0.45))]
    files += [run(tmp_path, method="dars", seed=s, miou=m, labeler="dars")
              for s, m in ((0, 0.52), (1, 0.41), (2, 0.44))]
    method_table(table_spec(files), tmp_path / "m.csv", tmp_path / "m.md")
    dars = pd.read_csv(tmp_path / "m.csv").set_index("method").loc["dars"]
    assert dars["gain_control_mean"] == pytest.approx(np.mean([0.02, 0.01, -0.01]))
    assert dars["gain_control_wins"] == 2 and dars["gain_control_n"] == 3
    assert dars["gain_baseline_n"] == 0  # no round 0 in this table
    base = run(tmp_path, method="baseline", rnd=0, alpha=None, seed=0, miou=0.3)
    method_table(table_spec(files + [base]), tmp_path / "m.csv", tmp_path / "m.md")
    csv = pd.read_csv(tmp_path / "m.csv").set_index("method")
    assert csv.loc["baseline", "gain_control_n"] == 0 and csv.loc["dars", "gain_baseline_n"] == 1


def test_method_table_rejects_mixed_rounds_and_protocols(tmp_path):
    with pytest.raises(DarsError, match="round"):
        method_table(table_spec([run(tmp_path, method="st", rnd=1), run(tmp_path, method="dars", rnd=2)]),
                     tmp_path / "m.csv", tmp_path / "m.md")
    with pytest.raises(DarsError, match="protocol"):
        method_table(table_spec([run(tmp_path, method="st"), run(tmp_path, method="dars", protocol="multi-scale")]),
                     tmp_path / "m.csv", tmp_path / "m.md")
    assert not (tmp_path / "m.csv").exists()


def test_commands_declare_the_cli_flags(tmp_path):
    """`aggregate` and `table` as dars/__main__.py registers them: report.COMMANDS."""
    import argparse

    from dars import report
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="stage")
    for name, (add_arguments, main) in report.COMMANDS.items():
        add_arguments(sub.add_parser(name))
        sub.choices[name].set_defaults(handler=main)
    files = [str(run(tmp_path, seed=s, miou=m)) for s, m in ((0, 0.5), (1, 0.6))]
    args = p.parse_args(["aggregate", *files, "--out", str(tmp_path / "agg.json")])
    args.handler(args)
    assert json.loads((tmp_path / "agg.json").read_text())["miou_mean"] == pytest.approx(0.55)
    args = p.parse_args(["table", "--spec", json.dumps(table_spec(files)), "--out-csv", str(tmp_path / "t.csv"),
                         "--out-md", str(tmp_path / "t.md")])
    args.handler(args)
    assert (tmp_path / "t.md").read_text().startswith("**Per-class IoU**")
