"""Pseudo-labelers ST, CBST, DARS and DA (DARS without random sampling) over teacher shards,
and the diagnostic `truth`: the unlabeled images' ground truth, written where pseudo labels go
so the student trains on it through exactly the pseudo-label path (an upper bound on what any
pseudo-labeler can add, and a check that the path itself works).

Every labeler thresholds the per-pixel confidence s (float16 max softmax probability), per
predicted class or (ST) globally. For non-negative float16 the order of bit patterns is the order
of values, so a (C x 65536) int64 histogram of bit patterns per predicted class is all the
thresholds need: the k-th largest confidence and the number of pixels tied with it follow exactly
from a reverse cumulative sum. Histograms of shards add up, so thresholds are global and exact for
any sharding; labeling then runs per shard, with randomness seeded per image so that the labels
do not depend on shard count, order or parallelism.

Counts n = floor(alpha * ...) are computed in exact rational arithmetic from the decimal text of
alpha and of the prior shares (0.29 * 100 is 29, not the 28 that float arithmetic gives).
"""
import os
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from .classes import IGNORE
from .data.digests import file_record, write_manifest
from .data.lists import write_list
from .io import DarsError, atomic_dir, atomic_path, read_json, read_label, rebuild_hint, write_json, write_png
from .log import Progress
from .metrics import kl_divergence
from .shards import Shard

CONFIDENCE_LABELERS = ("st", "cbst", "dars", "da")  # thresholds on the teacher's confidences
LABELERS = CONFIDENCE_LABELERS + ("truth",)  # truth: the diagnostic, ground truth as pseudo labels
NUM_BITS = 65536
ONE_BITS = 0x3C00  # float16 1.0: confidences in [0, 1] have bit patterns 0..0x3C00


def _conf_bits(conf, where):
    """uint16 bit patterns of float16 confidences, rejecting anything outside [0, 1]."""
    conf = np.asarray(conf)
    if conf.dtype.kind != "f" or conf.dtype.itemsize != 2:
        # Converting e.g. float32 here would silently round; the shards store float16.
        raise DarsError(f"{where}: confidences must be float16, got {conf.dtype}")
    bits = np.ascontiguousarray(conf, dtype=np.float16).view(np.uint16)
    # Negatives (sign bit set, -0.0 included), values > 1, inf and NaN all lie above 1.0's pattern,
    # and would break the "bit order = value order" argument the thresholds rely on.
    if bits.size and bits.max() > ONE_BITS:
        bad = conf.ravel()[int(np.argmax(bits.ravel() > ONE_BITS))]
        raise DarsError(f"{where}: confidence {bad} is not in [0, 1] (negative, NaN or inf); "
                        "the teacher output is corrupt, rerun the infer stage")
    return bits


def _check_pred(pred, shape, num_classes, where):
    pred = np.asarray(pred)
    if pred.shape != shape:
        raise DarsError(f"{where}: prediction shape {pred.shape} differs from confidence shape {shape}")
    if pred.dtype.kind not in "ui":
        raise DarsError(f"{where}: predicted classes must be integers, got {pred.dtype}")
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise DarsError(f"{where}: predicted class ids outside 0..{num_classes - 1}")
    return pred


def confidence_histogram(pred, conf, num_classes, where="prediction") -> np.ndarray:
    """(C, 65536) int64: pixels per (predicted class, float16 bit pattern of the confidence)."""
    bits = _conf_bits(conf, where)
    pred = _check_pred(pred, bits.shape, num_classes, where)
    idx = (pred.astype(np.int64).ravel() << 16) | bits.ravel()
    hist = np.bincount(idx, minlength=num_classes * NUM_BITS)
    return hist.astype(np.int64, copy=False).reshape(num_classes, NUM_BITS)


def shard_histogram(shard_dir) -> np.ndarray:
    shard = Shard(shard_dir)
    hist = np.zeros((shard.num_classes, NUM_BITS), np.int64)
    progress = Progress(f"pseudo-stats {shard.path.name}", len(shard))
    for i in range(len(shard)):
        meta, pred, conf = shard.get(i)
        hist += confidence_histogram(pred, conf, shard.num_classes,
                                     where=f"shard {shard.path}: image {meta['id']}")
        progress.update()
    return hist


def stats_stage(shard_dir, out_hist):
    hist = shard_histogram(shard_dir)
    with atomic_path(out_hist, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, hist)  # a file handle, so np.save cannot append its own ".npy"


