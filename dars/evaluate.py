"""Evaluate a checkpoint on the validation images: confusion matrix summed over the whole set."""
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import slide
from .data.dataset import ImageList, prefetched
from .data.layouts import check_train_ids, class_set, find_pairs
from .infer import load_model, pick_device, predict_probs, prepare_device, resolve_window
from .io import read_json, write_json
from .metrics import ConfusionMatrix


@dataclass
class Predictor:
    """A checkpoint loaded for the evaluation protocol; evaluate and export share it, so an
    exported PNG is exactly the prediction that evaluate scores."""
    model: torch.nn.Module
    meta: dict
    device: torch.device
    workers: int      # image-decoding processes (dars.infer.prepare_device)
    resize: list | None
    flip: bool
    options: dict     # dars.slide.predict_probs's mode, window, batch_windows, amp, channels_last

    def train_ids(self, image, size):
        """Argmax train ids (H x W tensor) at `size`, the label's resolution: probabilities are
        resized there before the argmax (§4), never the argmax map."""
        probs = predict_probs(self.model, image, self.resize, self.flip, self.device, **self.options)
        if probs.shape[-2:] != size:
            probs = F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
        return probs.argmax(0)

    def protocol(self, native):
        """The protocol in words (dars.slide.describe); `native`: the image sizes seen."""
        o = self.options
        return slide.describe(o["mode"], self.resize, o["window"], flip=self.flip, native=native)

    def precision(self):
        o = self.options
        return slide.precision(self.device, o["amp"], o["channels_last"], o["mode"])


def load_predictor(ckpt, resize=None, flip=True, threads=None, mode="whole", window=None, batch_windows=8,
                   amp="auto", channels_last="auto") -> Predictor:
    """The checkpoint on this process's device, with the window resolved (None in slide mode =
    the checkpoint's training crop, the paper's protocol)."""
    device = pick_device()
    workers = prepare_device(device, threads)
    model, meta = load_model(ckpt, device)
    window = resolve_window(mode, window, meta)
    options = dict(mode=mode, window=window, batch_windows=batch_windows, amp=amp, channels_last=channels_last)
    return Predictor(model, meta, device, workers, resize, flip, options)


def evaluate_stage(ckpt, root, out_json, resize=None, flip=True, threads=None, run=None, split_json=None,
                   mode="whole", window=None, batch_windows=8, amp="auto", channels_last="auto", layout="cityscapes"):
    """Write miou.json for `ckpt` on `root`'s val images. `run` holds the run's identity
    (dataset, split, method, seed, round, alpha, scale range), recorded with the numbers.
    mode/window/batch_windows/amp/channels_last: see dars.slide.predict_probs (window None in
    slide mode = the checkpoint's training crop, the paper's protocol)."""
    predictor = load_predictor(ckpt, resize, flip, threads, mode, window, batch_windows, amp, channels_last)
    meta, window = predictor.meta, predictor.options["window"]
    cm = ConfusionMatrix(meta["num_classes"])
    pairs = find_pairs(layout, root, "val")
    native = set()
    for i, image, label in prefetched(ImageList(root, pairs, labels=True), predictor.workers):
        # The split stage checked these ids; a label edited since is named here, not by the metric.
        check_train_ids(Path(root) / pairs[i][1], label, meta["num_classes"])
        native.add(image.shape[:2])
        cm.update(torch.from_numpy(label), predictor.train_ids(image, label.shape))
    cm.reduce_from_all_processes()
    scores = cm.compute()
    split_info = read_json(split_json) if split_json else {}
    result = dict(run or {})
    result.update({
        "split_source": split_info.get("source"),
        "split_source_file": split_info.get("source_file"),
        "split_family": split_info.get("split_family"),
        "protocol": predictor.protocol(native),
        "flip": flip, "mode": mode, "window": list(window) if window else None,
        "stride": list(slide.default_stride(window)) if window else None,
        "resize": list(resize) if resize else None,
        "precision": predictor.precision(),
        "checkpoint": str(ckpt), "epochs": meta.get("epochs"), "iteration": meta.get("iteration"),
        "num_images": len(pairs), "class_names": list(class_set(layout).names)[: meta["num_classes"]],
        "iou": [None if v != v else v for v in scores["iou"]],
        "acc": [None if v != v else v for v in scores["acc"]],
        "miou": scores["miou"], "macc": scores["macc"], "allacc": scores["allacc"],
        "confusion": cm.mat.tolist(),
    })
    if meta.get("backbone_init"):  # absent for models without a backbone file and older checkpoints
        result["backbone_init"] = meta["backbone_init"]
    write_json(out_json, result)
    return result
