"""Predictions of a checkpoint on a val or test split, as PNGs in the dataset's official format.

The predictions are exactly the ones `evaluate` scores (dars.slide.Predictor: the same
predict_probs call, probabilities resized to the label's resolution, argmax), so running the
official evaluator on a val export checks our mIoU, and a test export is what a benchmark
server takes. Formats, under the output directory:

    cityscapes  labelIds/<city>/<city>_<seq>_<frame>_pred_labelIds.png   Cityscapes labelIds
                color/<city>/<city>_<seq>_<frame>_pred_color.png         for viewing
    voc         index/<id>.png       class indices 0..20, VOC palette (as SegmentationClass)
    scannet     nyu40/<scene>_<frame>.png   NYU40 ids at the label size (640x480), the names of the
                2D benchmark's ground truth; color/<scene>_<frame>.png for viewing
    others      trainIds/<id>.png    train ids; color/<id>.png for viewing
    export.json checkpoint, split, protocol, format, every image with its prediction file

cityscapesscripts finds a prediction by the pattern `<city>_<seq>_<frame>*.png` anywhere
below its results folder (CITYSCAPES_RESULTS), and so does the benchmark server in a zip:
point it at labelIds/, not at the output directory, whose color/ files match the pattern too.
Each format is its layout's (the EXPORT of dars.data.<layout>).
"""
from pathlib import Path

import numpy as np
import torch

from .data import layouts
from .data.dataset import ImageList, prefetched
from .data.labelmaps import image_size
from .data.layouts import DEFAULT_LAYOUT, class_set, find_images, find_pairs
from .io import DarsError, atomic_dir, write_json
from .log import Progress
from .settings import PREDICT_HELP, PredictSettings, json_argument
from .slide import load_predictor


def export_items(layout, root, split):
    """(image, label or None) pairs of a split. Test labels are missing or, in Cityscapes, all
    void, so test images are listed alone and predicted at their own size; other splits are
    listed as evaluate lists them, and predicted at their label's size as evaluate scores them."""
    if split == "test":
        return [(image, None) for image in find_images(layout, root, split)]
    return find_pairs(layout, root, split)


def _check_classes(ckpt, meta, layout):
    expected = class_set(layout).num_classes
    if meta["num_classes"] != expected:
        raise DarsError(f"{ckpt}: the checkpoint predicts {meta['num_classes']} classes but the {layout} "
                        f"layout has {expected}; pass the --layout of the dataset the model was trained for")


def export_stage(ckpt, root, split, out_dir, layout=DEFAULT_LAYOUT, settings=None, threads=None):
    """Write the predictions of `ckpt` on `root`'s `split` images into the directory `out_dir`
    (replaced as a whole, and only once every file is written). `settings`: a
    dars.settings.PredictSettings or its dict, as for dars.evaluate.evaluate_stage. Returns
    export.json's content."""
    items = export_items(layout, root, split)  # a bad root or split fails before the model loads
    predictor = load_predictor(ckpt, settings, threads)
    _check_classes(ckpt, predictor.meta, layout)
    fmt, write = layouts.layout(layout).EXPORT
    with atomic_dir(out_dir) as tmp:
        native, written = _write_predictions(tmp, predictor, Path(root), items, write, class_set(layout))
        record = _record(ckpt, predictor, layout, root, split, fmt, native, written)
        write_json(tmp / "export.json", record)
    return record


def _write_predictions(out, predictor, root, items, write, classes):
    """Predict every item and write its files under `out`; returns the image sizes seen and
    {image: its prediction file}."""
    native, written, taken = set(), {}, set()
    progress = Progress("export", len(items))
    for i, image, _ in prefetched(ImageList(root, items), predictor.workers):
        image_rel, label_rel = items[i]
        native.add(image.shape[:2])
        size = image_size(root / label_rel) if label_rel else image.shape[:2]
        train_ids = predictor.train_ids(image, tuple(size)).to("cpu", torch.uint8).numpy()
        pred = write(out, image_rel, np.ascontiguousarray(train_ids), classes)
        if pred in taken:  # it replaced another image's prediction (the whole directory is discarded)
            raise DarsError(f"{root / image_rel}: its prediction name {pred} is already taken by another "
                            "image of the split; image names must be unique")
        written[image_rel] = pred
        taken.add(pred)
        progress.update()
    return native, written


def _record(ckpt, predictor, layout, root, split, fmt, native, written):
    meta, s = predictor.meta, predictor.settings
    return {
        "checkpoint": str(ckpt), "epochs": meta.get("epochs"), "iteration": meta.get("iteration"),
        "root": str(root), "layout": layout, "split": split,
        "protocol": predictor.protocol(native), "precision": predictor.precision(),
        "flip": s.flip, "mode": s.mode, "window": list(predictor.window) if predictor.window else None,
        "resize": list(s.resize) if s.resize else None,
        "format": fmt, "predictions_folder": fmt, "color_folder": None if fmt == "index" else "color",
        "class_names": list(class_set(layout).names),
        "num_images": len(written),
        "predictions": [[image, pred] for image, pred in written.items()],
    }


def add_arguments(a):
    """prediction PNGs of a split in the official format (dars.export)"""
    a.add_argument("--ckpt", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--split", required=True, choices=["val", "test"])
    a.add_argument("--settings", type=json_argument, default={}, help=PREDICT_HELP)
    a.add_argument("--layout", default=DEFAULT_LAYOUT, help="dataset layout of --root")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True, help="directory to write (replaced only once complete)")


def main(args):
    r = export_stage(args.ckpt, args.root, args.split, args.out, args.layout, PredictSettings.of(args.settings),
                     args.threads)
    print(f"wrote {r['num_images']} {r['format']} predictions of {args.split} to {args.out}")


COMMANDS = {"export": (add_arguments, main)}
