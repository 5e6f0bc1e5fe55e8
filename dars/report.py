"""Summaries over runs: mean/std of mIoU over seeds, and the per-method comparison table.

Inputs are per-run `miou.json` files (docs/formats.md). Numbers stay fractions in [0, 1] in
JSON and CSV; only the Markdown table shows percentages, because it is read by people.
"""
import math

import numpy as np
import pandas as pd

from . import render
from .io import atomic_path, write_json
from .records import (
    IDENTITY,
    Value,
    agree,
    by_seed,
    check_seeds,
    class_names,
    departure_note,
    load_runs,
    nanmean_columns,
    paired_gain,
    sample_std,
    to_nan,
    to_null,
)

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


def _gain(row, name):
    """The paired gain of a row against reference `name`, or None where there is none."""
    n = row[f"gain_{name}_n"]
    return Value("miou", row[f"gain_{name}_mean"], row[f"gain_{name}_std"], n, gain=True,
                 wins=row[f"gain_{name}_wins"]) if n else None


def _pct(x):
    """A fraction as a percentage with 2 decimals (the per-method table's precision), "-" if absent."""
    return render.fmt(Value("miou", float("nan") if x is None else x, n=1), decimals=2, missing="-")


def _markdown(df, names, caption):
    """The caption line, then the per-method grid (dars.render)."""
    columns = ["round", "alpha", "seeds", "mIoU mean", "mIoU std",
               *[f"gain vs {label}" for label in GAIN_REFERENCES.values()], *names]
    rows = []
    for _, row in df.iterrows():
        alpha = row["alpha"]
        cells = [str(row["round"]),
                 "-" if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)) else f"{alpha:g}",
                 str(row["seeds"]), _pct(row["miou_mean"]), _pct(row["miou_std"]),
                 *[render.fmt(_gain(row, name), decimals=2, missing="-") for name in GAIN_REFERENCES],
                 *[_pct(row[n]) for n in names]]
        rows.append((str(row["method"]), cells))
    return caption + "\n\n" + render.markdown(render.Table(caption, "method", columns, rows, []))


def method_table(miou_files, out_csv, out_md):
    """Per-method table (mean over seeds) for one dataset/split/round; returns the DataFrame."""
    runs = load_runs(miou_files)
    what = "method_table"
    dataset = agree(runs, "dataset", what)
    split = agree(runs, "split", what)
    # Numbers measured under different protocols or splits must not share a table.
    protocol = agree(runs, "protocol", what)
    source = agree(runs, "split_source", what)
    family = agree(runs, "split_family", what) if any("split_family" in r for r in runs) else None
    if family not in (None, "random"):  # a published list: numbers compare only within its family
        source = f"{source} ({family} family)"
    methods = [r for r in runs if r["method"] != "baseline"]
    rnd = agree(methods, "round", what + " (methods other than the baseline)") if methods else 0
    names = class_names(runs, what)
    gains = [f"gain_{name}_{x}" for name in GAIN_REFERENCES for x in ("mean", "std", "wins", "n")]
    df = pd.DataFrame(_paired_gains(_group_rows(runs, names)),
                      columns=["method", "round", "alpha", "seeds", "miou_mean", "miou_std", *names, *gains])
    with atomic_path(out_csv, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)  # shortest round-trip repr: full precision
    caption = (f"Table: mIoU (%) on {dataset}, split {split}, round {rnd}, protocol {protocol}, "
               f"split source {source}; mean and sample std over seeds. Gains are paired: mean ± std of "
               f"the per-seed differences against round 0 and against the supervised control (a seed fixes "
               f"the split, the round-0 model and the augmentation stream), [k/n]: seeds with the mean's sign.")
    caption = " ".join([caption, departure_note(runs)]).strip()
    with atomic_path(out_md, suffix=".md") as tmp:
        tmp.write_text(_markdown(df, names, caption))
    return df


# ---------------------------------------------------------------- commands

def add_aggregate_arguments(parser):
    """mean/std over seeds of per-run miou.json files"""
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)


def aggregate_main(args):
    aggregate_seeds(args.files, args.out)


def add_table_arguments(parser):
    """per-method table (CSV + Markdown) of per-run miou.json files"""
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)


def table_main(args):
    method_table(args.files, args.out_csv, args.out_md)


COMMANDS = {"aggregate": (add_aggregate_arguments, aggregate_main), "table": (add_table_arguments, table_main)}
