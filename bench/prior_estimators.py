"""Class-prior estimators without target labels, measured against the truth on finished runs.

    python bench/prior_estimators.py results/synthetic_uda/split0/seed{0,1,2} \
        results/synthetic_evidence/split8/seed{0,1,2}

Each argument is a run directory whose round-0 teacher and shards exist (round0/model.pt,
round0/shards/*). Every estimator sees only what a stage without target labels may see: the
teacher's sampled posteriors on the unlabeled images, and the labeled images (the source in UDA)
with their labels and the teacher's posteriors on them. The truth is counted afterwards, only to score: the
val labels (what `prior: td` aligns to) and the unlabeled images' own labels. Prints D_KL(truth ||
estimate) in nats per run and estimator, their mean over the runs, and the teacher's calibration
(pixel accuracy and mean confidence on the labeled and on the unlabeled images).

    python bench/prior_estimators.py results/synthetic_uda/split0/seed{0,1,2} \
        --students round0 st cbst dars dars_td dars_est

prints instead the round-1 mIoU of those presets per run, the D_KL(true || prior) of each DARS
variant's prior (from its prior.json) and the paired differences (DARS-est vs DARS, and the share
of the DARS -> DARS(TD) gap DARS-est closes)."""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dars.classes import CITYSCAPES_CLASSES  # noqa: E402
from dars.data.layouts import find_pairs  # noqa: E402
from dars.data.lists import read_list  # noqa: E402
from dars.metrics import kl_divergence  # noqa: E402
from dars.prior import class_pixel_counts, estimate_target_prior, posterior_mean  # noqa: E402
from dars.shards import Shard  # noqa: E402


