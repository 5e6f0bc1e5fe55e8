"""The DARS supplementary's tables (S1-S7), rendered from per-run artifacts (loaded and checked
by dars/records.py).

A spec (a JSON dict) names the per-run `miou.json` files of every cell; a cell is the mean and
sample std (ddof=1) over its seeds; a gain is paired (per-seed differences, records.paired_gain).
Kinds: `sweep` (one metric over settings: S1-S3),
`per_class` (per-class IoU, mIoU and tail-class mIoU per method, plus gain rows: S4, S6),
`iterative` (rounds x settings: S5) and `kl` (D_KL(true || pseudo) vs mIoU gain: S7).
A table of D_KL (`kl`, or `sweep` with metric `kl_true_pseudo`) also lists, under
`pseudo_stats`, each cell's pseudo_stats.json files ({label: [file per run, in the order of its
miou.json files]}) for the cells whose runs trained on pseudo labels.
As in dars/report.py the CSV keeps fractions (one line per cell: mean, std, n, seeds, per-seed
values and, for gains, the sign count); only the Markdown shows percentages, because people
read it. Grids, number format and CSV lines are dars.render's; specs are built by dars.paper
and dars.specs.
"""
from dataclasses import replace
from html import escape
from pathlib import Path

import numpy as np

from . import render
from .io import DarsError, atomic_path, read_json
from .records import (
    TAIL_SHARE,
    agree,
    class_names,
    departure_note,
    has_pseudo_labels,
    load_cell,
    miou,
    paired_gain,
    run_pseudo_stats,
    stat,
    tail_classes,
    to_nan,
)
from .render import MINUS, TAIL_MARK, Table
from .specs import load_spec, spec_inputs

LABELS = {"miou": "mIoU (%)", "kl_true_pseudo": "D_KL(true ‖ pseudo)", "kl_true_prior": "D_KL(true ‖ prior)"}


def kl_value(runs, what):
    """D_KL(true || pseudo) of the pseudo labels each run was trained on (the pseudo_stats.json
    listed with it), or None for runs without pseudo labels (round 0, the supervised control)."""
    if not any(has_pseudo_labels(r) for r in runs):
        return None
    values = []
    for r in runs:
        stats = run_pseudo_stats(r, what)
        if stats["gt"].get("kl_true_pseudo") is None:
            raise DarsError(f"{what}: {r.pseudo_stats} has no gt.kl_true_pseudo")
        values.append(stats["gt"]["kl_true_pseudo"])
    return stat(values, "kl_true_pseudo", runs)


def prior_kl_value(spec, label, runs, what):
    """D_KL(true || prior) of the prior a row's labeler aligned to (`priors` lists one prior.json per
    run, as prior.json records it), or None for a row without a prior or a prior without a truth."""
    files = (spec.get("priors") or {}).get(label)
    if not files:
        return None
    if len(files) != len(runs):
        raise DarsError(f"{what}: {len(files)} prior files for {len(runs)} runs")
    return stat([read_json(f).get("kl_true_prior") for f in files], "kl_true_prior", runs)


def _prior_note(spec):
    return ("D_KL(true ‖ prior): KL divergence (nats) from the val labels' class distribution to the prior "
            "the row's labeler aligned to (its prior.json kl_true_prior; – = no prior or no truth)."
            if spec.get("priors") else None)


def _cell(spec, label, files, what, min_seeds):
    """The runs of one labelled cell, with the pseudo_stats.json the spec lists for them."""
    return load_cell(files, what, min_seeds, (spec.get("pseudo_stats") or {}).get(label))


def _mapping(spec, key):
    cells = spec.get(key)
    if not isinstance(cells, dict) or not cells:
        raise DarsError(f"table spec ({spec.get('kind')}): {key!r} must be a non-empty {{label: [files]}} dict")
    return cells


GAIN_NOTE = ("gains are paired: mean ± std of the per-seed differences (a seed fixes the split, the round-0 "
             "model and the augmentation stream of every method), [k/n] = seeds whose difference has the "
             "sign of the mean")


def _seed_note(table):
    ns = sorted({v.n for _, vals in table.rows for v in vals if v is not None and not v.gain and v.n})
    seeds = "/".join(map(str, ns)) if ns else "0"
    return (f"Mean ± sample standard deviation (ddof=1) over {seeds} seed(s) per cell; "
            f"no ± where a cell has one seed; {GAIN_NOTE}; – = not applicable.")


def sweep_table(spec, title, min_seeds):
    """S1-S3: one metric over settings; `orientation` row = settings are columns of one row."""
    orientation = spec.get("orientation") or ("row" if "columns" in spec else "column")
    if orientation not in ("row", "column"):
        raise DarsError(f"{title}: orientation must be 'row' or 'column', got {orientation!r}")
    cells = dict(_mapping(spec, "columns" if orientation == "row" else "rows"))
    for label, files in (spec.get("reference") or {}).items():
        if label in cells:
            raise DarsError(f"{title}: reference label {label!r} is also a setting")
        cells[label] = files
    metric = spec.get("metric", "miou")
    if metric not in LABELS:
        raise DarsError(f"{title}: metric must be one of {sorted(LABELS)}, got {metric!r}")
    values = []
    for label, files in cells.items():
        runs = _cell(spec, label, files, f"{title}: {label!r}", min_seeds)
        values.append(miou(runs) if metric == "miou" else kl_value(runs, f"{title}: {label!r}"))
    name = spec.get("label", LABELS[metric])
    if orientation == "row":
        return Table(title, spec.get("corner", ""), list(cells), [(name, values)], [])
    return Table(title, spec.get("corner", ""), [name], [(k, [v]) for k, v in zip(cells, values)], [])


