"""Supplementary tables (dars/tables.py): exact means/stds/gains/tail sets, layout, refusals, CLI."""
import argparse
import json

import numpy as np
import pandas as pd
import pytest
from helpers import CLASS_NAMES, put

from dars import render, specs, tables
from dars.io import DarsError, write_json
from dars.records import Value

# Val ground truth: road 90%, car 9.5%, pole 0.5% (the only tail class), rider absent from val.
VAL_COUNTS = [900, 95, 5, 0]


@pytest.fixture
def runs(tmp_path):
    """Baseline, supervised and DARS for seeds 0-2 with known per-class IoU; rider absent (null)."""
    base = [put(tmp_path, "baseline", s, 0, [0.9, 0.6, p, None]) for s, p in enumerate([0.0, 0.06, 0.09])]
    sup = [put(tmp_path, "supervised", s, 2, [0.9, 0.6, 0.03, None], labeler="none") for s in range(3)]
    dars = [put(tmp_path, "dars", s, 2, [0.9, 0.63, p, None], labeler="dars", alpha=0.5, kl=k)
            for s, (p, k) in enumerate([(0.12, 0.010), (0.15, 0.012), (0.21, 0.017)])]
    prior = tmp_path / "prior_td.json"
    write_json(prior, {"counts": VAL_COUNTS, "shares": [c / 1000 for c in VAL_COUNTS], "class_names": CLASS_NAMES})
    return {"base": base, "sup": sup, "dars": dars, "prior": str(prior), "root": tmp_path}


def cell(csv, row, column):
    hit = csv[(csv.row == row) & (csv.column == column)]
    assert len(hit) == 1, (row, column)
    return hit.iloc[0]


def test_per_class_numbers_tail_and_gains(runs, tmp_path):
    spec = {"kind": "per_class", "title": "Table S4", "min_seeds": 3, "val_prior": runs["prior"],
            "rows": {"Baseline": runs["base"], "supervised": runs["sup"], "DARS": runs["dars"]},
            "gains": [["DARS", "Baseline"]]}
    tables.write_table(spec, tmp_path / "s4.csv", tmp_path / "s4.md")
    csv = pd.read_csv(tmp_path / "s4.csv")
    assert list(csv.columns) == render.CSV_COLUMNS
    pole = cell(csv, "DARS", "pole")
    assert pole["mean"] == pytest.approx(0.16) and pole["std"] == pytest.approx(np.std([.12, .15, .21], ddof=1))
    assert pole["n"] == 3 and pole["seeds"] == "0;1;2"
    # Baseline mIoU per seed: (0.9 + 0.6 + p) / 3 for p = 0, .06, .09
    base_miou = [(1.5 + p) / 3 for p in (0.0, 0.06, 0.09)]
    assert cell(csv, "Baseline", "mIoU")["mean"] == pytest.approx(np.mean(base_miou))
    assert cell(csv, "Baseline", "mIoU")["std"] == pytest.approx(np.std(base_miou, ddof=1))
    # tail = {pole}: road and car are common, rider is absent from val
    assert cell(csv, "DARS", "tail")["mean"] == pytest.approx(0.16)
    assert cell(csv, "Baseline", "tail")["mean"] == pytest.approx(0.05)
    gain = cell(csv, "DARS − Baseline", "tail")
    # Paired per seed: pole (the tail) goes .00->.12, .06->.15, .09->.21.
    assert gain["mean"] == pytest.approx(0.11) and gain["metric"] == "tail_gain"
    assert gain["std"] == pytest.approx(np.std([0.12, 0.09, 0.12], ddof=1)) and gain["wins"] == 3 and gain["n"] == 3
    assert cell(csv, "DARS − Baseline", "car")["mean"] == pytest.approx(0.03)
    assert cell(csv, "DARS", "rider")["n"] == 0  # absent in every seed: no value
    md = (tmp_path / "s4.md").read_text().splitlines()
    assert md[0] == "**Table S4**"
    assert md[2] == "| method | road | car | pole† | rider | mIoU | tail |"
    assert md[3] == "|:---|---:|---:|---:|---:|---:|---:|"
    assert md[4].startswith("| Baseline | 90.0 ± 0.0 | 60.0 ± 0.0 | 5.0 ± 4.6 | – | 51.7 ± 1.5 | ")
    assert md[6] == "| DARS | 90.0 ± 0.0 | 63.0 ± 0.0 | 16.0 ± 4.6 | – | 56.3 ± 1.5 | 16.0 ± 4.6 |"
    assert md[7].startswith("| DARS − Baseline | +0.0 ± 0.0 [3/3] | +3.0 ± 0.0 [3/3] | +11.0 ± 1.7 [3/3] | – |")
    text = "\n".join(md)
    assert "over 3 seed(s)" in text and "ddof=1" in text and "† tail class: under 1%" in text
    assert "the 1 tail classes" in text


