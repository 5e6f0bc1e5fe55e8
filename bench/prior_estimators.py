"""Class-prior estimators without target labels, measured against the truth on finished runs.

    python bench/prior_estimators.py results/synthetic_uda/split0/seed{0,1,2} \
        results/synthetic_evidence/split8/seed{0,1,2}

Each argument is a run directory whose round-0 teacher and shards exist (round0/model.pt,
round0/shards/*). Every estimator sees only what `python -m dars prior-est` may see: the teacher's
sampled posteriors on the unlabeled images, and the labeled images (the source in UDA) with their
labels and the teacher's posteriors on them. The truth is counted afterwards, only to score: the
val labels (what `prior: td` aligns to) and the unlabeled images' own labels. Prints D_KL(truth ||
estimate) in nats per run and estimator, their mean over the runs, and the teacher's calibration
(pixel accuracy and mean confidence on the labeled and on the unlabeled images)."""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dars.data.layouts import find_pairs  # noqa: E402
from dars.data.lists import read_list  # noqa: E402
from dars.metrics import kl_divergence  # noqa: E402
from dars.prior import (  # noqa: E402
    class_pixel_counts,
    estimate_prior_em,
    fit_calibration,
    labeled_posteriors,
    recalibrate,
)
from dars.shards import Shard  # noqa: E402


def bbse(target_probs, lab_probs, lab_labels, num_classes):
    """Black-box shift estimation (Lipton et al. 2018): the hard confusion matrix on the labeled
    pixels, C[i, j] = P(pred i | true j); solve C w = q (the target's predicted-class shares) by
    least squares, clipped at 0 and renormalised."""
    pred = lab_probs.argmax(1)
    conf = np.zeros((num_classes, num_classes))
    np.add.at(conf, (pred, lab_labels), 1.0)
    conf /= np.maximum(conf.sum(0, keepdims=True), 1)
    q = np.bincount(target_probs.argmax(1), minlength=num_classes) / len(target_probs)
    present = conf.sum(0) > 0
    sol, *_ = np.linalg.lstsq(conf[:, present], q, rcond=None)
    est = np.zeros(num_classes)
    est[present] = np.clip(sol, 0, None)
    return est / est.sum()


def estimates(run, layout, root, labeled_root):
    """name -> estimated shares, plus the run's truths and calibration figures."""
    shard_dirs = sorted((run / "round0" / "shards").iterdir())
    probs = np.concatenate([Shard(d).prob_samples() for d in shard_dirs]).astype(np.float64)
    c = probs.shape[1]
    labeled_pairs = read_list(run / "split" / "labeled.txt", labeled_root)
    counts, _ = class_pixel_counts(labeled_root, labeled_pairs, c)
    labeled = counts / counts.sum()
    lab_probs, lab_labels = labeled_posteriors(run / "round0" / "model.pt", labeled_root, labeled_pairs)
    out = {"labeled prior": labeled, "posterior mean": probs.mean(0),
           "argmax shares": np.bincount(probs.argmax(1), minlength=c) / len(probs),
           "EM (Saerens)": estimate_prior_em(probs, labeled)[0]}
    for kind in ("temperature", "bcts"):
        cal = fit_calibration(lab_probs, lab_labels, kind)
        lab_cal = recalibrate(lab_probs, cal)
        # EM's training prior is what the calibrated model implies on the labeled pixels.
        out[f"{kind} + EM"] = estimate_prior_em(recalibrate(probs, cal), lab_cal.mean(0))[0]
        out[f"{kind} (T={cal['temperature']:.2f})"] = recalibrate(probs, cal).mean(0)
    out["BBSE"] = bbse(probs, lab_probs, lab_labels, c)
    for name in ("EM (Saerens)", "argmax shares", "BBSE"):
        out[f"{name} + labeled, 1:1"] = 0.5 * out[name] + 0.5 * labeled
    val_counts, _ = class_pixel_counts(root, find_pairs(layout, root, "val"), c)
    unl_pairs = read_list(run / "split" / "unlabeled.txt", root)
    unl_counts, _ = class_pixel_counts(root, unl_pairs, c)
    calib = {"labeled: accuracy": float((lab_probs.argmax(1) == lab_labels).mean()),
             "labeled: confidence": float(lab_probs.max(1).mean()),
             "unlabeled: confidence": float(probs.max(1).mean())}
    return out, val_counts / val_counts.sum(), unl_counts / unl_counts.sum(), calib


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also write every estimate and score here")
    args = ap.parse_args()
    import yaml
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    table, dump = {}, {}
    for run in args.runs:
        dataset = run.parts[-3]
        ds = config["datasets"][dataset]
        src = config["datasets"][ds["source"]] if ds.get("source") else ds
        est, val, unl, calib = estimates(run, ds.get("layout", "cityscapes"), ds["root"], src["root"])
        scores = {k: (kl_divergence(val, v), kl_divergence(unl, v)) for k, v in est.items()}
        table[str(run)] = scores
        dump[str(run)] = {"estimates": {k: v.tolist() for k, v in est.items()}, "val": val.tolist(),
                          "unlabeled": unl.tolist(), "calibration": calib}
        print(f"\n{run}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in calib.items()))
        print(f"{'estimator':<34} {'KL(val||est)':>13} {'KL(unl||est)':>13}")
        for k, (a, b) in scores.items():
            print(f"{k:<34} {a:13.4f} {b:13.4f}")
    for group in sorted({Path(r).parts[-3] for r in table}):
        runs = [r for r in table if Path(r).parts[-3] == group]
        print(f"\nmean over {len(runs)} runs of {group}:")
        for k in table[runs[0]]:
            a = np.mean([table[r][k][0] for r in runs])
            b = np.mean([table[r][k][1] for r in runs])
            print(f"{k:<34} {a:13.4f} {b:13.4f}")
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1) + "\n")


if __name__ == "__main__":
    main()
