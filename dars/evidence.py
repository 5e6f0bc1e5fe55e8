"""The `evidence` target: does self-training add anything beyond more training steps?

A gain counts only against the compute-matched `supervised` control, on a setting where round 0
is converged (more labeled-only training no longer helps) and labels are the limit (all labels
help a lot). Both gates are computed here from the runs, never assumed, and printed above the
tables; a failed gate is said in words. Every gain is paired: one seed fixes the split, the
round-0 model and the augmentation stream of every method, so the statistic is the per-seed
difference (mean ± std, and [k/n] = seeds whose difference has the sign of the mean).

dars.specs.evidence_spec resolves config.yaml's `evidence:` section into the per-run files;
`write` reads them (miou.json, pseudo_stats.json and split.json through dars.records, the round-0
teacher's shards and the dataset's labels for its calibration) and writes evidence.{md,csv,html};
`write_finding` adds the default target's closing table (dars.finding).
"""
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from . import render
from .classes import IGNORE
from .io import DarsError, atomic_path, read_json, read_label
from .records import TAIL_SHARE, Value, load_cell, paired_gain, run_pseudo_stats, split_sizes, stat, tail_classes
from .render import MINUS, Table, fmt
from .shards import Shard
from .specs import load_spec

GATES = {"converged": 0.005, "label_limited": 0.08, "step_ratio": 0.5}  # mIoU as fractions
CALIBRATION_BINS = 10


def _tail_mean(iou, tail):
    vals = [iou[c] for c in tail if iou[c] is not None]
    return float(np.mean(vals)) if vals else None


def _cells(spec_, tail):
    """row label -> (runs, mIoU Value, tail Value), checked to be one experiment over the listed seeds."""
    out = {}
    for label, files in spec_["rows"].items():
        runs = load_cell(files, f"evidence: row {label!r}", len(spec_["seeds"]), spec_["pseudo_stats"].get(label))
        out[label] = (runs, stat([r["miou"] for r in runs], "miou", runs),
                      stat([_tail_mean(r["iou"], tail) for r in runs], "tail", runs))
    return out


def _seed_values(v, seeds, metric):
    by_seed = dict(zip(v.seeds, v.values))
    return [Value(metric, by_seed[s], n=1, seeds=(s,), values=(by_seed[s],), gain=v.gain)
            if s in by_seed else None for s in seeds]


def gates(cells, spec_):
    """{name: (passed, Value or ratio, text)} for converged, label-limited and the step ratio."""
    out = {}
    for name, a, b in spec_["comparisons"]:
        if name is None:
            continue
        g = paired_gain(cells[a][1], cells[b][1])
        if name == "converged":
            ok = g.mean <= GATES["converged"]
            out[name] = (ok, f"converged: {'PASS' if ok else 'FAIL'}: {a} {MINUS} {b} = {100 * g.mean:+.2f} mIoU "
                             f"(must be at most +{100 * GATES['converged']:.2f}; per seed {fmt(g)})"
                             + ("" if ok else "; round 0 not converged: gains include extra training"))
        else:
            ok = g.mean >= GATES["label_limited"]
            out[name] = (ok, f"label-limited: {'PASS' if ok else 'FAIL'}: {a} {MINUS} {b} = {100 * g.mean:+.2f} mIoU "
                             f"(must be at least +{100 * GATES['label_limited']:.2f}; per seed {fmt(g)})"
                             + ("" if ok else "; labels are not the limit here, unlabeled data cannot show its worth"))
    base = {r["iteration"] for r in cells["round 0"][0]}
    students = {k: {r["iteration"] for r in cells[k][0]} for k in cells if k.endswith(("r1", "r2"))}
    if len(base) != 1 or any(len(v) != 1 for v in students.values()):
        raise DarsError("evidence: the runs of one row differ in their number of steps; stale outputs?")
    base = base.pop()
    ratio = min(v.pop() for v in students.values()) / base
    ok = ratio >= GATES["step_ratio"]
    out["step_ratio"] = (ok, f"compute: {'PASS' if ok else 'FAIL'}: each student round runs at least {ratio:.2f}x "
                             f"round 0's {base} steps (must be at least {GATES['step_ratio']:.2f}; the authors' "
                             "ratio is about 14)")
    return out