def _exact(x):
    """The decimal number x was written as (repr round-trips), as an exact fraction."""
    return Fraction(repr(float(x)))


def _bits_to_float(b):
    return float(np.array(b, np.uint16).view(np.float16))


def _select(ge, n, k, sample):
    """Threshold entry keeping s >= the k-th largest confidence (k = 0: keep nothing).

    ge[b] = pixels with bit pattern >= b (non-increasing, ge[0] = m). With `sample`, the r kept
    pixels (ties with tau included) are thinned to n by keeping a share rho = n / r of them.
    """
    m = int(ge[0])
    entry = {"n": int(n), "m": m, "tau": None, "tau_bits": None, "r": 0,
             "rho_num": 0, "rho_den": 1, "rho": 0.0, "overflow": bool(n > m)}
    if k == 0 or m == 0:
        return entry
    k = min(k, m)  # overflow (or alpha = 1 for CBST): tau is the minimum, keep everything predicted
    b = int(np.count_nonzero(ge >= k)) - 1  # largest pattern with at least k pixels at or above it
    r = int(ge[b])
    num, den = (min(n, r), r) if sample else (1, 1)
    entry.update(tau=_bits_to_float(b), tau_bits=b, r=r, rho_num=num, rho_den=den, rho=num / den)
    return entry


def compute_thresholds(hist, labeler, alpha, prior_shares=None) -> dict:
    """The content of thresholds.json for one labeler (see docs/formats.md)."""
    if labeler not in LABELERS:
        raise DarsError(f"unknown labeler {labeler!r}; expected one of {', '.join(LABELERS)}")
    if (isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating))
            or not 0 < alpha <= 1):
        raise DarsError(f"alpha = {alpha!r}: the labeling ratio must be a number in (0, 1]")
    hist = np.asarray(hist)
    if hist.ndim != 2 or hist.shape[1] != NUM_BITS or hist.dtype.kind not in "ui":
        raise DarsError(f"confidence histogram must be integer (C, {NUM_BITS}), got {hist.dtype} {hist.shape}")
    if (hist < 0).any() or hist[:, ONE_BITS + 1:].any():
        raise DarsError("confidence histogram has negative counts or confidences outside [0, 1]")
    num_classes = hist.shape[0]
    a = _exact(alpha)
    num_pixels = int(hist.sum())
    prior = None
    if labeler in ("dars", "da"):
        if prior_shares is None:
            raise DarsError(f"labeler {labeler} needs a class prior (the shares of prior.json)")
        prior = [float(p) for p in prior_shares]
        if len(prior) != num_classes:
            raise DarsError(f"class prior has {len(prior)} shares but the histogram has {num_classes} classes")
        # 1e-3 tolerates shares rounded for publication (the Cityscapes table sums to 0.99999);
        # they are used as given, not renormalised.
        if not all(np.isfinite(p) and p >= 0 for p in prior) or abs(sum(prior) - 1) > 1e-3:
            raise DarsError(f"class prior shares must be non-negative and sum to 1, got sum {sum(prior)}")
    # ge[c, b] = #{pixels predicted c with bit pattern >= b}
    ge = np.cumsum(hist[:, ::-1], axis=1, dtype=np.int64)[:, ::-1]
    out = {"labeler": labeler, "alpha": float(alpha), "num_classes": num_classes,
           "num_pixels": num_pixels, "prior": prior}
    if labeler == "truth":  # no threshold: every pixel takes its ground truth at the label stage
        out["classes"] = [{"m": int(ge[c, 0])} for c in range(num_classes)]
        return out
    if labeler == "st":
        n = int(a * num_pixels)  # int() of a non-negative Fraction is its floor
        g = _select(ge.sum(0), n, n, sample=True)
        out["global"] = g
        # per class only diagnostics: predicted pixels, and how many pass the global threshold
        out["classes"] = [{"m": int(ge[c, 0]), "r": int(ge[c, g["tau_bits"]]) if g["tau_bits"] is not None else 0}
                          for c in range(num_classes)]
        return out
    classes = []
    for c in range(num_classes):
        m = int(ge[c, 0])
        if labeler == "cbst":
            n = int(a * m)
            classes.append(_select(ge[c], n, n + 1 if m else 0, sample=False))
        else:
            n = int(a * _exact(prior[c]) * num_pixels)
            classes.append(_select(ge[c], n, n, sample=labeler == "dars"))
    out["classes"] = classes
    return out


