"""Summaries over runs: mean/std of mIoU over seeds, and the per-method comparison table.

Inputs are per-run `miou.json` files (docs/formats.md). Numbers stay fractions in [0, 1] in
JSON and CSV; only the Markdown table shows percentages, because it is read by people.
"""
import math

import numpy as np
import pandas as pd

from .classes import CLASS_NAMES
from .io import DarsError, atomic_path, read_json, write_json

# Fields that define "the same experiment": runs that differ here must never be averaged.
IDENTITY = ("dataset", "split", "round", "method")
# Descriptive fields copied to the aggregate only when every run agrees on them.
COPIED = ("alpha", "scale_range", "protocol", "split_source", "class_names")


def _nan(x):
    """JSON null (an absent class) -> NaN, so numpy's nan-aware reductions skip it."""
    return float("nan") if x is None else float(x)


def _null(x):
    """NaN -> None: strict JSON has no NaN."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _std(values):
    """Sample standard deviation (ddof=1): seeds are a sample of possible runs; 0.0 for one seed."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.std(values, ddof=1)) if len(values) >= 2 else 0.0


def _nanmean_columns(rows):
    """Per-class mean over runs, skipping runs where the class is absent; NaN if absent in all."""
    a = np.array([[_nan(v) for v in row] for row in rows], dtype=np.float64)
    out = np.full(a.shape[1], np.nan)
    seen = ~np.isnan(a).all(axis=0)
    out[seen] = np.nanmean(a[:, seen], axis=0)
    return out


def _load_runs(miou_files):
    runs = []
    for f in miou_files:
        run = read_json(f)
        missing = [k for k in ("miou", "iou", "seed", *IDENTITY) if k not in run]
        if missing:
            hint = " (it looks like an aggregate miou.json; pass per-run files)" if "miou_mean" in run else ""
            raise DarsError(f"{f}: not a per-run miou.json, missing {missing}{hint}")
        run["_file"] = str(f)
        runs.append(run)
    if not runs:
        raise DarsError("no miou.json files given")
    return runs


def _agree(runs, key, what):
    """The single value all runs have for `key`, or DarsError naming the disagreeing files."""
    values = {repr(r.get(key)): r for r in runs}
    if len(values) > 1:
        detail = ", ".join(f"{r['_file']}: {r.get(key)!r}" for r in values.values())
        raise DarsError(f"{what}: files disagree on {key!r} ({detail})")
    return runs[0].get(key)


def _check_seeds(runs, what):
    seeds = [r["seed"] for r in runs]
    dup = sorted({s for s in seeds if seeds.count(s) > 1}, key=repr)
    if dup:
        files = [r["_file"] for r in runs if r["seed"] in dup]
        raise DarsError(f"{what}: seed(s) {dup} appear more than once ({files}); each seed must be counted once")


def _class_names(runs, what):
    names = _agree(runs, "class_names", what) if any("class_names" in r for r in runs) else None
    n = _agree([dict(r, n=len(r["iou"])) for r in runs], "n", what + " (number of classes)")
    if names is None:
        names = list(CLASS_NAMES) if n == len(CLASS_NAMES) else [f"class {i}" for i in range(n)]
    return list(names)


def aggregate_seeds(miou_files, out_json):
    """Mean and sample std of mIoU over the seeds of one dataset/split/round/method."""
    runs = _load_runs(miou_files)
    for key in IDENTITY:
        _agree(runs, key, "aggregate_seeds")
    _check_seeds(runs, "aggregate_seeds")
    names = _class_names(runs, "aggregate_seeds")
    runs.sort(key=lambda r: (0, r["seed"], "") if isinstance(r["seed"], int) else (1, 0, str(r["seed"])))
    mious = [_nan(r["miou"]) for r in runs]
    out = {key: runs[0][key] for key in IDENTITY}
    out["seeds"] = [r["seed"] for r in runs]
    out["num_seeds"] = len(runs)
    out["miou_mean"] = _null(float(np.mean(mious)))
    out["miou_std"] = _null(_std(mious))
    out["std"] = "sample"  # ddof=1 (0.0 for a single seed)
    out["iou_mean"] = [_null(v) for v in _nanmean_columns([r["iou"] for r in runs])]
    out["per_seed"] = [{"seed": r["seed"], "miou": _null(_nan(r["miou"])), "file": r["_file"]} for r in runs]
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
        _check_seeds(g, f"method_table ({key[0]}, round {key[1]})")
        mious = [_nan(r["miou"]) for r in g]
        row = {"method": key[0], "round": key[1], "alpha": g[0].get("alpha"), "seeds": len(g),
               "miou_mean": float(np.mean(mious)), "miou_std": _std(mious)}
        row.update(zip(names, _nanmean_columns([r["iou"] for r in g])))
        row["_per_seed"] = {r["seed"]: m for r, m in zip(g, mious)}
        row["_control"] = key[1] > 0 and g[0].get("labeler") == "none"
        rows.append(row)
    return rows


