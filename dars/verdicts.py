"""The paper summary (`python -m dars paper-summary`): tables S1-S7 as produced, each beside the
published values of the same rows (dars.published) with one verdict: does the embedded result
go in the paper's direction?

It reads only the tables' CSVs (dars.tables writes them: one line per cell with its per-seed
values), so every figure in it is one the tables show. Verdicts compare directions, never
values: the embedded domain is not Cityscapes. A verdict is `agrees` or `differs`; where the
decisive paired difference (a seed fixes the split, round 0 and the augmentation stream of
every run it pairs) does not have one sign on every seed, it is marked `(within seed noise)`,
so a ranking decided by one seed is never read as a finding. The gates of the `evidence` target
(round 0 converged, labels the limit) are computed from S4 and S5's runs and printed first: a
direction read off runs whose gates fail says little about pseudo labels."""
from html import escape

import pandas as pd

from . import published, render
from .evidence import GATES
from .io import DarsError, atomic_path
from .records import Value, paired_gain
from .render import MINUS, fmt
from .specs import CONTROL, ROUND0, load_spec

MIOU = "mIoU"
NOISE = " (within seed noise)"  # a verdict's mark when a seed reverses the deciding difference


def read_cells(csv):
    """{(row, column): Value} of a table CSV (dars.render.CSV_COLUMNS)."""
    try:
        df = pd.read_csv(csv, keep_default_na=False, dtype={"seeds": str, "values": str, "wins": str})
    except (OSError, pd.errors.ParserError) as e:
        raise DarsError(f"{csv}: cannot read the table ({e}); rebuild it with `snakemake paper`") from e
    missing = set(render.CSV_COLUMNS) - set(df.columns)
    if missing:
        raise DarsError(f"{csv}: not a table CSV (no column {', '.join(sorted(missing))})")
    cells = {}
    for r in df.itertuples(index=False):
        seeds = tuple(int(s) for s in str(r.seeds).split(";") if s != "")
        values = tuple(float(v) for v in str(r.values).split(";") if v != "")
        cells[(str(r.row), str(r.column))] = Value(
            r.metric, float(r.mean), float(r.std) if r.std != "" else float("nan"), int(r.n), seeds,
            gain=r.metric.endswith("_gain"), values=values, wins=int(r.wins) if r.wins != "" else 0)
    return cells


def by_label(cells, metric="miou"):
    """{label: Value} of a one-metric table, whichever way it is oriented (S1 has its settings as
    columns, S2/S3 as rows; the per-class tables have an mIoU column)."""
    out = {}
    for (row, column), v in cells.items():
        if v.metric == metric:
            out[column if row.startswith(MIOU) else row] = v
    return out


def settled(g):
    """'' when every seed's difference has the mean's sign, else the noise mark."""
    return "" if g is not None and g.n >= 2 and g.wins == g.n else NOISE


def _pct(v):
    return fmt(v, 2)


def sweep_verdict(name, cells):
    """S1-S3: which setting is best, ours against the paper's, by the paired difference."""
    pub = published.TABLES[name]
    mious = by_label(cells)
    ref = mious.pop(pub.get("reference"), None)
    ours = max(mious, key=lambda k: mious[k].mean)
    if pub["best"] not in mious:
        return "differs", f"the paper's best row {pub['best']!r} is not in this table"
    if ours == pub["best"]:
        second = max((k for k in mious if k != ours), key=lambda k: mious[k].mean)
        g = paired_gain(mious[ours], mious[second])
        text = f"best: {ours} ({_pct(mious[ours])}), ahead of {second} by {_pct(g)}"
        verdict = "agrees" + settled(g)
    else:
        g = paired_gain(mious[ours], mious[pub["best"]])
        text = f"best: {ours} ({_pct(mious[ours])}); {ours} {MINUS} {pub['best']} = {_pct(g)}"
        verdict = "differs" + settled(g)
    if ref is not None:
        beat = [k for k in mious if paired_gain(mious[k], ref).mean > 0]
        text += f"; {len(beat)} of {len(mious)} settings beat {pub['reference']} ({_pct(ref)})"
    return verdict, text


def order_verdict(values, order, lower_first=False, what="mIoU"):
    """Whether our means rank the paper's rows as the paper does (`order`: best first; with
    `lower_first` the smallest value is best, as for a D_KL). Every adjacent paired difference in
    the paper's order must have one sign on every seed for the verdict to be settled."""
    labels = [k for k in order if k in values]
    if len(labels) < 2:
        return "differs", f"fewer than two of the paper's rows ({', '.join(order)}) are in this table"
    ranked = sorted(labels, key=lambda k: values[k].mean * (1 if lower_first else -1))
    steps = [paired_gain(values[a], values[b]) for a, b in zip(labels, labels[1:])]
    noise = "" if all(settled(s) == "" for s in steps) else NOISE
    text = f"{what}: " + (" < " if lower_first else " > ").join(f"{k} {fmt(values[k], 2)}" for k in ranked)
    return ("agrees" if ranked == labels else "differs") + noise, text