def thresholds_stage(hist_files, out_json, labeler, alpha, prior_json=None):
    total = None
    for f in hist_files:
        if not Path(f).is_file():
            raise DarsError(f"{f}: histogram missing; run the stats stage for that shard")
        h = np.load(f)
        if total is not None and h.shape != total.shape:
            raise DarsError(f"{f}: histogram shape {h.shape} differs from {total.shape} of the other shards")
        total = h.astype(np.int64) if total is None else total + h
    if total is None:
        raise DarsError("no histogram files given; run the stats stage on every shard first")
    shares = None
    if prior_json is not None:
        prior = read_json(prior_json)
        if "shares" not in prior:
            raise DarsError(f"{prior_json}: no 'shares' list")
        shares = prior["shares"]
    write_json(out_json, compute_thresholds(total, labeler, alpha, shares))


def label_image(image_id, pred, conf, thresholds, seed, round, where=None) -> np.ndarray:
    """uint8 pseudo-label map (trainIds, 255 = ignore) of one image."""
    where = where or f"image {image_id}"
    num_classes = thresholds["num_classes"]
    bits = _conf_bits(conf, where)
    pred = _check_pred(pred, bits.shape, num_classes, where)
    if not all(isinstance(v, (int, np.integer)) and v >= 0 for v in (seed, round)):
        raise DarsError(f"seed {seed!r} and round {round!r} must be non-negative integers")
    pred_flat, bits_flat = pred.ravel(), bits.ravel()
    st = thresholds["labeler"] == "st"
    groups = [thresholds["global"]] if st else thresholds["classes"]
    # Pattern 65536 is above every uint16 pattern: "select nothing" (class never predicted or n = 0).
    tau = np.array([NUM_BITS if g["tau_bits"] is None else g["tau_bits"] for g in groups], np.int32)
    idx = np.flatnonzero(bits_flat >= (tau[0] if st else tau[pred_flat]))
    keep = np.ones(idx.size, bool)
    thin = [g["rho_num"] < g["rho_den"] for g in groups]
    if any(thin):
        # Every pixel of the image gets a random key from an RNG seeded by (seed, round, image id)
        # alone, so labels do not depend on sharding or order; each group drops its `drop`
        # candidates with the smallest keys, a uniformly random subset. Keys belong to pixels,
        # not to draws, so a slightly different candidate set (e.g. confidences that differ
        # in the last float16 bit) changes only the few pixels involved, not the whole sample.
        keys = np.random.default_rng([seed, round, zlib.crc32(str(image_id).encode())]).random(
            pred_flat.size, dtype=np.float32)[idx]
        if st:
            order, bounds = np.arange(idx.size), [0, idx.size]
        else:
            cls = pred_flat[idx]
            order = np.argsort(cls, kind="stable")  # kept pixels grouped by class, row-major within
            bounds = np.concatenate([[0], np.cumsum(np.bincount(cls, minlength=num_classes))])
        for c, g in enumerate(groups):
            a = int(bounds[c + 1] - bounds[c])
            if not thin[c] or a == 0:
                continue
            drop = a * (g["rho_den"] - g["rho_num"]) // g["rho_den"]  # floor(a - a*rho), exactly
            if drop:
                members = order[bounds[c]:bounds[c + 1]]
                keep[members[np.argpartition(keys[members], drop - 1)[:drop]]] = False
    out = np.full(pred_flat.size, IGNORE, np.uint8)
    sel = idx[keep]
    out[sel] = pred_flat[sel]
    return out.reshape(pred.shape)


def _check_id(image_id, where):
    if not isinstance(image_id, str) or image_id in ("", ".", "..") or "/" in image_id or os.sep in image_id:
        raise DarsError(f"{where}: image id {image_id!r} cannot be used as a file name")


def _truth_label(dataset_root, meta, shape, num_classes, where):
    """The `truth` labeler's map: the image's ground truth, checked like a pseudo label."""
    if dataset_root is None or not meta.get("label"):
        raise DarsError(f"{where}: the truth labeler needs the image's ground truth (--root, and a label "
                        "path in the shard index)")
    gt = read_label(Path(dataset_root) / meta["label"])
    if gt.shape != tuple(shape):
        raise DarsError(f"{where}: ground truth {meta['label']} is {gt.shape}, the teacher's map {tuple(shape)}")
    if (gt[gt != IGNORE] >= num_classes).any():
        raise DarsError(f"{where}: ground truth {meta['label']} holds ids outside 0..{num_classes - 1} and {IGNORE}")
    return gt.astype(np.uint8)