def _pseudo_row(runs, tail, what):
    """Per-seed diagnostics of a row's pseudo labels: coverage, precision, KL, tail shares."""
    keys = ("coverage", "precision", "kl_true_pseudo", "tail_true", "tail_teacher", "tail_pseudo",
            "tail_precision", "tail_recall")
    per = {k: [] for k in keys}
    for r in runs:
        s = run_pseudo_stats(r, what)
        gt = s["gt"]
        tp, on_gt, gt_px = (np.asarray(gt[k], np.float64) for k in ("tp", "pseudo_on_gt", "gt_pixels"))
        pseudo = np.asarray(s["pseudo_counts"], np.float64)
        m = np.asarray([c.get("m", 0) for c in s["thresholds"]["classes"]], np.float64)
        per["coverage"].append(s["coverage"])
        per["precision"].append(tp.sum() / on_gt.sum() if on_gt.sum() else None)
        per["kl_true_pseudo"].append(gt["kl_true_pseudo"])
        per["tail_true"].append(gt_px[tail].sum() / gt_px.sum())
        per["tail_teacher"].append(m[tail].sum() / m.sum())
        per["tail_pseudo"].append(pseudo[tail].sum() / pseudo.sum() if pseudo.sum() else None)
        per["tail_precision"].append(tp[tail].sum() / on_gt[tail].sum() if on_gt[tail].sum() else None)
        per["tail_recall"].append(tp[tail].sum() / gt_px[tail].sum() if gt_px[tail].sum() else None)
    return [stat(per[k], "share" if k != "kl_true_pseudo" else "kl_true_pseudo", runs) for k in keys]


def _prior_kls(spec_, cells):
    """row label -> D_KL(true || prior) over the seeds, for the rows whose labeler aligns to a prior."""
    return {k: stat([read_json(f).get("kl_true_prior") for f in files], "kl_true_prior", cells[k][0])
            for k, files in spec_.get("priors", {}).items()}


def teacher_calibration(shard_dirs, root, num_bins=CALIBRATION_BINS):
    """Pixel accuracy, mean confidence and expected calibration error of a teacher over its shards
    (the unlabeled images, against their ground truth)."""
    count, conf_sum, correct = (np.zeros(num_bins) for _ in range(3))
    for d in shard_dirs:
        shard = Shard(d)
        for i in range(len(shard)):
            meta, pred, conf = shard.get(i)
            if not meta.get("label"):
                raise DarsError(f"{d}: image {meta['id']} has no label path; calibration needs ground truth")
            gt = read_label(Path(root) / meta["label"])
            valid = gt != IGNORE
            c = conf[valid].astype(np.float64)
            b = np.minimum((c * num_bins).astype(int), num_bins - 1)
            count += np.bincount(b, minlength=num_bins)
            conf_sum += np.bincount(b, weights=c, minlength=num_bins)
            correct += np.bincount(b, weights=(pred[valid] == gt[valid]).astype(np.float64), minlength=num_bins)
    n = count.sum()
    if not n:
        raise DarsError(f"{shard_dirs}: no labeled pixel to calibrate on")
    ece = float(np.abs(correct - conf_sum).sum() / n)
    return {"accuracy": float(correct.sum() / n), "confidence": float(conf_sum.sum() / n), "ece": ece}