def estimate_prior_em(probs, train_prior, iterations=1000, tol=1e-8):
    """EM re-estimation of class priors under label shift (Saerens, Latinne & Decaestecker 2002).

    `probs` are the teacher's posteriors (N x C) on target pixels, obtained under the class
    prior `train_prior` it was trained with. Each step re-weights the posteriors by
    pi_new / pi_train, renormalises, and takes their mean as the next prior."""
    probs = np.asarray(probs, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    if len(probs) == 0:
        raise SystemExit("no sampled teacher probabilities to estimate a prior from; rerun the infer stage")
    # A class absent from the labeled set cannot be re-weighted; keep a tiny floor instead of 0/0.
    base = np.maximum(train_prior, 1e-8)
    prior = base.copy()
    for step in range(1, iterations + 1):  # noqa: B007 (returned: the iterations it took)
        q = probs * (prior / base)
        q /= np.maximum(q.sum(1, keepdims=True), 1e-30)
        new = q.mean(0)
        if np.abs(new - prior).max() < tol:
            prior = new
            break
        prior = new
    return prior / prior.sum(), step


def labeled_posteriors(ckpt, root, pairs, settings=None, threads=None):
    """The teacher's posteriors (N x C) and the true classes (N) of the sampled non-void pixels of
    the labeled images `pairs` (the source's in UDA): the pixels calibration is fitted on. The
    same seeded pixel sample as the shards (dars.infer.sample_pixels)."""
    import torch

    from dars.classes import IGNORE
    from dars.data.dataset import ImageList
    from dars.data.layouts import image_id
    from dars.infer import sample_pixels
    from dars.slide import load_predictor
    predictor = load_predictor(ckpt, settings, threads)
    probs, labels = [], []
    with torch.no_grad():
        for i, image, label in map(ImageList(root, pairs, labels=True).__getitem__, range(len(pairs))):
            p = predictor.probs(image, fuse=predictor.settings.teacher_fusion).flatten(1).T
            label = np.asarray(label).ravel()
            if p.shape[0] != label.size:
                raise SystemExit(f"{Path(root) / pairs[i][1]}: label of {label.size} pixels, the teacher predicts "
                                f"{p.shape[0]}; set evaluate.resize so both have the label's size")
            picks = sample_pixels(image_id(pairs[i][0]), label.size)
            keep = picks[label[picks] != IGNORE]
            probs.append(p[torch.from_numpy(keep)].float().cpu().numpy())
            labels.append(label[keep].astype(np.int64))
    return np.concatenate(probs).astype(np.float64), np.concatenate(labels)


def recalibrate(probs, calibration):
    """Posteriors after temperature (and per-class bias) scaling of the teacher's log-posteriors."""
    logits = np.log(np.maximum(probs, 1e-12)) / calibration["temperature"] + np.asarray(calibration["bias"])
    logits -= logits.max(1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(1, keepdims=True)


def fit_calibration(probs, labels, kind="bcts", steps=200):
    """Temperature scaling (one T) or bias-corrected temperature scaling (T and a bias per class;
    Alexandari et al. 2020) of log-posteriors, fitted by maximum likelihood (L-BFGS) on labeled
    pixels. Classes absent from `labels` keep bias 0."""
    import torch
    x = torch.from_numpy(np.log(np.maximum(probs, 1e-12)))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    # An absent class would have its bias driven to -inf; only the present ones get one.
    present = torch.from_numpy(np.bincount(labels, minlength=x.shape[1]) > 0)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    free = torch.zeros(int(present.sum()), dtype=torch.float64, requires_grad=kind == "bcts")
    opt = torch.optim.LBFGS([log_t, free] if kind == "bcts" else [log_t], lr=0.5, max_iter=steps,
                            line_search_fn="strong_wolfe")

    def bias():
        return torch.zeros(x.shape[1], dtype=torch.float64).masked_scatter(present, free)

    def nll():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp() + bias(), y)
        loss.backward()
        return loss
    opt.step(nll)
    return {"kind": kind, "temperature": float(log_t.detach().exp()), "bias": bias().detach().numpy().tolist()}


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


def em_present_only(probs, train_prior, iterations=1000, tol=1e-8):
    """EM that re-weights only the classes the teacher was trained with: an absent class keeps
    weight 1 (its posterior mass as it is), so a tiny training share cannot blow it up."""
    present = np.asarray(train_prior) > 0
    base = np.where(present, train_prior, 1.0)
    w = np.ones(len(base))
    prior = probs.mean(0)
    for _ in range(iterations):
        q = probs * w
        q /= q.sum(1, keepdims=True)
        new = q.mean(0)
        w = np.where(present, new / base, 1.0)
        if np.abs(new - prior).max() < tol:
            break
        prior = new
    return new


def sampled_truth(shard_dirs, root):
    """The true class of each sampled pixel of the shards (void 255), in prob_samples() order:
    scoring only (the teacher's accuracy and confidence on the unlabeled images)."""
    from dars.infer import sample_pixels
    from dars.io import read_label
    out = []
    for d in shard_dirs:
        for im in Shard(d).images:
            label = read_label(Path(root) / im["label"]).ravel()
            out.append(label[sample_pixels(im["id"], label.size)])
    return np.concatenate(out)


def estimates(run, layout, root, labeled_root):
    """name -> estimated shares, plus the run's truths and calibration figures."""
    shard_dirs = sorted((run / "round0" / "shards").iterdir())
    probs = np.concatenate([Shard(d).prob_samples() for d in shard_dirs]).astype(np.float64)
    c = probs.shape[1]
    labeled_pairs = read_list(run / "split" / "labeled.txt", labeled_root)
    counts, _ = class_pixel_counts(labeled_root, labeled_pairs, c)
    labeled = counts / counts.sum()
    lab_probs, lab_labels = labeled_posteriors(run / "round0" / "model.pt", labeled_root, labeled_pairs)
    calib = {"labeled: accuracy": float((lab_probs.argmax(1) == lab_labels).mean()),
             "labeled: confidence": float(lab_probs.max(1).mean()),
             "unlabeled: confidence": float(probs.max(1).mean())}
    truth = sampled_truth(shard_dirs, root)
    valid = truth != 255
    calib["unlabeled: accuracy"] = float((probs.argmax(1)[valid] == truth[valid]).mean())
    out = {"labeled prior": labeled, "posterior mean": posterior_mean(probs),
           "argmax shares": np.bincount(probs.argmax(1), minlength=c) / len(probs),
           "EM (Saerens)": estimate_prior_em(probs, labeled)[0]}
    out["EM, present classes"] = em_present_only(probs, labeled)
    for kind in ("temperature", "bcts"):
        cal = fit_calibration(lab_probs, lab_labels, kind)
        lab_cal = recalibrate(lab_probs, cal)
        # EM's training prior is what the calibrated model implies on the labeled pixels.
        out[f"{kind} + EM"] = estimate_prior_em(recalibrate(probs, cal), lab_cal.mean(0))[0]
        out[f"{kind}: posterior mean"] = recalibrate(probs, cal).mean(0)
        calib[f"{kind}: T"] = cal["temperature"]
    out["BBSE"] = bbse(probs, lab_probs, lab_labels, c)
    for name in ("bcts: posterior mean", "EM (Saerens)", "argmax shares", "BBSE"):
        out[f"{name} + labeled, 1:1"] = 0.5 * out[name] + 0.5 * labeled
    out["prior: est (posterior mean + labeled, 1:1)"] = estimate_target_prior(probs, labeled)
    val_counts, _ = class_pixel_counts(root, find_pairs(layout, root, "val"), c)
    unl_pairs = read_list(run / "split" / "unlabeled.txt", root)
    unl_counts, _ = class_pixel_counts(root, unl_pairs, c)
    return out, val_counts / val_counts.sum(), unl_counts / unl_counts.sum(), calib


NAMES = CITYSCAPES_CLASSES.names  # both embedded settings score the 19 Cityscapes classes
PRIOR_FILES = {"dars": "prior.json", "dars_td": "prior_td.json", "dars_est": "dars_est/round1/prior_est.json"}


def students(runs, methods):
    """Round-1 mIoU of `methods` per run (seed), the D_KL(true || prior) each DARS variant aligned
    to, and the paired differences that matter: DARS-est vs DARS (the labeled/source prior) and
    the share of the DARS -> DARS(TD) gap that DARS-est closes."""
    rows = {}
    for run in runs:
        row = {}
        for m in methods:
            f = run / ("round0" if m == "round0" else f"{m}/round1") / "miou.json"
            row[m] = json.loads(f.read_text())["miou"] if f.is_file() else None
            if m in PRIOR_FILES and (run / PRIOR_FILES[m]).is_file():
                row[f"{m}: D_KL prior"] = json.loads((run / PRIOR_FILES[m]).read_text()).get("kl_true_prior")
        rows[str(run)] = row
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    width = {k: max(len(k), 6) + 2 for k in keys}
    print(f"{'run':<36}" + "".join(f"{k:>{width[k]}}" for k in keys))
    for run, r in rows.items():
        print(f"{run:<36}" + "".join(f"{'–' if r.get(k) is None else f'{r[k]:.4f}':>{width[k]}}" for k in keys))
    pairs = [(r["dars_est"] - r["dars"], r.get("dars_td")) for r in rows.values()
             if r.get("dars_est") is not None and r.get("dars") is not None]
    if pairs:
        d = np.array([a for a, _ in pairs])
        print(f"DARS-est - DARS (mIoU points), per run: {' '.join(f'{100 * x:+.2f}' for x in d)}; "
              f"mean {100 * d.mean():+.2f}")
    gaps = [(r["dars_est"] - r["dars"]) / (r["dars_td"] - r["dars"]) for r in rows.values()
            if None not in (r.get("dars_est"), r.get("dars"), r.get("dars_td")) and r["dars_td"] != r["dars"]]
    if gaps:
        print("share of the DARS -> DARS(TD) gap closed by DARS-est, per run: "
              + " ".join(f"{g:+.2f}" for g in gaps))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also write every estimate and score here")
    ap.add_argument("--students", nargs="+", metavar="METHOD",
                    help="instead: round-1 mIoU of these presets (and round0) per run, paired")
    args = ap.parse_args()
    if args.students:
        return students(args.runs, args.students)
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
        print(f"\n{run}: " + ", ".join(f"{k} {v:.2f}" if k.endswith(": T") else f"{k} {100 * v:.1f}%"
                                      for k, v in calib.items()))
        print(f"{'estimator':<44} {'KL(val||est)':>13} {'KL(unl||est)':>13}")
        for k, (a, b) in scores.items():
            print(f"{k:<44} {a:13.4f} {b:13.4f}")
    for group in sorted({Path(r).parts[-3] for r in table}):
        runs = [r for r in table if Path(r).parts[-3] == group]
        print(f"\nmean over {len(runs)} runs of {group}:")
        for k in table[runs[0]]:
            a = np.mean([table[r][k][0] for r in runs])
            b = np.mean([table[r][k][1] for r in runs])
            print(f"{k:<44} {a:13.4f} {b:13.4f}")
        for name in ("labeled prior", "posterior mean"):
            bias = np.mean([np.array(dump[r]["estimates"][name]) - dump[r]["val"] for r in runs], 0)
            big = np.argsort(-np.abs(bias))[:6]
            print(f"{name} - val truth, largest per-class biases (points): "
                  + ", ".join(f"{NAMES[c]} {100 * bias[c]:+.1f}" for c in big))
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1) + "\n")


if __name__ == "__main__":
    main()
