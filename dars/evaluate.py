"""Evaluate a checkpoint on the validation images: confusion matrix summed over the whole set."""
from pathlib import Path

import torch

from . import slide
from .data.dataset import ImageList, prefetched
from .data.layouts import check_train_ids, class_set, find_pairs
from .io import read_json, write_json
from .metrics import ConfusionMatrix
from .settings import PREDICT_HELP, PredictSettings, json_argument


def evaluate_stage(ckpt, root, out_json, settings=None, threads=None, run=None, split_json=None, layout="cityscapes"):
    """Write miou.json for `ckpt` on `root`'s val images. `settings`: a
    dars.settings.PredictSettings or its dict (a window of None in slide mode is the
    checkpoint's training crop, the paper's protocol). `run` holds the run's identity
    (dataset, split, method, seed, round, alpha, scale range), recorded with the numbers."""
    predictor = slide.load_predictor(ckpt, settings, threads)
    meta = predictor.meta
    cm = ConfusionMatrix(meta["num_classes"])
    pairs = find_pairs(layout, root, "val")
    native, scored_at = set(), set()  # image sizes; label sizes, at which predictions are scored
    for i, image, label in prefetched(ImageList(root, pairs, labels=True), predictor.workers):
        # The split stage checked these ids; a label edited since is named here, not by the metric.
        check_train_ids(Path(root) / pairs[i][1], label, meta["num_classes"])
        native.add(image.shape[:2])
        scored_at.add(label.shape)
        cm.update(torch.from_numpy(label), predictor.train_ids(image, label.shape))
    cm.reduce_from_all_processes()
    result = _record(ckpt, predictor, native, run, split_json)
    result.update(num_images=len(pairs), class_names=list(class_set(layout).names)[: meta["num_classes"]],
                  scored_at=sorted(list(size) for size in scored_at))  # ScanNet's benchmark: [[480, 640]]
    result.update(_scores(cm))
    if meta.get("backbone_init"):  # absent for models without a backbone file and older checkpoints
        result["backbone_init"] = meta["backbone_init"]
    write_json(out_json, result)
    return result


def _record(ckpt, predictor, native, run, split_json):
    """What miou.json says about the run, the split, the protocol and the checkpoint."""
    split_info = read_json(split_json) if split_json else {}
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
    a.add_argument("--layout", default="cityscapes", help="dataset layout of --root (val images)")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)


def main(args):
    r = evaluate_stage(args.ckpt, args.root, args.out, PredictSettings.of(args.settings), args.threads, args.run,
                       args.split_json, args.layout)
    print(f"mIoU {r['miou']:.4f}  mAcc {r['macc']:.4f}  allAcc {r['allacc']:.4f}")


COMMANDS = {"evaluate": (add_arguments, main)}
