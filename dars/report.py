"""Summaries over runs: mean/std of mIoU over seeds, and the per-method comparison table.

Inputs are per-run `miou.json` files (docs/formats.md); the per-method table reads those of the
run report's per-class spec, and its Markdown is that table (dars.tables). Numbers stay
fractions in [0, 1] in JSON and CSV; only the Markdown table shows percentages, because it is
read by people.
"""
import numpy as np
import pandas as pd

from .io import atomic_path, write_json
from .records import (
    IDENTITY,
    Value,
    agree,
    by_seed,
    check_seeds,
    class_names,
    load_runs,
    nanmean_columns,
    paired_gain,
    sample_std,
    to_nan,
    to_null,
)
from .specs import load_spec
from .tables import build_table, markdown

# Descriptive fields copied to the aggregate only when every run agrees on them.
COPIED = ("alpha", "scale_range", "protocol", "split_source", "class_names")


def aggregate_seeds(miou_files, out_json):
    """Mean and sample std of mIoU over the seeds of one dataset/split/round/method."""
    runs = load_runs(miou_files)
    for key in IDENTITY:
        agree(runs, key, "aggregate_seeds")
    check_seeds(runs, "aggregate_seeds")
    names = class_names(runs, "aggregate_seeds")
    runs = by_seed(runs)
    mious = [to_nan(r["miou"]) for r in runs]
    out = {key: runs[0][key] for key in IDENTITY}
    out["seeds"] = [r["seed"] for r in runs]
    out["num_seeds"] = len(runs)
    out["miou_mean"] = to_null(float(np.mean(mious)))
    out["miou_std"] = to_null(sample_std(mious))
    out["std"] = "sample"  # ddof=1 (0.0 for a single seed)
    out["iou_mean"] = [to_null(v) for v in nanmean_columns([r["iou"] for r in runs])]
    out["per_seed"] = [{"seed": r["seed"], "miou": to_null(to_nan(r["miou"])), "file": r.file} for r in runs]
    for key in COPIED:
        values = {repr(r.get(key)) for r in runs}
        if len(values) == 1 and key in runs[0]:
            out[key] = runs[0][key]
    out["class_names"] = names
    write_json(out_json, out)
    return out


def _group_rows(runs, names):
    """One row per (method, round, alpha): an alpha sweep of one method gives one row per alpha."""
    groups = {}
    for r in runs:
        groups.setdefault((r["method"], r["round"], repr(r.get("alpha"))), []).append(r)
    # The round-0 baseline first, then methods in the order they were given.
    order = sorted(groups, key=lambda k: (k[0] != "baseline", list(groups).index(k)))
    rows = []
    for key in order:
        g = groups[key]
        check_seeds(g, f"method_table ({key[0]}, round {key[1]})")
        mious = [to_nan(r["miou"]) for r in g]
        row = {"method": key[0], "round": key[1], "alpha": g[0].get("alpha"), "seeds": len(g),
               "miou_mean": float(np.mean(mious)), "miou_std": sample_std(mious)}
        row.update(zip(names, nanmean_columns([r["iou"] for r in g])))
        row["_cell"] = Value("miou", row["miou_mean"], seeds=tuple(r["seed"] for r in g), values=tuple(mious))
        row["_control"] = key[1] > 0 and g[0].get("labeler") == "none"
        rows.append(row)
    return rows


GAIN_REFERENCES = {"baseline": "round 0", "control": "control"}


def _paired_gains(rows):
    """records.paired_gain of each row's mIoU against round 0 and against the supervised control
    (labeler none, same round). Columns gain_<ref>_{mean,std,wins,n}; wins counts the seeds whose
    difference has the mean's sign."""
    refs = {"baseline": next((r for r in rows if r["round"] == 0), None),
            "control": next((r for r in rows if r["_control"]), None)}
    for row in rows:
        for name, ref in refs.items():
            # Round 0 is no method of the control's round: it has no gain against it.
            skip = ref is None or ref is row or (name == "control" and row["round"] == 0)
            g = None if skip else paired_gain(row["_cell"], ref["_cell"])
            row[f"gain_{name}_mean"] = g.mean if g else float("nan")
            row[f"gain_{name}_std"] = g.std if g else float("nan")
            row[f"gain_{name}_wins"] = g.wins if g else 0
            row[f"gain_{name}_n"] = g.n if g else 0
    for row in rows:
        del row["_cell"], row["_control"]
    return rows


def method_table(spec, out_csv, out_md):
    """The per-method table of one dataset/split/round from the run report's per-class spec
    (dars.paper.run_specs "per_class"): methods.md is that table as dars.tables renders it (the
    report's per_class.md), methods.csv one line per (method, round, alpha) with the per-class
    means and the paired gains against round 0 and the control, fractions at full precision.
    Returns the CSV's DataFrame."""
    table = build_table(spec)  # checks every row: one dataset, split and protocol
    runs = load_runs([f for files in spec["rows"].values() for f in files])
    what = "method_table"
    agree(runs, "split_source", what)  # numbers of different splits must not share a table
    methods = [r for r in runs if r["method"] != "baseline"]
    if methods:
        agree(methods, "round", what + " (methods other than the baseline)")
    names = class_names(runs, what)
    gains = [f"gain_{name}_{x}" for name in GAIN_REFERENCES for x in ("mean", "std", "wins", "n")]
    df = pd.DataFrame(_paired_gains(_group_rows(runs, names)),
                      columns=["method", "round", "alpha", "seeds", "miou_mean", "miou_std", *names, *gains])
    with atomic_path(out_csv, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)  # shortest round-trip repr: full precision
    with atomic_path(out_md, suffix=".md") as tmp:
        tmp.write_text(markdown(table))
    return df


# ---------------------------------------------------------------- commands

def add_aggregate_arguments(parser):
    """mean/std over seeds of per-run miou.json files"""
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)


def aggregate_main(args):
    aggregate_seeds(args.files, args.out)


def add_table_arguments(parser):
    """per-method table (CSV + Markdown) of a run report's per-class spec"""
    parser.add_argument("--spec", required=True,
                        help="the per_class spec of dars.paper.run_specs (inline JSON or a JSON file)")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)


def table_main(args):
    method_table(load_spec(args.spec), args.out_csv, args.out_md)


COMMANDS = {"aggregate": (add_aggregate_arguments, aggregate_main), "table": (add_table_arguments, table_main)}
