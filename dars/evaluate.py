"""Evaluate a checkpoint on the validation images: confusion matrix summed over the whole set."""
from pathlib import Path

import torch

from .classes import CLASS_NAMES
from .data.cityscapes import find_pairs
from .infer import load_model, pick_device, predict_probs
from .io import read_image, read_json, read_label, write_json
from .metrics import ConfusionMatrix


def evaluate_stage(ckpt, root, out_json, resize=None, flip=True, threads=None, run=None, split_json=None):
    """Write miou.json for `ckpt` on `root`'s val images. `run` holds the run's identity
    (dataset, split, method, seed, round, alpha, scale range), recorded with the numbers."""
    if threads:
        torch.set_num_threads(threads)
    device = pick_device()
    model, meta = load_model(ckpt, device)
    cm = ConfusionMatrix(meta["num_classes"])
    pairs = find_pairs(root, "val")
    for image_rel, label_rel in pairs:
        probs = predict_probs(model, read_image(Path(root) / image_rel), resize, flip, device)
        cm.update(torch.from_numpy(read_label(Path(root) / label_rel)), probs.argmax(0))
    cm.reduce_from_all_processes()
    scores = cm.compute()
    split_info = read_json(split_json) if split_json else {}
    result = dict(run or {})
    result.update({
        "split_source": split_info.get("source"),
        "split_source_file": split_info.get("source_file"),
        "protocol": f"whole image at {resize[0]}x{resize[1]}" if resize else "whole image",
        "flip": flip,
        "checkpoint": str(ckpt), "epochs": meta.get("epochs"), "iteration": meta.get("iteration"),
        "num_images": len(pairs), "class_names": list(CLASS_NAMES)[: meta["num_classes"]],
        "iou": [None if v != v else v for v in scores["iou"]],
        "acc": [None if v != v else v for v in scores["acc"]],
        "miou": scores["miou"], "macc": scores["macc"], "allacc": scores["allacc"],
        "confusion": cm.mat.tolist(),
    })
    write_json(out_json, result)
    return result