def test_without_val_prior_no_tail_column(runs, tmp_path):
    spec = {"kind": "per_class", "rows": {"DARS": runs["dars"][:1]}}
    table = tables.write_table(spec, tmp_path / "t.csv", tmp_path / "t.md")
    assert table.columns == CLASS_NAMES + ["mIoU"]
    assert "| DARS | 90.0 | 63.0 | 12.0 | – | 55.0 |" in (tmp_path / "t.md").read_text()  # one seed: no ±


def test_refuses_mixed_identity_and_names_files(runs, tmp_path):
    spec = {"kind": "per_class", "rows": {"mixed": runs["base"][:2] + runs["dars"][2:]}}
    with pytest.raises(DarsError, match="disagree on 'round'") as e:
        tables.write_table(spec, tmp_path / "t.csv", tmp_path / "t.md")
    assert runs["base"][1] in str(e.value) and runs["dars"][2] in str(e.value)
    other = put(runs["root"] / "a03", "dars", 5, 2, [0.9, 0.6, 0.1, None], labeler="dars", alpha=0.3)
    with pytest.raises(DarsError, match="alpha"):
        tables.build_table({"kind": "sweep", "columns": {"x": runs["dars"] + [other]}})
    assert not (tmp_path / "t.csv").exists()


def test_refuses_too_few_seeds_missing_and_duplicate_files(runs, tmp_path):
    spec = {"kind": "sweep", "title": "S1", "min_seeds": 3, "columns": {"20%": runs["dars"][:2]}}
    with pytest.raises(DarsError, match=r"'20%'.*got 2 seed\(s\).*min_seeds is 3"):
        tables.build_table(spec)
    with pytest.raises(DarsError, match="nope/miou.json: file not found"):
        tables.build_table({"kind": "sweep", "columns": {"x": [str(tmp_path / "nope/miou.json")]}})
    with pytest.raises(DarsError, match="more than once"):
        tables.build_table({"kind": "sweep", "columns": {"x": [runs["dars"][0]] * 2}})
    with pytest.raises(DarsError, match="'kind' must be one of"):
        tables.build_table({"kind": "pie"})
    with pytest.raises(DarsError, match="not in rows"):
        tables.build_table({"kind": "per_class", "rows": {"DARS": runs["dars"]}, "gains": [["DARS", "ST"]]})


def test_sweep_orientations_and_reference(runs, tmp_path):
    spec = {"kind": "sweep", "title": "S1", "corner": "ratio", "columns": {"50%": runs["dars"]},
            "reference": {"round 0": runs["base"]}}
    tables.write_table(spec, tmp_path / "s1.csv", tmp_path / "s1.md")
    md = (tmp_path / "s1.md").read_text().splitlines()
    assert md[2] == "| ratio | 50% | round 0 |"
    assert md[4] == "| mIoU (%) | 56.3 ± 1.5 | 51.7 ± 1.5 |"
    csv = pd.read_csv(tmp_path / "s1.csv")
    assert list(csv.column) == ["50%", "round 0"] and set(csv.row) == {"mIoU (%)"}
    spec = {"kind": "sweep", "corner": "(beta_min, beta_max)", "rows": {"(0.5, 1.5)": runs["dars"]}}
    table = tables.build_table(spec)
    assert table.columns == ["mIoU (%)"] and [r[0] for r in table.rows] == ["(0.5, 1.5)"]
    kl = tables.build_table({"kind": "sweep", "metric": "kl_true_pseudo", "columns": {"a": runs["dars"]},
                             "pseudo_stats": {"a": pseudo_stats(runs["dars"])}})
    assert render.fmt(kl.rows[0][1][0]) == "0.0130 ± 0.0036"