def _check_label_ids(lab, num_classes, where):
    """Pseudo labels hold class ids or ignore only; checked as they are written, naming the file."""
    bad = (lab >= num_classes) & (lab != IGNORE)
    if bad.any():
        raise DarsError(f"{where}: pseudo label id {int(lab[bad][0])} is outside 0..{num_classes - 1} and "
                        f"{IGNORE}; the shard or thresholds are corrupt, rerun the infer stage")


def label_stage(shard_dir, thresholds_json, out_dir, seed, round, dataset_root=None):
    shard = Shard(shard_dir)
    th = read_json(thresholds_json)
    C = th["num_classes"]
    if shard.num_classes != C:
        raise DarsError(f"shard {shard.path} has {shard.num_classes} classes, {thresholds_json} has {C}")
    pseudo, tp, on_gt, gt_px = (np.zeros(C, np.int64) for _ in range(4))
    images, gt_images, num_pixels = [], 0, 0
    progress = Progress(f"pseudo-label {shard.path.name}", len(shard))
    with atomic_dir(out_dir) as tmp:
        for i in range(len(shard)):
            meta, pred, conf = shard.get(i)
            iid = meta["id"]
            where = f"shard {shard.path}: image {iid}"
            _check_id(iid, where)
            if th["labeler"] == "truth":
                lab = _truth_label(dataset_root, meta, pred.shape, C, where)
            else:
                lab = label_image(iid, pred, conf, th, seed, round, where=where)
            _check_label_ids(lab, C, f"{Path(out_dir) / iid}.png ({where})")
            write_png(tmp / f"{iid}.png", lab)
            pseudo += np.bincount(lab.ravel(), minlength=256)[:C]
            num_pixels += lab.size
            # size and sha256 of the file written: the trainer's resume fingerprint digests these
            # records (pseudo_labels.manifest.json) instead of rereading every label
            images.append({"id": iid, "image": meta.get("image"), "label": meta.get("label"),
                           **file_record(tmp / f"{iid}.png")})
            progress.update()
            if dataset_root is None or not meta.get("label"):
                continue
            gt = read_label(Path(dataset_root) / meta["label"])
            if gt.shape != lab.shape:
                raise DarsError(f"{where}: ground truth {meta['label']} is {gt.shape}, prediction {lab.shape}")
            valid = gt != IGNORE
            if valid.any() and gt[valid].max() >= C:
                raise DarsError(f"{where}: ground truth {meta['label']} holds ids outside 0..{C - 1} and {IGNORE}")
            tp += np.bincount(lab[valid & (lab == gt)], minlength=256)[:C]
            on_gt += np.bincount(lab[valid], minlength=256)[:C]  # ignore (255) falls outside [:C]
            gt_px += np.bincount(gt[valid], minlength=C)[:C]
            gt_images += 1
        gt_stats = None if not gt_images else {
            "images": gt_images, "tp": tp.tolist(), "pseudo_on_gt": on_gt.tolist(), "gt_pixels": gt_px.tolist()}
        write_json(tmp / "stats.json", {"shard": str(shard.path), "num_classes": C, "num_pixels": num_pixels,
                                        "pseudo_counts": pseudo.tolist(), "images": images, "gt": gt_stats})


def _ratio(num, den):
    return [None if d == 0 else n / d for n, d in zip(num, den)]


def _check_recorded(png, record, label_dir):
    """A pseudo label is the file its label stage wrote (size and sha256 in stats.json), or the
    error names it with the commands that rebuild its directory."""
    if not png.is_file():
        raise DarsError(f"{png}: pseudo label missing; {label_dir} must be rebuilt: {rebuild_hint(label_dir)}")
    if "sha256" in record and file_record(png) != {"size": record["size"], "sha256": record["sha256"]}:
        raise DarsError(f"{png}: pseudo label differs from the one its label stage wrote (size and sha256 in "
                        f"{label_dir / 'stats.json'}); {label_dir} must be rebuilt: {rebuild_hint(label_dir)}")