def _method_rows(spec, title, min_seeds):
    """{row label: runs} of a per-method table; every row must share dataset, split and protocol."""
    cells = {label: _cell(spec, label, files, f"{title}: row {label!r}", min_seeds)
             for label, files in _mapping(spec, "rows").items()}
    every = [r for runs in cells.values() for r in runs]
    for key in ("dataset", "split", "protocol"):
        agree(every, key, f"{title} (all rows)")
    return cells, every


def per_class_table(spec, title, min_seeds):
    """S4/S6: per-class IoU, mIoU and tail mIoU per method; `gains` adds difference rows."""
    cells, every = _method_rows(spec, title, min_seeds)
    names = class_names(every, title)
    tail = (tail_classes(spec["val_prior"], names, spec.get("tail_share", TAIL_SHARE))
            if spec.get("val_prior") else None)
    marks = set(tail or [])
    columns = [n + (TAIL_MARK if i in marks else "") for i, n in enumerate(names)] + ["mIoU"]
    columns += ["tail"] if tail is not None else []
    rows, notes = [], []
    for label, runs in cells.items():
        iou = np.array([[to_nan(v) for v in r["iou"]] for r in runs], dtype=np.float64)
        vals = [stat(iou[:, c], "iou", runs) for c in range(len(names))]
        vals.append(miou(runs))
        if tail is not None:
            # Per seed first, so the std is over seeds like every other cell.
            per_seed = [np.nanmean(row[tail]) if tail and not np.isnan(row[tail]).all() else None for row in iou]
            vals.append(stat(per_seed, "tail", runs))
        rows.append((label, vals))
    by_label = dict(rows)
    for pair in spec.get("gains") or []:
        a, b = pair
        if a not in by_label or b not in by_label:
            raise DarsError(f"{title}: gain {a!r} - {b!r} names a row that is not in rows {list(by_label)}")
        rows.append((f"{a} {MINUS} {b}", [paired_gain(x, y) for x, y in zip(by_label[a], by_label[b])]))
    if spec.get("priors"):
        columns.append(LABELS["kl_true_prior"])
        rows = [(label, vals + [prior_kl_value(spec, label, cells[label], f"{title}: row {label!r}")
                                if label in cells else None]) for label, vals in rows]
        notes.append(_prior_note(spec))
    if tail is not None:
        share = spec.get("tail_share", TAIL_SHARE)
        notes.append(f"{TAIL_MARK} tail class: under {100 * share:g}% of the val ground-truth pixels "
                     f"({spec['val_prior']}); tail = mean IoU over the {len(tail)} tail classes"
                     + ("" if tail else " (none here)") + ".")
    notes.append("IoU, mIoU and gains in %.")
    return Table(title, spec.get("corner", "method"), columns, rows, notes)


def _iterative_column(c, what, min_seeds):
    """{row name: mIoU cell} of one setting, each row checked to hold the round it claims."""
    if not isinstance(c, dict) or "baseline" not in c or not c.get("rounds"):
        raise DarsError(f"{what}: needs {{'baseline': [files], 'rounds': [[files], ...]}}, "
                        "optionally 'supervised': [files]")
    last = len(c["rounds"])
    parts = [("baseline", 0, c["baseline"])] + [(f"round {i + 1}", i + 1, f) for i, f in enumerate(c["rounds"])]
    parts += [("supervised", last, c["supervised"])] if c.get("supervised") else []
    cells = {}
    for name, rnd, files in parts:
        runs = cells[name] = load_cell(files, f"{what} {name}", min_seeds)
        if runs[0]["round"] != rnd:
            raise DarsError(f"{what}: the {name} row must be round {rnd}, "
                            f"{runs[0].file} is round {runs[0]['round']}")
    for key in ("dataset", "split"):  # one setting = one dataset and split, whatever the round
        agree([r for runs in cells.values() for r in runs], key, what)
    return {name: miou(runs) for name, runs in cells.items()}, last


