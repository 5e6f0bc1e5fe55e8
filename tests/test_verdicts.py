"""The paper summary: each table's direction verdict against the published one, from the tables'
CSVs (hand-made here, so every verdict below is known in advance)."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dars import published, verdicts
from dars.io import DarsError
from dars.records import paired_gain, stat

SEEDS = (0, 1, 2)


def _write(path, cells):
    """cells: {(row, column): (metric, [value per seed])} -> a table CSV as dars.tables writes it."""
    lines = []
    for (row, column), (metric, values) in cells.items():
        v = stat(values, metric, [{"seed": s} for s in SEEDS])
        lines.append(dict(row=row, column=column, metric=metric, mean=v.mean, std=v.std, n=v.n,
                          seeds=";".join(map(str, SEEDS)), values=";".join(map(str, values)), wins=""))
    pd.DataFrame(lines).to_csv(path, index=False)
    return str(path)


def _up(base, step):
    """Per-seed values `base + step`, each seed a little apart (so paired differences are exact)."""
    return [base + step + 0.01 * s for s in SEEDS]


def _tables(tmp_path, s1_best="50%", dars_first=True, r2_gain=0.01, kl_ok=True, control_gain=0.002):
    t = {}
    alphas = {"20%": 0.40, "30%": 0.41, "40%": 0.42, "50%": 0.43, "60%": 0.42}
    alphas[s1_best] = 0.45
    t["s1"] = _write(tmp_path / "s1.csv", {("mIoU (%)", k): ("miou", _up(v, 0)) for k, v in
                                           {**alphas, "round 1": 0.39}.items()})
    t["s2"] = _write(tmp_path / "s2.csv", {(k, "mIoU (%)"): ("miou", _up(v, 0)) for k, v in
                                           {"(0, 0)": 0.43, "(0.2, 0)": 0.44, "(0, 0.5)": 0.44,
                                            "(0.2, 0.5)": 0.46}.items()})
    # S3: seed 2 reverses the ranking of scaling and none: an unsettled agreement
    t["s3"] = _write(tmp_path / "s3.csv", {("none", "mIoU (%)"): ("miou", [0.50, 0.50, 0.52]),
                                           ("photometric", "mIoU (%)"): ("miou", [0.49, 0.49, 0.49]),
                                           ("rotation", "mIoU (%)"): ("miou", [0.48, 0.48, 0.48]),
                                           ("scaling", "mIoU (%)"): ("miou", [0.53, 0.53, 0.51])})
    order = ["DARS", "CBST", "ST", "Baseline"] if dars_first else ["CBST", "DARS", "ST", "Baseline"]
    s4 = {(row, "mIoU"): ("miou", _up(0.40, 0.01 * (len(order) - i))) for i, row in enumerate(order)}
    s4[("supervised", "mIoU")] = ("miou", _up(0.41, control_gain))  # Baseline is 0.41
    for row in ["DARS", "CBST", "ST", "Baseline", "supervised"]:
        s4[(row, "road")] = ("iou", _up(0.9 if row == "DARS" else 0.8, 0))
        s4[(row, "tail")] = ("tail", _up(0.1, 0))
    t["s4"] = _write(tmp_path / "s4.csv", s4)
    s5 = {}
    for col, base, r1_gain in (("1/8", 0.40, 0.03), ("1/4", 0.45, 0.01)):
        s5[("Baseline", col)] = ("miou", _up(base, 0))
        s5[("DARS round 1", col)] = ("miou", _up(base, r1_gain))
        s5[("DARS round 2", col)] = ("miou", _up(base, r1_gain + r2_gain))
    s5[("Baseline", "oracle (full labels)")] = ("miou", _up(0.50, 0))
    t["s5"] = _write(tmp_path / "s5.csv", s5)
    uda = {"Source only": 0.30, "ST": 0.34, "CBST": 0.35, "DARS (SD)": 0.33, "DARS (TD)": 0.37, "DARS-est": 0.36}
    t["s6"] = _write(tmp_path / "s6.csv", {(k, "mIoU"): ("miou", _up(v, 0)) for k, v in uda.items()})
    kls = {"ST": 0.07, "CBST": 0.02, "DARS (SD)": 0.15, "DARS (TD)": 0.001, "DARS-est": 0.01}
    if not kl_ok:
        kls["DARS (SD)"] = 0.0001
    s7 = {(k, "mIoU (%)"): ("miou", _up(v, 0)) for k, v in uda.items()}
    s7.update({(k, "D_KL(true ‖ pseudo)"): ("kl_true_pseudo", _up(v, 0)) for k, v in kls.items()})
    t["s7"] = _write(tmp_path / "s7.csv", s7)
    roles4 = {"Baseline": "round0", "supervised": "control", "ST": "st", "CBST": "cbst", "DARS": "dars"}
    roles6 = {"Source only": "round0", "ST": "st", "CBST": "cbst", "DARS (SD)": "dars", "DARS (TD)": "dars_td",
              "DARS-est": "dars_est"}
    return {"tables": t, "roles": {"s4": roles4, "s6": roles6, "s7": roles6}, "split": "1/8"}


def _verdicts(spec):
    gates, rows = verdicts.build(spec)
    return gates, {name: (v, text) for name, v, text in rows}


def test_every_table_in_the_papers_direction(tmp_path):
    gates, v = _verdicts(_tables(tmp_path))
    assert v["s1"][0] == "agrees" and "best: 50%" in v["s1"][1] and "5 of 5 settings beat round 1" in v["s1"][1]
    assert v["s2"][0] == "agrees" and "(0.2, 0.5)" in v["s2"][1]
    assert v["s4"][0] == "agrees" and "DARS 4.00 ± 1.00 >" not in v["s4"][1]
    assert "best per class: DARS 1" in v["s4"][1]
    assert "against the compute-matched control (supervised): " in v["s4"][1]
    assert v["s5"][0] == "agrees" and "larger at 1/8 than at 1/4: yes" in v["s5"][1]
    assert v["s6"][0] == "agrees" and "DARS (TD)" in v["s6"][1]
    assert v["s7"][0] == "agrees", v["s7"]
    assert gates[0].startswith("converged: PASS: supervised − Baseline = +0.20")
    assert gates[1].startswith("label-limited: PASS: oracle − Baseline (1/8) = +10.00")


def test_a_ranking_one_seed_reverses_is_marked_as_noise(tmp_path):
    _, v = _verdicts(_tables(tmp_path))
    assert v["s3"][0] == "agrees (within seed noise)"
    assert "ahead of none by +1.67 ± 2.31 [2/3]" in v["s3"][1]


def test_disagreements_are_said(tmp_path):
    gates, v = _verdicts(_tables(tmp_path, s1_best="30%", dars_first=False, r2_gain=-0.01, kl_ok=False,
                                 control_gain=0.04))
    assert v["s1"][0] == "differs" and "best: 30%" in v["s1"][1] and "30% − 50% = +2.00 ± 0.00 [3/3]" in v["s1"][1]
    assert v["s4"][0] == "differs" and "CBST" in v["s4"][1].split(">")[0]
    assert v["s5"][0] == "differs" and "round 2 − round 1 -1.00" in v["s5"][1]
    assert v["s7"][0] == "differs" and "D_KL(true ‖ pseudo): DARS (SD)" in v["s7"][1]
    assert gates[0].startswith("converged: FAIL")


def test_writes_markdown_csv_html_with_the_source(tmp_path):
    spec = _tables(tmp_path)
    verdicts.write(spec, tmp_path / "summary.md", tmp_path / "summary.csv", tmp_path / "summary.html")
    md = (tmp_path / "summary.md").read_text()
    assert published.SOURCE in md and "| S7 |" in md and "not ours" in md
    assert list(pd.read_csv(tmp_path / "summary.csv")["table"]) == ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]
    assert "<table>" in (tmp_path / "summary.html").read_text()


def test_a_file_that_is_no_table_is_named(tmp_path):
    spec = _tables(tmp_path)
    (tmp_path / "s3.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DarsError, match="s3.csv: not a table CSV"):
        verdicts.build(spec)


def test_the_csv_round_trip_keeps_per_seed_values(tmp_path):
    spec = _tables(tmp_path)
    cells = verdicts.read_cells(spec["tables"]["s1"])
    g = paired_gain(cells[("mIoU (%)", "50%")], cells[("mIoU (%)", "20%")])
    assert g.n == 3 and g.wins == 3 and g.mean == pytest.approx(0.05)


def test_published_rows_use_the_configs_labels():
    paper = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())["paper"]
    for table, key in (("s1", "alpha_sweep"), ("s2", "scale_sweep"), ("s3", "augment_ablation"),
                       ("s4", "compare"), ("s7", "uda_compare")):
        rows = set(published.TABLES[table]["values"]) - {"round 1"}
        assert rows <= set(paper[key]), (table, rows - set(paper[key]))