def _row_by_role(roles, role):
    return next((label for label, r in roles.items() if r == role), None)


def per_class_verdict(name, cells, roles):
    """S4 (and S6): the paper's ranking of the methods on mIoU, the tail and the control."""
    pub = published.TABLES[name]
    mious = {row: v for (row, column), v in cells.items() if column == MIOU and not v.gain}
    if "order" in pub:
        verdict, text = order_verdict(mious, pub["order"])
    else:  # S6: the paper's rows here are its own methods (its other rows are earlier work)
        paper_rows = [k for k in published.TABLES["s7"]["order"] if k in mious]
        best = max(paper_rows, key=lambda k: mious[k].mean)
        verdict = "agrees" if best == pub["best"] else "differs"
        text = f"best mIoU of the paper's methods: {best} ({_pct(mious[best])})"
    classes = [c for (row, c), v in cells.items() if v.metric == "iou" and row in mious and not v.gain]
    wins = {}
    for c in dict.fromkeys(classes):
        col = {row: cells[(row, c)] for row in mious if (row, c) in cells}
        top = max(col, key=lambda k: col[k].mean)
        if col[top].mean > 0:
            wins[top] = wins.get(top, 0) + 1
    text += "; best per class: " + ", ".join(f"{k} {n}" for k, n in sorted(wins.items(), key=lambda x: -x[1]))
    tails = {row: cells[(row, "tail")] for row in mious if (row, "tail") in cells}
    if tails and max(v.mean for v in tails.values()) > 0:
        best_tail = max(tails, key=lambda k: tails[k].mean)
        text += f"; best tail mIoU: {best_tail} ({_pct(tails[best_tail])})"
    control = _row_by_role(roles, CONTROL)
    if control in mious:
        vs = [f"{row} {_pct(paired_gain(mious[row], mious[control]))}" for row in mious
              if roles.get(row) not in (CONTROL, ROUND0)]
        text += f"; against the compute-matched control ({control}): " + ", ".join(vs)
    return verdict, text


def iterative_verdict(cells):
    """S5: round 2 over round 1 at every split, and the gain over the baseline by split."""
    columns = [c for (row, c) in cells if row == "Baseline" and not c.startswith("oracle")]
    parts, ok, noise = [], True, ""
    gains = {}
    for c in dict.fromkeys(columns):
        r1, r2, base = cells.get(("DARS round 1", c)), cells.get(("DARS round 2", c)), cells.get(("Baseline", c))
        if r1 is None or r2 is None:
            raise DarsError(f"S5: column {c} has no DARS round 1 and round 2 rows")
        g = paired_gain(r2, r1)
        gains[c] = paired_gain(r2, base)
        ok &= g.mean > 0
        noise = noise or settled(g)
        parts.append(f"{c}: round 2 − round 1 {_pct(g)}, round 2 − Baseline {_pct(gains[c])}")
    if len(gains) >= 2:
        a, b = list(gains)[:2]
        larger = "yes" if gains[a].mean > gains[b].mean else "no"
        parts.append(f"gain over Baseline larger at {a} than at {b}: {larger}")
    return ("agrees" + noise if ok else "differs" + noise), "; ".join(parts)


def kl_verdict(cells):
    """S7: the D_KL ordering and the mIoU ordering of the paper's rows."""
    pub = published.TABLES["s7"]
    kls = {row: v for (row, column), v in cells.items() if v.metric == "kl_true_pseudo"}
    mious = {row: v for (row, column), v in cells.items() if v.metric == "miou"}
    kl_verdict_, kl_text = order_verdict(kls, pub["kl_order"], lower_first=True, what="D_KL(true ‖ pseudo)")
    miou_verdict, miou_text = order_verdict(mious, pub["order"])
    verdict = "agrees" if kl_verdict_.startswith("agrees") and miou_verdict.startswith("agrees") else "differs"
    noise = NOISE if kl_verdict_.endswith(NOISE) or miou_verdict.endswith(NOISE) else ""
    return verdict + noise, f"{kl_text} ({kl_verdict_}); {miou_text} ({miou_verdict})"


