"""Evaluate a checkpoint on the validation images: confusion matrix summed over the whole set."""
from pathlib import Path

import torch

from . import slide
from .data.dataset import ImageList, prefetched
from .data.labelmaps import check_train_ids
from .data.layouts import DEFAULT_LAYOUT, class_set
from .data.splits import listed_pairs
from .io import DarsError, read_json, write_json
from .log import Progress
from .metrics import ConfusionMatrix
from .settings import PREDICT_HELP, PredictSettings, json_argument


def evaluate_stage(ckpt, root, out_json, settings=None, threads=None, run=None, split_json=None,
                   layout=DEFAULT_LAYOUT):
    """Write miou.json for `ckpt` on `root`'s val images. `settings`: a
    dars.settings.PredictSettings or its dict (a window of None in slide mode is the
    checkpoint's training crop, the paper's protocol). `run` holds the run's identity
    (dataset, split, method, seed, round, alpha, scale range), recorded with the numbers."""
    split_info = read_json(split_json) if split_json else {}
    warnings = []  # images left out under datasets.<name>.allow_unpaired, recorded with the numbers
    pairs = listed_pairs(layout, root, "val", split_info.get("allow_unpaired", False), warnings)
    if not pairs:
        raise DarsError(f"{root}: no val pairs to evaluate on")
    predictor = slide.load_predictor(ckpt, settings, threads)
    meta = predictor.meta
    cm = ConfusionMatrix(meta["num_classes"])
    native, scored_at, scored = set(), set(), 0  # image sizes; label sizes, at which predictions are scored
    progress = Progress("evaluate", len(pairs))
    for i, image, label in prefetched(ImageList(root, pairs, labels=True), predictor.workers):
        # The split stage checked these ids; a label edited since is named here, not by the metric.
        check_train_ids(Path(root) / pairs[i][1], label, meta["num_classes"])
        native.add(image.shape[:2])
        scored_at.add(label.shape)
        cm.update(torch.from_numpy(label), predictor.train_ids(image, label.shape))
        scored += 1
        progress.update()
    if scored != len(pairs):  # never a score over fewer images than listed
        raise DarsError(f"{root}: {len(pairs)} val pairs listed but {scored} scored; rerun the evaluate stage")
    cm.reduce_from_all_processes()
    result = _record(ckpt, predictor, native, run, split_info)
    result.update(num_images=scored, num_val_listed=len(pairs), num_val_scored=scored,
                  class_names=list(class_set(layout).names)[: meta["num_classes"]],
                  scored_at=sorted(list(size) for size in scored_at))  # ScanNet's benchmark: [[480, 640]]
    if warnings:
        result["warnings"] = warnings
    result.update(_scores(cm))
    if meta.get("backbone_init"):  # absent for models without a backbone file and older checkpoints
        result["backbone_init"] = meta["backbone_init"]
    write_json(out_json, result)
    return result


def _record(ckpt, predictor, native, run, split_info):
    """What miou.json says about the run, the split, the protocol and the checkpoint."""
    s, window, meta = predictor.settings, predictor.window, predictor.meta
    result = dict(run or {})
    result.update({
        "split_source": split_info.get("source"),
        "split_source_file": split_info.get("source_file"),
        "split_family": split_info.get("split_family"),
        "protocol": predictor.protocol(native),
        "flip": s.flip, "mode": s.mode, "window": list(window) if window else None,
        "stride": list(slide.default_stride(window)) if window else None,
        "resize": list(s.resize) if s.resize else None,
        "precision": predictor.precision(),
        "checkpoint": str(ckpt), "epochs": meta.get("epochs"), "iteration": meta.get("iteration"),
    })
    return result


def _scores(cm):
    scores = cm.compute()
    return {
        "iou": [None if v != v else v for v in scores["iou"]],
        "acc": [None if v != v else v for v in scores["acc"]],
        "miou": scores["miou"], "macc": scores["macc"], "allacc": scores["allacc"],
        "confusion": cm.mat.tolist(),
    }


def add_arguments(a):
    """mIoU of a checkpoint on the val images"""
    a.add_argument("--ckpt", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--settings", type=json_argument, default={}, help=PREDICT_HELP)
    a.add_argument("--run", type=json_argument, default={}, help="run identity recorded in the output (JSON)")
    a.add_argument("--split-json")
    a.add_argument("--layout", default=DEFAULT_LAYOUT, help="dataset layout of --root (val images)")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)


def main(args):
    r = evaluate_stage(args.ckpt, args.root, args.out, PredictSettings.of(args.settings), args.threads, args.run,
                       args.split_json, args.layout)
    print(f"mIoU {r['miou']:.4f}  mAcc {r['macc']:.4f}  allAcc {r['allacc']:.4f}")


COMMANDS = {"evaluate": (add_arguments, main)}