def _results_tables(spec_, cells, tail):
    """The results, paired gains, pseudo-label, prior and calibration tables."""
    seeds = spec_["seeds"]
    seed_cols = [f"seed {s}" for s in seeds]
    results = Table("Results: mIoU and tail mIoU (%), per row over the seeds", "run",
                    ["steps", "mIoU", "tail"] + seed_cols,
                    [(k, [Value("steps", float(runs[0]["iteration"]), n=1), m, t] + _seed_values(m, seeds, "miou"))
                     for k, (runs, m, t) in cells.items()], [])
    gain_rows = []
    for _, a, b in spec_["comparisons"]:
        g, gt = paired_gain(cells[a][1], cells[b][1]), paired_gain(cells[a][2], cells[b][2])
        gain_rows.append((f"{a} {MINUS} {b}", [g, gt] + _seed_values(g, seeds, "miou")))
    gains = Table("Paired gains (mIoU points): per-seed differences", "comparison",
                  ["mIoU", "tail"] + seed_cols, gain_rows, [])
    diag_cols = ["coverage", "precision", "D_KL(true ‖ pseudo)", "tail: true share", "tail: teacher share (m_c)",
                 "tail: pseudo share", "tail: precision", "tail: recall"]
    pseudo = Table("Pseudo labels on the unlabeled images (%; D_KL in nats)", "run", diag_cols,
                   [(k, _pseudo_row(cells[k][0], tail, f"evidence: row {k!r}")) for k in spec_["pseudo_stats"]], [])
    calib = [teacher_calibration(dirs, spec_["root"]) for dirs in spec_["teacher_shards"]]
    cal_runs = [{"seed": s} for s in seeds]
    calibration = Table("Round-0 teacher on the unlabeled images (%): pixel accuracy vs mean confidence", "teacher",
                        ["accuracy", "confidence", "ECE"],
                        [("round 0", [stat([c[k] for c in calib], "share", cal_runs)
                                      for k in ("accuracy", "confidence", "ece")])], [])
    priors = Table("Priors the labelers aligned to: D_KL(true ‖ prior) in nats, the truth being the val labels' "
                   "class distribution (prior.json kl_true_prior)", "run", ["D_KL(true ‖ prior)"] + seed_cols,
                   [(k, [v] + _seed_values(v, seeds, "kl_true_prior"))
                    for k, v in _prior_kls(spec_, cells).items()], [])
    return [results, gains, pseudo, priors, calibration]


def _header(spec_, cells, tail, gate_texts):
    """The report's title, setting and gate lines (Markdown)."""
    seeds = spec_["seeds"]
    lab, unl = split_sizes(spec_["split_json"])
    run0 = cells["round 0"][0][0]
    plural = "s" if len(seeds) > 1 else ""
    header = [f"# Evidence: {spec_['dataset']}, 1/{spec_['split']} split, {len(seeds)} seed{plural}",
              "",
              f"{'/'.join(map(str, lab))} labeled and {'/'.join(map(str, unl))} unlabeled train images, model "
              f"{run0.get('model')}, protocol {run0.get('protocol')}, seeds {', '.join(map(str, seeds))}. "
              f"Control: `{spec_['control']}` (two labeled batches per step, the students' schedule and compute). "
              f"Tail: the {len(tail)} classes under {100 * TAIL_SHARE:g}% of the val pixels that occur in val.",
              "", "Gates (computed from the runs below):", ""]
    return header + [f"- {text}" for text in gate_texts]


def build(spec_):
    """(header lines, [Table], gates) of the evidence report."""
    probe = load_cell(spec_["rows"]["round 0"], "evidence: round 0", len(spec_["seeds"]))
    tail = tail_classes(spec_["val_prior"], list(probe[0].get("class_names") or []))
    cells = _cells(spec_, tail)
    tables = _results_tables(spec_, cells, tail)
    g = gates(cells, spec_)
    return _header(spec_, cells, tail, [text for _, text in g.values()]), tables, g


NOTE = ("Cells: mean ± sample std (ddof=1) over the seeds; gains are paired: mean ± std of the per-seed "
        "differences, [k/n] = seeds whose difference has the sign of the mean; seed columns hold each "
        "seed's value (or difference). – = not applicable.")
STYLE = ("table{border-collapse:collapse;font:13px sans-serif;margin-bottom:1em}" + render.CELL_CSS
         + "p,li{font:13px sans-serif}")


