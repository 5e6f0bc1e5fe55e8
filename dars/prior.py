"""The class prior pi: each class's share of the non-void labeled ground-truth pixels."""
from pathlib import Path

import numpy as np

from .data.layouts import DEFAULT_LAYOUT, class_set, find_pairs
from .data.lists import read_list
from .io import DarsError, read_json, read_label, write_json
from .metrics import kl_divergence


def class_pixel_counts(root, pairs, num_classes):
    """Pixels of each trainId over the labels of `pairs`, and the void pixel count."""
    counts = np.zeros(num_classes, dtype=np.int64)
    void = 0
    for _, lab in pairs:
        hist = np.bincount(read_label(Path(root) / lab).ravel(), minlength=256)
        if hist[num_classes:255].any():
            raise DarsError(f"{Path(root) / lab}: holds ids outside 0..{num_classes - 1} and 255; is it a "
                            "labelIds map instead of labelTrainIds?")
        counts += hist[:num_classes]
        void += int(hist[255])
    return counts, void


def truth_fields(shares, truth_json):
    """D_KL(true || prior) in nats, the truth being the val labels' distribution (the prior_td.json
    at `truth_json`), for reporting only: a stage reads it after its prior is fixed."""
    if not truth_json:
        return {}
    truth = read_json(truth_json)
    if len(truth.get("shares", ())) != len(shares):
        raise DarsError(f"{truth_json}: {len(truth.get('shares', ()))} class shares, the prior has {len(shares)}; "
                        "rebuild it with the distribution_td rule")
    return {"truth": str(truth_json), "kl_true_prior": kl_divergence(truth["shares"], shares)}


def has_val_labels(config, name):
    """Whether dataset `name` has val labels (or its generator will write them), so that every
    prior of its runs records its D_KL to them (a generated game-domain tree has no val split)."""
    from .config import dataset, dataset_root, generated_root, layout_of
    from .manifest import dataset_files
    ds = dataset(config, name)
    made_by = [g for g, d in config["datasets"].items() if "synthetic" in d and generated_root(g) == ds["root"]]
    if made_by:
        return config["datasets"][made_by[0]]["synthetic"].get("domain", "city") != "game"
    return bool(dataset_files(layout_of(ds), dataset_root(config, name), "val"))


def prior_stage(root, list_file, out_json, source="labeled", layout=DEFAULT_LAYOUT, truth_json=None):
    """Count trainIds over the labels of `list_file` (images relative to `root`) into prior.json.
    Without a list file: `td` counts the val images (the target distribution, an oracle), `sd`
    the train images of another (source) dataset rooted at `root`. `truth_json`: the val labels'
    prior.json, to record D_KL(true || this prior) (a td prior records 0, it is the truth)."""
    if list_file:
        pairs = read_list(list_file, root)
    elif source in ("td", "sd"):
        pairs = find_pairs(layout, root, "val" if source == "td" else "train")
    else:
        raise DarsError(f"a {source!r} prior needs a list file of labeled images")
    classes = class_set(layout)
    counts, void = class_pixel_counts(root, pairs, classes.num_classes)
    total = int(counts.sum())
    if total == 0:
        raise DarsError(f"{list_file}: the listed labels hold no non-void pixels; cannot estimate a prior")
    write_json(out_json, {
        "source": source, "list": str(list_file) if list_file else {"td": "val", "sd": "train"}[source],
        "root": str(root), "layout": layout,
        "class_names": list(classes.names), "counts": counts.tolist(), "shares": (counts / total).tolist(),
        "num_pixels": total, "void_pixels": void,
        **({"truth": "itself", "kl_true_prior": 0.0} if source == "td" else truth_fields(counts / total, truth_json)),
    })


def estimate_prior_em(probs, train_prior, iterations=1000, tol=1e-8):
    """EM re-estimation of class priors under label shift (Saerens, Latinne & Decaestecker 2002).

    `probs` are the teacher's posteriors (N x C) on target pixels, obtained under the class
    prior `train_prior` it was trained with. Each step re-weights the posteriors by
    pi_new / pi_train, renormalises, and takes their mean as the next prior."""
    probs = np.asarray(probs, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    if len(probs) == 0:
        raise DarsError("no sampled teacher probabilities to estimate a prior from; rerun the infer stage")
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

    from .classes import IGNORE
    from .data.dataset import ImageList
    from .data.lists import image_id
    from .infer import sample_pixels
    from .slide import load_predictor
    predictor = load_predictor(ckpt, settings, threads)
    probs, labels = [], []
    with torch.no_grad():
        for i, image, label in map(ImageList(root, pairs, labels=True).__getitem__, range(len(pairs))):
            p = predictor.probs(image, fuse=predictor.settings.teacher_fusion).flatten(1).T
            label = np.asarray(label).ravel()
            if p.shape[0] != label.size:
                raise DarsError(f"{Path(root) / pairs[i][1]}: label of {label.size} pixels, the teacher predicts "
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


def prior_est_stage(shard_dirs, labeled_prior_json, out_json):
    """prior.json estimated from teacher posteriors on the unlabeled images (no target labels)."""
    from .shards import Shard
    probs = np.concatenate([Shard(d).prob_samples() for d in shard_dirs])
    train = read_json(labeled_prior_json)
    shares, steps = estimate_prior_em(probs, train["shares"])
    write_json(out_json, {
        "source": "est", "method": "EM label-shift re-estimation (Saerens et al. 2002)",
        "class_names": train.get("class_names"), "shares": shares.tolist(), "em_iterations": steps,
        "num_samples": int(len(probs)), "train_prior": str(labeled_prior_json),
        "shards": [str(d) for d in shard_dirs],
    })


def add_prior_arguments(parser):
    parser.add_argument("--root", required=True)
    parser.add_argument("--list", help="labeled list; without it, the val labels (the `td` oracle)")
    parser.add_argument("--source", default="labeled", choices=["labeled", "td", "sd"],
                        help="td: val labels of --root; sd: train labels of the source dataset at --root")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT)
    parser.add_argument("--truth", help="prior.json of the val labels: record D_KL(true || prior)")
    parser.add_argument("--out", required=True)


def prior_main(args):
    prior_stage(args.root, args.list, args.out, args.source, args.layout, args.truth)


def add_prior_est_arguments(parser):
    parser.add_argument("--shards", nargs="+", required=True)
    parser.add_argument("--prior", required=True, help="prior.json of the labeled set the teacher saw")
    parser.add_argument("--out", required=True)


def prior_est_main(args):
    prior_est_stage(args.shards, args.prior, args.out)


COMMANDS = {"prior": (add_prior_arguments, prior_main), "prior-est": (add_prior_est_arguments, prior_est_main)}