def test_iterative(runs, tmp_path):
    r1 = [put(runs["root"], "dars", s, 1, [0.9, 0.6, 0.1, None], labeler="dars", alpha=0.2) for s in range(3)]
    oracle = [put(runs["root"] / "full", "baseline", s, 0, [0.95, 0.7, 0.3, None], split=1) for s in range(3)]
    spec = {"kind": "iterative", "title": "S5", "method": "DARS",
            "columns": {"1/8": {"baseline": runs["base"], "rounds": [r1, runs["dars"]], "supervised": runs["sup"]}},
            "oracle": {"oracle (full labels)": oracle}}
    tables.write_table(spec, tmp_path / "s5.csv", tmp_path / "s5.md")
    md = (tmp_path / "s5.md").read_text().splitlines()
    assert md[2] == "|  | 1/8 | oracle (full labels) |"
    assert [line.split(" | ")[0] for line in md[4:10]] == [
        "| Baseline", "| DARS round 1", "| DARS round 2", "| supervised (round 2)", "| gain (round 2 − Baseline)",
        "| gain (round 2 − supervised)"]
    assert md[9].endswith(" [3/3] | – |")
    assert md[4].endswith("| 65.0 ± 0.0 |") and md[5].endswith("| – |")
    gains = [(1.53 + p) / 3 - (1.5 + q) / 3 for p, q in zip((.12, .15, .21), (0.0, 0.06, 0.09))]
    assert md[8] == (f"| gain (round 2 − Baseline) | +{100 * np.mean(gains):.1f} ± "
                     f"{100 * np.std(gains, ddof=1):.1f} [3/3] | – |")
    csv = pd.read_csv(tmp_path / "s5.csv")
    assert cell(csv, "gain (round 2 − Baseline)", "1/8")["mean"] == pytest.approx(np.mean([.55, .56, .58]) - np.mean(
        [(1.5 + p) / 3 for p in (0.0, 0.06, 0.09)]))
    assert len(csv[csv.column == "oracle (full labels)"]) == 1
    spec["columns"]["1/8"]["rounds"] = [runs["dars"], r1]  # rounds swapped: refused
    with pytest.raises(DarsError, match="round 1 row must be round 1"):
        tables.build_table(spec)


def pseudo_stats(files):
    return [f.replace("miou.json", "pseudo_stats.json") for f in files]


def test_kl_table(runs, tmp_path):
    spec = {"kind": "kl", "title": "S7", "baseline": "Baseline",
            "rows": {"Baseline": runs["base"], "supervised": runs["sup"], "DARS": runs["dars"]},
            "pseudo_stats": {"DARS": pseudo_stats(runs["dars"])}}
    tables.write_table(spec, tmp_path / "s7.csv", tmp_path / "s7.md")
    md = (tmp_path / "s7.md").read_text().splitlines()
    assert md[2] == "| method | D_KL(true ‖ pseudo) | mIoU (%) | gain (mIoU) |"
    assert md[4] == "| Baseline | – | 51.7 ± 1.5 | – |"
    assert md[6] == "| DARS | 0.0130 ± 0.0036 | 56.3 ± 1.5 | +4.7 ± 0.6 [3/3] |"
    csv = pd.read_csv(tmp_path / "s7.csv")
    kl = cell(csv, "DARS", "D_KL(true ‖ pseudo)")
    assert kl["mean"] == pytest.approx(0.013) and kl["std"] == pytest.approx(np.std([.010, .012, .017], ddof=1))
    assert len(csv[csv.row == "Baseline"]) == 1  # only its mIoU
    # pseudo_stats of another labeler beside a DARS run: stale outputs, refused
    write_json(runs["root"] / "seed0/dars/round2/pseudo_stats.json", {"labeler": "st", "alpha": 0.5, "gt": {}})
    with pytest.raises(DarsError, match="labeler 'st'"):
        tables.build_table(spec)
    # The spec lists every file it reads: the rows' miou.json and the listed pseudo_stats.json.
    inputs = specs.spec_inputs(spec)
    assert inputs == runs["base"] + runs["sup"] + runs["dars"] + pseudo_stats(runs["dars"])
    # A row trained on pseudo labels needs its pseudo_stats.json listed, one per run.
    with pytest.raises(DarsError, match="no pseudo_stats.json is listed"):
        tables.build_table(dict(spec, pseudo_stats={}))
    with pytest.raises(DarsError, match="1 pseudo_stats.json file"):
        tables.build_table(dict(spec, pseudo_stats={"DARS": pseudo_stats(runs["dars"])[:1]}))