def merge_stage(thresholds_json, label_dirs, out_stats, out_list, prior_json=None, dataset_root=None):
    th = read_json(thresholds_json)
    C = th["num_classes"]
    pseudo, tp, on_gt, gt_px = (np.zeros(C, np.int64) for _ in range(4))
    num_pixels, gt_images, pairs, seen, records = 0, 0, [], set(), {}
    list_dir = Path(out_list).absolute().parent
    for d in map(Path, label_dirs):
        s = read_json(d / "stats.json")
        if s["num_classes"] != C:
            raise DarsError(f"{d}: {s['num_classes']} classes, {thresholds_json} has {C}")
        pseudo += s["pseudo_counts"]
        num_pixels += s["num_pixels"]
        if s["gt"]:
            tp += s["gt"]["tp"]
            on_gt += s["gt"]["pseudo_on_gt"]
            gt_px += s["gt"]["gt_pixels"]
            gt_images += s["gt"]["images"]
        for im in s["images"]:
            if im["id"] in seen:
                raise DarsError(f"{d}: image {im['id']} appears in more than one shard")
            seen.add(im["id"])
            png = d.absolute() / f"{im['id']}.png"
            _check_recorded(png, im, d)
            image = im["image"]
            if not image:
                raise DarsError(f"{d}: image {im['id']} has no image path in its shard index")
            if dataset_root is not None:
                root = Path(dataset_root).absolute()
                if os.path.isabs(image):
                    image = os.path.relpath(image, root)
                if image.startswith("..") or not (root / image).is_file():
                    raise DarsError(f"{d}: image {im['id']}: {image} not found under dataset root {root}")
            pairs.append((image, os.path.relpath(png, list_dir)))
            if "sha256" in im:  # recorded by the label stage (older label dirs: the trainer hashes)
                records[os.path.relpath(png, list_dir)] = {"size": im["size"], "sha256": im["sha256"]}
    if num_pixels != th["num_pixels"]:
        raise DarsError(f"label dirs hold {num_pixels} pixels but {thresholds_json} was computed over "
                        f"{th['num_pixels']}; pass the label dirs of every shard, or rerun stale stages")
    prior = read_json(prior_json)["shares"] if prior_json is not None else th.get("prior")
    if prior is not None and len(prior) != C:
        raise DarsError(f"class prior has {len(prior)} shares, expected {C}")
    selected = int(pseudo.sum())
    stats = {
        "labeler": th["labeler"], "alpha": th["alpha"], "num_images": len(seen), "num_pixels": num_pixels,
        "thresholds": th, "pseudo_counts": pseudo.tolist(), "selected_pixels": selected,
        "coverage": selected / num_pixels if num_pixels else None, "prior": prior,
        "kl_prior_pseudo": None if prior is None else kl_divergence(prior, pseudo),
        "kl_pseudo_prior": None if prior is None else kl_divergence(pseudo, prior),
        "gt": None if not gt_images else {
            "images": gt_images, "tp": tp.tolist(), "pseudo_on_gt": on_gt.tolist(), "gt_pixels": gt_px.tolist(),
            "precision": _ratio(tp, on_gt), "coverage": _ratio(tp, gt_px),
            # KL to the true class distribution of these "unlabeled" images (Table S7's D_KL).
            "kl_true_pseudo": kl_divergence(gt_px, pseudo), "kl_pseudo_true": kl_divergence(pseudo, gt_px)},
    }
    write_json(out_stats, stats)
    write_manifest(out_list, records)
    write_list(out_list, pairs)


def add_stats_arguments(parser):
    parser.add_argument("--shard", required=True)
    parser.add_argument("--out", required=True)


def stats_main(args):
    stats_stage(args.shard, args.out)


def add_thresholds_arguments(parser):
    parser.add_argument("--hists", nargs="+", required=True)
    parser.add_argument("--labeler", required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--prior")
    parser.add_argument("--out", required=True)


def thresholds_main(args):
    thresholds_stage(args.hists, args.out, args.labeler, args.alpha, args.prior)


def add_label_arguments(parser):
    parser.add_argument("--shard", required=True)
    parser.add_argument("--thresholds", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--round", type=int, required=True)
    parser.add_argument("--root")
    parser.add_argument("--out", required=True)


def label_main(args):
    label_stage(args.shard, args.thresholds, args.out, args.seed, args.round, args.root)


def add_merge_arguments(parser):
    parser.add_argument("--thresholds", required=True)
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--prior")
    parser.add_argument("--root")
    parser.add_argument("--out-stats", required=True)
    parser.add_argument("--out-list", required=True)


def merge_main(args):
    merge_stage(args.thresholds, args.labels, args.out_stats, args.out_list, args.prior, args.root)


COMMANDS = {
    "pseudo-stats": (add_stats_arguments, stats_main),
    "pseudo-thresholds": (add_thresholds_arguments, thresholds_main),
    "pseudo-label": (add_label_arguments, label_main),
    "pseudo-merge": (add_merge_arguments, merge_main),
}