def iterative_table(spec, title, min_seeds):
    """S5: rows Baseline, round 1..R, the supervised control at round R and the gain; one column
    per setting, plus optional oracle columns filled on the Baseline row only."""
    cols, last = {}, {}
    for label, c in _mapping(spec, "columns").items():
        cols[label], last[label] = _iterative_column(c, f"{title}: column {label!r}", min_seeds)
    at = str(max(last.values())) if len(set(last.values())) == 1 else "last"
    oracle = {k: miou(load_cell(f, f"{title}: oracle {k!r}", min_seeds))
              for k, f in (spec.get("oracle") or {}).items()}
    pad = [None] * len(oracle)
    method = spec.get("method")
    rows = [("Baseline", [c["baseline"] for c in cols.values()] + list(oracle.values()))]
    for i in range(1, max(last.values()) + 1):
        label = f"{method} round {i}" if method else f"round {i}"
        rows.append((label, [c.get(f"round {i}") for c in cols.values()] + pad))
    if any("supervised" in c for c in cols.values()):
        rows.append((f"supervised (round {at})", [c.get("supervised") for c in cols.values()] + pad))
    rows.append((f"gain (round {at} {MINUS} Baseline)",
                 [paired_gain(c[f"round {last[k]}"], c["baseline"]) for k, c in cols.items()] + pad))
    if any("supervised" in c for c in cols.values()):
        rows.append((f"gain (round {at} {MINUS} supervised)",
                     [paired_gain(c[f"round {last[k]}"], c.get("supervised")) for k, c in cols.items()] + pad))
    notes = ["mIoU in %; supervised = the compute-matched control trained on the labeled images only."]
    return Table(title, spec.get("corner", ""), list(cols) + list(oracle), rows, notes)


def kl_table(spec, title, min_seeds):
    """S7: D_KL(true || pseudo) of each method's pseudo labels, its mIoU and the gain vs `baseline`."""
    cells, _ = _method_rows(spec, title, min_seeds)
    base = spec.get("baseline", next(iter(cells)))
    if base not in cells:
        raise DarsError(f"{title}: baseline {base!r} is not a row ({list(cells)})")
    mious = {k: miou(runs) for k, runs in cells.items()}
    rows = [(k, [kl_value(runs, f"{title}: row {k!r}"), mious[k],
                 None if k == base else paired_gain(mious[k], mious[base])]) for k, runs in cells.items()]
    notes = [f"D_KL(true ‖ pseudo): KL divergence (nats) from the true class distribution of the unlabeled "
             f"images to that of the pseudo labels (pseudo_stats.json gt.kl_true_pseudo); gain in mIoU "
             f"points over {base}."]
    columns = [LABELS["kl_true_pseudo"], "mIoU (%)", "gain (mIoU)"]
    if spec.get("priors"):  # first: the distribution each labeler aligned to, then what came out
        columns.insert(0, LABELS["kl_true_prior"])
        rows = [(k, [prior_kl_value(spec, k, cells[k], f"{title}: row {k!r}")] + vals) for k, vals in rows]
        notes.append(_prior_note(spec))
    return Table(title, spec.get("corner", "method"), columns, rows, notes)


KINDS = {"sweep": sweep_table, "per_class": per_class_table, "iterative": iterative_table, "kl": kl_table}


def build_table(spec):
    """The Table a spec describes (nothing written)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in KINDS:
        raise DarsError(f"table spec: 'kind' must be one of {sorted(KINDS)}, got {kind!r}")
    min_seeds = int(spec.get("min_seeds", 1))
    table = KINDS[kind](spec, spec.get("title") or kind, min_seeds)
    note = departure_note([read_json(f) for f in spec_inputs(spec) if Path(f).name == "miou.json"])
    return replace(table, notes=table.notes + [note]) if note else table


def markdown(table):
    """The table as a Markdown document: its title, the grid, the seed note and its notes."""
    notes = "\n\n".join([_seed_note(table)] + table.notes)
    return f"**{table.title}**\n\n" + render.markdown(table) + "\n" + notes + "\n"


STYLE = "table{border-collapse:collapse;font:13px sans-serif}" + render.CELL_CSS + "p{font:12px sans-serif;color:#444}"


def html(table):
    """The Markdown document as a standalone HTML page (what `snakemake --report` shows)."""
    notes = "".join(f"<p>{escape(n)}</p>" for n in [_seed_note(table)] + table.notes)
    return render.page(f"<h3>{escape(table.title)}</h3>" + render.html(table) + notes, STYLE)


def write_table(spec, out_csv, out_md, out_html=None):
    """Build the table of `spec` and write its CSV, Markdown (and HTML) atomically; returns the Table."""
    table = build_table(spec)
    with atomic_path(out_csv, suffix=".csv") as tmp:
        render.frame(table).to_csv(tmp, index=False)
    with atomic_path(out_md, suffix=".md") as tmp:
        tmp.write_text(markdown(table))
    if out_html:
        with atomic_path(out_html, suffix=".html") as tmp:
            tmp.write_text(html(table))
    return table


def add_arguments(parser):
    """a supplementary table (S1-S7) from a JSON spec"""
    parser.add_argument("--spec", required=True, help="the spec as inline JSON or a JSON file (docs in dars/tables.py)")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--out-html", help="also an HTML rendering (for the Snakemake report)")


def main(args):
    table = write_table(load_spec(args.spec), args.out_csv, args.out_md, args.out_html)
    print(f"{table.title}: {len(table.rows)} rows x {len(table.columns)} columns -> {args.out_csv}, {args.out_md}")


COMMANDS = {"paper-table": (add_arguments, main)}