def test_gain_never_negative_zero():
    assert render.fmt(Value("miou", -1e-5, gain=True)) == "+0.0"
    assert render.fmt(Value("miou", -0.012, gain=True)) == "-1.2"
    assert render.fmt(Value("kl_true_pseudo", 0.01234, 0.001, 2)) == "0.0123 ± 0.0010"


def test_one_number_format_at_two_precisions():
    gain = Value("miou", 0.01234, 0.0051, 3, gain=True, wins=2)
    assert render.fmt(gain) == "+1.2 ± 0.5 [2/3]"
    assert render.fmt(gain, decimals=2) == "+1.23 ± 0.51 [2/3]"
    assert render.fmt(Value("miou", 0.5, n=1), decimals=2) == "50.00"  # one seed: no ±
    assert render.fmt(None) == "–" and render.fmt(Value("iou", float("nan")), missing="-") == "-"
    assert render.fmt(Value("steps", 120.0, n=1)) == "120"


def test_one_table_in_every_format():
    table = render.Table("T", "method", ["mIoU", "note"],
                         [("a|b", [Value("miou", 0.5, 0.01, 2, seeds=(0, 1), values=(0.49, 0.51)), "text"]),
                          ("longer label", [None, "x"])], [])
    assert render.markdown(table) == ("| method | mIoU | note |\n|:---|---:|---:|\n| a\\|b | 50.0 ± 1.0 | text |\n"
                                      "| longer label | – | x |\n")
    assert render.text(table).splitlines() == ["method              mIoU  note",
                                               "------------  ----------  ----",
                                               "a|b           50.0 ± 1.0  text",
                                               "longer label           –     x"]
    assert render.text(render.Table("", "bin", ["pixels"], [(0, [1234]), (10, [5])], [])) == \
        "bin  pixels\n---  ------\n0      1234\n10        5"  # what inspect prints: any cell as str()
    assert render.html(table) == ("<table><tr><th>method</th><th>mIoU</th><th>note</th></tr><tr><th>a|b</th>"
                                  "<td>50.0 ± 1.0</td><td>text</td></tr><tr><th>longer label</th><td>–</td>"
                                  "<td>x</td></tr></table>")
    csv = render.frame(table)  # Values only: text cells are labels, None is no measurement
    assert csv[["row", "column", "metric", "mean", "n", "seeds", "values"]].values.tolist() == [
        ["a|b", "mIoU", "miou", 0.5, 2, "0;1", "0.49;0.51"]]


def test_cli(runs, tmp_path):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="stage")
    for name, (add_arguments, main) in tables.COMMANDS.items():
        add_arguments(sub.add_parser(name))
        sub.choices[name].set_defaults(handler=main)
    spec = {"kind": "per_class", "val_prior": runs["prior"], "rows": {"DARS": runs["dars"]}}
    out = tmp_path / "out"
    args = p.parse_args(["paper-table", "--spec", json.dumps(spec), "--out-csv", str(out / "a.csv"),
                         "--out-md", str(out / "a.md")])
    args.handler(args)
    assert "pole†" in (out / "a.md").read_text()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    args = p.parse_args(["paper-table", "--spec", str(tmp_path / "spec.json"), "--out-csv", str(out / "b.csv"),
                         "--out-md", str(out / "b.md")])
    args.handler(args)
    assert (out / "b.csv").read_bytes() == (out / "a.csv").read_bytes()
    args = p.parse_args(["paper-table", "--spec", "{not json", "--out-csv", "x", "--out-md", "y"])
    with pytest.raises(DarsError, match="not valid JSON"):
        args.handler(args)
