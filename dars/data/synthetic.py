"""An embedded synthetic dataset of street scenes in exact Cityscapes layout, long-tailed like Cityscapes.

A pinhole camera at height HC looks along a straight street: a point (X right, Y up, z forward, in metres)
lands at x = vx + f X / z, y = yh + f (HC - Y) / z. Everything is placed and sized in metres, so farther
objects are smaller and other resolutions just work. Counts, sizes and distance ranges are calibrated so
that train-set class pixel shares land near CITYSCAPES_PIXEL_SHARE (every class within a factor 1.5).
Colours of different classes overlap on purpose: identity is carried by texture, shape and position.
"""
import math

import cv2
import numpy as np

from dars.classes import CITYSCAPES_PIXEL_SHARE, CLASS_NAMES, IGNORE, LABELID_TO_TRAINID, NUM_CLASSES
from dars.io import DarsError, atomic_dir, write_json

from .street import RARE, render  # noqa: F401 (render is part of this module's API)

TRAIN_CITIES = ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg", "hanover",
                "jena", "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen", "ulm", "weimar", "zurich")
VAL_CITIES = ("frankfurt", "lindau", "munster")


def rare_plan(seed, split_index, n):
    """The rare classes of each of the n images of a split: each in exactly ceil(fraction * n) images."""
    plan, per_image = np.random.default_rng([seed, 1000 + split_index]), [[] for _ in range(n)]
    for label, frac in RARE.items():
        for i in plan.choice(n, min(n, math.ceil(frac * n)), replace=False):
            per_image[i].append(label)
    return per_image


def generate(root, num_train=240, num_val=48, height=128, width=256, seed=0) -> dict:
    """Write the dataset tree under `root` atomically (it appears only complete); return its statistics."""
    for name, value, low in (("num_train", num_train, 1), ("num_val", num_val, 1), ("height", height, 32),
                             ("width", width, 64), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DarsError(f"synthetic dataset: {name} must be an integer >= {low}, got {value!r}")
    num_train, num_val, height, width, seed = map(int, (num_train, num_val, height, width, seed))
    counts, presence = np.zeros((2, 256), np.int64), np.zeros((2, NUM_CLASSES), np.int64)
    with atomic_dir(root) as tmp:
        for si, (split, n, cities) in enumerate((("train", num_train, TRAIN_CITIES), ("val", num_val, VAL_CITIES))):
            for i, rare in enumerate(rare_plan(seed, si, n)):
                img, label_ids = render(seed, si, i, height, width, rare)
                train_ids = LABELID_TO_TRAINID[label_ids]
                city = cities[i % len(cities)]
                stem = f"{city}_{i // len(cities):06d}_000019"  # round-robin over cities, seq unique per city
                for top, suffix, arr in (("leftImg8bit", "leftImg8bit", cv2.cvtColor(img, cv2.COLOR_RGB2BGR)),
                                         ("gtFine", "gtFine_labelIds", label_ids),
                                         ("gtFine", "gtFine_labelTrainIds", train_ids)):
                    path = tmp / top / split / city / f"{stem}_{suffix}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if not cv2.imwrite(str(path), arr):
                        raise DarsError(f"{path}: could not write PNG")
                hist = np.bincount(train_ids.ravel(), minlength=256)
                counts[si] += hist
                presence[si] += hist[:NUM_CLASSES] > 0
        share = counts[0, :NUM_CLASSES] / max(1, counts[0, :NUM_CLASSES].sum())
        ratio = share / CITYSCAPES_PIXEL_SHARE
        stats = {
            "generator": "dars.data.synthetic", "num_train": num_train, "num_val": num_val,
            "height": height, "width": width, "seed": seed, "class_names": list(CLASS_NAMES),
            "train_share": [round(float(v), 6) for v in share],
            "target_share": [float(v) for v in CITYSCAPES_PIXEL_SHARE],
            "ratio": [round(float(v), 4) for v in ratio],
            "void_share": round(float(counts[0, IGNORE] / counts[0].sum()), 6),
            "largest_smallest_share": round(float(share.max() / max(share.min(), 1e-12)), 1),
            "train_image_presence": presence[0].tolist(),
            "val_image_presence": presence[1].tolist(),
            "val_missing_classes": [CLASS_NAMES[c] for c in np.flatnonzero(presence[1] == 0)],
            "within_factor_1_5": bool(np.all((ratio >= 1 / 1.5) & (ratio <= 1.5))),
        }
        write_json(tmp / "stats.json", stats)
    return stats
