"""The class prior pi: each class's share of the non-void labeled ground-truth pixels."""
from pathlib import Path

import numpy as np

from .data.layouts import DEFAULT_LAYOUT, class_set, find_pairs
from .data.lists import read_list
from .io import DarsError, read_json, read_label, write_json


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


def prior_stage(root, list_file, out_json, source="labeled", layout=DEFAULT_LAYOUT):
    """Count trainIds over the labels of `list_file` (images relative to `root`) into prior.json.
    Without a list file: `td` counts the val images (the target distribution, an oracle), `sd`
    the train images of another (source) dataset rooted at `root`."""
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
    parser.add_argument("--out", required=True)


def prior_main(args):
    prior_stage(args.root, args.list, args.out, args.source, args.layout)


def add_prior_est_arguments(parser):
    parser.add_argument("--shards", nargs="+", required=True)
    parser.add_argument("--prior", required=True, help="prior.json of the labeled set the teacher saw")
    parser.add_argument("--out", required=True)


def prior_est_main(args):
    prior_est_stage(args.shards, args.prior, args.out)


COMMANDS = {"prior": (add_prior_arguments, prior_main), "prior-est": (add_prior_est_arguments, prior_est_main)}