def gates(s4, s5, roles, split):
    """The evidence gates on the paper's own runs: control − round 0 at round 1 (S4) and the
    oracle − round 0 (S5's 1/split column)."""
    control, base = _row_by_role(roles, CONTROL), _row_by_role(roles, ROUND0)
    lines = []
    if control and base:
        g = paired_gain(s4[(control, MIOU)], s4[(base, MIOU)])
        ok = g.mean <= GATES["converged"]
        lines.append(f"converged: {'PASS' if ok else 'FAIL'}: {control} {MINUS} {base} = {fmt(g, 2)} mIoU at round 1 "
                     f"(must be at most +{100 * GATES['converged']:.2f})")
    oracle = next(((r, c) for (r, c) in s5 if c.startswith("oracle") and r == "Baseline"), None)
    if oracle and ("Baseline", split) in s5:
        g = paired_gain(s5[oracle], s5[("Baseline", split)])
        ok = g.mean >= GATES["label_limited"]
        lines.append(f"label-limited: {'PASS' if ok else 'FAIL'}: oracle {MINUS} Baseline ({split}) = {fmt(g, 2)} "
                     f"mIoU (must be at least +{100 * GATES['label_limited']:.2f})")
    return lines


def build(spec):
    """(gate lines, [(table, setting, published, ours, verdict, reason)])."""
    cells = {name: read_cells(path) for name, path in spec["tables"].items()}
    roles = spec["roles"]
    rows = []
    for name in ("s1", "s2", "s3"):
        rows.append((name, *sweep_verdict(name, cells[name])))
    rows.append(("s4", *per_class_verdict("s4", cells["s4"], roles["s4"])))
    rows.append(("s5", *iterative_verdict(cells["s5"])))
    rows.append(("s6", *per_class_verdict("s6", cells["s6"], roles["s6"])))
    rows.append(("s7", *kl_verdict(cells["s7"])))
    return gates(cells["s4"], cells["s5"], roles["s4"], spec["split"]), rows


def _published_text(name):
    pub = published.TABLES[name]
    return f"{pub['setting']}: " + "; ".join(f"{k} {v}" for k, v in pub["values"].items())


def markdown(gate_lines, rows):
    lines = ["**The supplementary's tables S1-S7 against the published ones**", "",
             f"Published values: {published.SOURCE} (the authors' results on real data, transcribed; "
             "not ours). Ours: this run's tables (results/paper/s*.md), mean ± std over seeds, paired "
             "differences with [seeds with the mean's sign/seeds]. A verdict compares directions only.", "",
             *(f"- {g}" for g in gate_lines), "",
             "| table | the paper's direction | verdict | ours |", "|:---|:---|:---|:---|"]
    for name, verdict, text in rows:
        lines.append(f"| {name.upper()} | {published.TABLES[name]['direction']} | {verdict} | {text} |")
    lines += ["", "Published rows:", ""]
    lines += [f"- {name.upper()}: {_published_text(name)}" for name, _, _ in rows]
    return "\n".join(lines) + "\n"


STYLE = "table{border-collapse:collapse;font:13px sans-serif}" + render.CELL_CSS + \
        "td,th{white-space:normal;text-align:left;vertical-align:top}p,li{font:13px sans-serif}"


def html(gate_lines, rows):
    body = "<h3>The supplementary's tables S1-S7 against the published ones</h3>"
    body += f"<p>Published values: {escape(published.SOURCE)} (the authors' results on real data; not ours).</p>"
    body += "<ul>" + "".join(f"<li>{escape(g)}</li>" for g in gate_lines) + "</ul>"
    body += "<table><tr><th>table</th><th>the paper's direction</th><th>verdict</th><th>ours</th></tr>"
    body += "".join(f"<tr><th>{name.upper()}</th><td>{escape(published.TABLES[name]['direction'])}</td>"
                    f"<td>{escape(v)}</td><td>{escape(t)}</td></tr>" for name, v, t in rows)
    body += "</table><ul>" + "".join(f"<li>{name.upper()}: {escape(_published_text(name))}</li>"
                                     for name, _, _ in rows) + "</ul>"
    return render.page(body, STYLE)


def write(spec, out_md, out_csv, out_html):
    gate_lines, rows = build(spec)
    with atomic_path(out_md, suffix=".md") as tmp:
        tmp.write_text(markdown(gate_lines, rows))
    frame = pd.DataFrame([{"table": n, "verdict": v, "ours": t, "published": _published_text(n)} for n, v, t in rows])
    with atomic_path(out_csv, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(out_html, suffix=".html") as tmp:
        tmp.write_text(html(gate_lines, rows))
    return gate_lines, rows


def add_arguments(parser):
    """the paper's tables beside the published ones, with a direction verdict per table"""
    parser.add_argument("--spec", required=True, help="inline JSON or a JSON file (dars.paper.summary_spec)")
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-html", required=True)


def main(args):
    gate_lines, rows = write(load_spec(args.spec), args.out_md, args.out_csv, args.out_html)
    for line in gate_lines:
        print(line)
    for name, verdict, _ in rows:
        print(f"{name.upper()}: {verdict}")


COMMANDS = {"paper-summary": (add_arguments, main)}