GAIN_REFERENCES = {"baseline": "round 0", "control": "control"}


def _paired_gains(rows):
    """Per-seed differences of each row's mIoU against round 0 and against the supervised control
    (labeler none, same round): a seed fixes the split, the round-0 model and the augmentation
    stream of every method, so seeds pair runs. Columns gain_<ref>_{mean,std,wins,n}; wins counts
    the seeds whose difference has the mean's sign."""
    refs = {"baseline": next((r for r in rows if r["round"] == 0), None),
            "control": next((r for r in rows if r["_control"]), None)}
    for row in rows:
        for name, ref in refs.items():
            # Round 0 is no method of the control's round: it has no gain against it.
            skip = ref is None or ref is row or (name == "control" and row["round"] == 0)
            common = [] if skip else [s for s in row["_per_seed"] if s in ref["_per_seed"]]
            d = np.array([row["_per_seed"][s] - ref["_per_seed"][s] for s in common])
            mean = float(d.mean()) if len(d) else float("nan")
            row[f"gain_{name}_mean"] = mean
            row[f"gain_{name}_std"] = _std(d) if len(d) else float("nan")
            row[f"gain_{name}_wins"] = int(np.sum(np.sign(d) == np.sign(mean))) if len(d) else 0
            row[f"gain_{name}_n"] = len(d)
    for row in rows:
        del row["_per_seed"], row["_control"]
    return rows


def _gain_cell(row, name):
    n = row[f"gain_{name}_n"]
    if not n:
        return "-"
    text = f"{100 * row[f'gain_{name}_mean']:+.2f}"
    return text if n < 2 else f"{text} ± {100 * row[f'gain_{name}_std']:.2f} [{row[f'gain_{name}_wins']}/{n}]"


def _pct(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _markdown(df, names, caption):
    """Markdown with the caption line above (pandas' to_markdown needs an optional package)."""
    headers = ["method", "round", "alpha", "seeds", "mIoU mean", "mIoU std",
               *[f"gain vs {label}" for label in GAIN_REFERENCES.values()], *names]
    lines = [caption, "", "| " + " | ".join(headers) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"]
    for _, row in df.iterrows():
        alpha = row["alpha"]
        cells = [str(row["method"]), str(row["round"]),
                 "-" if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)) else f"{alpha:g}",
                 str(row["seeds"]), _pct(row["miou_mean"]), _pct(row["miou_std"]),
                 *[_gain_cell(row, name) for name in GAIN_REFERENCES], *[_pct(row[n]) for n in names]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def method_table(miou_files, out_csv, out_md):
    """Per-method table (mean over seeds) for one dataset/split/round; returns the DataFrame."""
    runs = _load_runs(miou_files)
    what = "method_table"
    dataset = _agree(runs, "dataset", what)
    split = _agree(runs, "split", what)
    # Numbers measured under different protocols or splits must not share a table.
    protocol = _agree(runs, "protocol", what)
    source = _agree(runs, "split_source", what)
    family = _agree(runs, "split_family", what) if any("split_family" in r for r in runs) else None
    if family not in (None, "random"):  # a published list: numbers compare only within its family
        source = f"{source} ({family} family)"
    methods = [r for r in runs if r["method"] != "baseline"]
    rnd = _agree(methods, "round", what + " (methods other than the baseline)") if methods else 0
    names = _class_names(runs, what)
    gains = [f"gain_{name}_{x}" for name in GAIN_REFERENCES for x in ("mean", "std", "wins", "n")]
    df = pd.DataFrame(_paired_gains(_group_rows(runs, names)),
                      columns=["method", "round", "alpha", "seeds", "miou_mean", "miou_std", *names, *gains])
    with atomic_path(out_csv, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)  # shortest round-trip repr: full precision
    caption = (f"Table: mIoU (%) on {dataset}, split {split}, round {rnd}, protocol {protocol}, "
               f"split source {source}; mean and sample std over seeds. Gains are paired: mean ± std of "
               f"the per-seed differences against round 0 and against the supervised control (a seed fixes "
               f"the split, the round-0 model and the augmentation stream), [k/n]: seeds with the mean's sign.")
    with atomic_path(out_md, suffix=".md") as tmp:
        tmp.write_text(_markdown(df, names, caption))
    return df
