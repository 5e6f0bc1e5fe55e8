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


def posterior_mean(probs):
    """The mean of the teacher's posteriors over sampled pixels (probabilistic classify-and-count,
    Bella et al. 2010): the class distribution the teacher sees in the unlabeled images."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        raise DarsError("no sampled teacher probabilities to estimate a prior from; rerun the infer stage")
    shares = probs.mean(0)
    return shares / shares.sum()


def estimate_target_prior(probs, labeled_shares):
    """The class distribution of the unlabeled images without their labels: the average of the
    teacher's posterior mean on them and the labeled prior (the source's in UDA).

    The two err for unrelated reasons (the labeled prior: a few images, or another domain; the
    posterior mean: the teacher's per-class bias on images it did not fit), so their average is
    closer to the truth than either unless both err the same way; equal weights because nothing
    measurable without target labels says which errs more. Chosen by measurement
    (bench/prior_estimators.py, docs/benchmarks.md) over the posterior mean alone, EM label-shift
    re-estimation (Saerens et al. 2002), EM after bias-corrected temperature scaling fitted on the
    labeled pixels (Alexandari et al. 2020) and black-box shift estimation (Lipton et al. 2018).
    EM is exact under a pure label shift with calibrated posteriors, but a teacher on images it
    did not fit (another domain, or simply unlabeled ones) is neither: EM then pours mass into
    rare classes whose posteriors are diffuse, ending far from the truth."""
    labeled_shares = np.asarray(labeled_shares, dtype=np.float64)
    return 0.5 * posterior_mean(probs) + 0.5 * labeled_shares / labeled_shares.sum()


def prior_est_stage(shard_dirs, labeled_prior_json, out_json, truth_json=None):
    """prior.json estimated from the teacher's posteriors on the unlabeled images and the labeled
    prior. Neither the images' labels nor the val labels are read; `truth_json` (the val labels'
    prior.json) is read after the estimate is fixed, to record its D_KL to the truth."""
    from .shards import Shard
    probs = np.concatenate([Shard(d).prob_samples() for d in shard_dirs])
    train = read_json(labeled_prior_json)
    if len(train.get("shares", ())) != probs.shape[1]:
        raise DarsError(f"{labeled_prior_json}: {len(train.get('shares', ()))} class shares, the teacher's shards "
                        f"have {probs.shape[1]} classes; rebuild it with the distribution rule")
    shares = estimate_target_prior(probs, train["shares"])
    write_json(out_json, {
        "source": "est", "method": "average of the teacher's posterior mean on the unlabeled images and the "
                                  "labeled prior",
        "class_names": train.get("class_names"), "shares": shares.tolist(),
        "posterior_mean": posterior_mean(probs).tolist(), "num_samples": int(len(probs)),
        "train_prior": str(labeled_prior_json), "kl_train_prior": kl_divergence(shares, train["shares"]),
        "shards": [str(d) for d in shard_dirs], **truth_fields(shares, truth_json),
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
    parser.add_argument("--truth", help="prior.json of the val labels: record D_KL(true || estimate), read after")
    parser.add_argument("--out", required=True)


def prior_est_main(args):
    prior_est_stage(args.shards, args.prior, args.out, args.truth)


COMMANDS = {"prior": (add_prior_arguments, prior_main), "prior-est": (add_prior_est_arguments, prior_est_main)}