def write(spec_, out_md, out_csv, out_html):
    header, tables, g = build(spec_)
    md = "\n".join(header) + "\n\n" + NOTE + "\n"
    for t in tables:
        md += f"\n**{t.title}**\n\n" + render.markdown(t)
    csv = [render.frame(t).assign(table=t.title) for t in tables]
    gate_rows = pd.DataFrame([{"table": "gates", "row": k, "column": "pass", "metric": "gate", "mean": float(ok)}
                              for k, (ok, _) in g.items()])
    with atomic_path(out_md, suffix=".md") as tmp:
        tmp.write_text(md)
    with atomic_path(out_csv, suffix=".csv") as tmp:
        pd.concat([gate_rows] + csv, ignore_index=True).to_csv(tmp, index=False)
    with atomic_path(out_html, suffix=".html") as tmp:
        tmp.write_text(_html(header, tables))
    return g


def _html(header, tables):
    body = f"<h2>{escape(header[0].lstrip('# '))}</h2>"
    body += "".join(f"<p>{escape(line)}</p>" for line in header[1:] if line and not line.startswith("- "))
    body += "<ul>" + "".join(f"<li>{escape(line[2:])}</li>" for line in header if line.startswith("- ")) + "</ul>"
    body += f"<p>{escape(NOTE)}</p>"
    body += "".join(f"<h3>{escape(t.title)}</h3>" + render.html(t) for t in tables)
    return render.page(body, STYLE)


FINDING_COLUMNS = ("round 1", "round 2", "tail r1", "vs control r1", "vs control r2")
FINDING_WIDTHS = (14, 14, 14, 20, 20)  # "42.5 ± 1.2", "+0.4 ± 0.2 [2/2]" fit


def closing_table(spec_):
    """The console's closing table: one line per row, then the gates (dars.evidence.build)."""
    header, tables, gates = build(spec_)
    results, gains = ({label: vals for label, vals in t.rows} for t in tables[:2])
    control = spec_["control"]
    seeds = ", ".join(map(str, spec_["seeds"]))
    run0, oracle = results["round 0"], results["oracle (all labels)"]
    lines = [f"Finding: {spec_['dataset']}, 1/{spec_['split']} split, seed{'s' if len(spec_['seeds']) > 1 else ''} "
             f"{seeds}: mIoU (%), gains against the compute-matched control `{control}`",
             f"round 0 (labeled images only): {fmt(run0[1])}, tail {fmt(run0[2])}; oracle (every label): "
             f"{fmt(oracle[1])}", "",
             f"{'method':<12}" + "".join(f"{c:>{w}}" for c, w in zip(FINDING_COLUMNS, FINDING_WIDTHS))]
    methods = [row[:-len(" r1")] for row in spec_["rows"] if row.endswith(" r1")]  # the control first
    for label in methods:
        r1, r2 = results.get(f"{label} r1"), results.get(f"{label} r2")
        g1, g2 = (gains.get(f"{label} r{r} {MINUS} {control} r{r}") for r in (1, 2))
        cells = [r1[1] if r1 else None, r2[1] if r2 else None, r1[2] if r1 else None,
                 g1[0] if g1 else None, g2[0] if g2 else None]
        lines.append(f"{label:<12}" + "".join(f"{fmt(v):>{w}}" for v, w in zip(cells, FINDING_WIDTHS)))
    lines += ["", *(text for _, text in gates.values())]
    return "\n".join(lines) + "\n"


def write_finding(spec_, out_md, out_csv, out_html, out_txt):
    """The evidence files of the finding's spec (dars.finding) and its closing table (.txt)."""
    gates = write(spec_, out_md, out_csv, out_html)
    with atomic_path(out_txt, suffix=".txt") as tmp:
        tmp.write_text(closing_table(spec_))
    return gates


def add_arguments(parser):
    """the evidence tables: gates, paired gains, pseudo-label diagnostics"""
    parser.add_argument("--spec", required=True, help="inline JSON or a JSON file (dars.specs.evidence_spec)")
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-html", required=True)


def main(args):
    g = write(load_spec(args.spec), args.out_md, args.out_csv, args.out_html)
    print("; ".join(f"{k}: {'pass' if ok else 'FAIL'}" for k, (ok, _) in g.items()) + f" -> {args.out_md}")


COMMANDS = {"evidence": (add_arguments, main)}
