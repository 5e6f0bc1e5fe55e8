"""Embedded synthetic datasets of street scenes: "city" in exact Cityscapes layout, long-tailed like
Cityscapes, and "game" in exact GTA5 layout, its domain-shifted stand-in for GTA5 -> Cityscapes adaptation.

The scenes are drawn by scene.py (the street layout), draw.py (camera and canvas), objects.py (things),
style.py (the city domain) and game.py (the game domain: palette, lighting, textures and class shares that differ).
Both domains share the 19 classes and the scene semantics, so labels transfer from one to the other.
"""
import math

import cv2
import numpy as np

from dars.classes import (
    CITYSCAPES_PIXEL_SHARE,
    CLASS_NAMES,
    IGNORE,
    LABELID_TO_TRAINID,
    NUM_CLASSES,
    train_ids_to_label_ids,
)
from dars.io import DarsError, atomic_dir, write_json

from .scene import DOMAINS, render

TRAIN_CITIES = ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg", "hanover",
                "jena", "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen", "ulm", "weimar", "zurich")
VAL_CITIES = ("frankfurt", "lindau", "munster")
# The generator stats.json names: its module before it moved to dars.synthetic, so existing trees stay byte-identical.
GENERATOR = "dars.data.synthetic"


def rare_plan(seed, split_index, n, domain="city"):
    """The rare classes of each of the n images of a split: each in exactly ceil(fraction * n) images."""
    st = DOMAINS[domain]
    plan, per_image = np.random.default_rng([seed, 1000 + split_index, *st.key]), [[] for _ in range(n)]
    for label, frac in st.rare.items():
        for i in plan.choice(n, min(n, math.ceil(frac * n)), replace=False):
            per_image[i].append(label)
    return per_image


def _imwrite(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), arr):
        raise DarsError(f"{path}: could not write PNG")


def generate(root, num_train=240, num_val=48, height=128, width=256, seed=0, domain="city") -> dict:
    """Write the dataset tree under `root` atomically (it appears only complete); return its statistics.

    domain "city": Cityscapes layout, num_train + num_val images. domain "game": GTA5 layout, num_train
    images, all for training (GTA5 has no val split: num_val is not used and may be 0).
    """
    if domain not in DOMAINS:
        raise DarsError(f"synthetic dataset: domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    for name, value, low in (("num_train", num_train, 1), ("num_val", num_val, int(domain == "city")),
                             ("height", height, 32), ("width", width, 64), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DarsError(f"synthetic dataset: {name} must be an integer >= {low}, got {value!r}")
    num_train, num_val, height, width, seed = map(int, (num_train, num_val, height, width, seed))
    with atomic_dir(root) as tmp:
        if domain == "city":
            stats = _write_city(tmp, num_train, num_val, height, width, seed)
        else:
            stats = _write_game(tmp, num_train, height, width, seed, domain)
        write_json(tmp / "stats.json", stats)
    return stats


def _write_city(tmp, num_train, num_val, height, width, seed):
    """Cityscapes layout: leftImg8bit/ and gtFine/ (labelIds and labelTrainIds), per split and city."""
    counts, presence = np.zeros((2, 256), np.int64), np.zeros((2, NUM_CLASSES), np.int64)
    for si, (split, n, cities) in enumerate((("train", num_train, TRAIN_CITIES), ("val", num_val, VAL_CITIES))):
        for i, rare in enumerate(rare_plan(seed, si, n)):
            img, label_ids = render(seed, si, i, height, width, rare)
            train_ids = LABELID_TO_TRAINID[label_ids]
            city = cities[i % len(cities)]
            stem = f"{city}_{i // len(cities):06d}_000019"  # round-robin over cities, seq unique per city
            for top, suffix, arr in (("leftImg8bit", "leftImg8bit", cv2.cvtColor(img, cv2.COLOR_RGB2BGR)),
                                     ("gtFine", "gtFine_labelIds", label_ids),
                                     ("gtFine", "gtFine_labelTrainIds", train_ids)):
                _imwrite(tmp / top / split / city / f"{stem}_{suffix}.png", arr)
            hist = np.bincount(train_ids.ravel(), minlength=256)
            counts[si] += hist
            presence[si] += hist[:NUM_CLASSES] > 0
    share = counts[0, :NUM_CLASSES] / max(1, counts[0, :NUM_CLASSES].sum())
    ratio = share / CITYSCAPES_PIXEL_SHARE
    return {
        "generator": GENERATOR, "num_train": num_train, "num_val": num_val,
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


def _write_game(tmp, n, height, width, seed, domain):
    """GTA5 layout: images/00001.png ... and labels/00001.png ... (Cityscapes labelIds, void as 0).

    The statistics document the domain shift: class shares against Cityscapes', and each class's mean colour.
    """
    counts, presence = np.zeros(256, np.int64), np.zeros(NUM_CLASSES, np.int64)
    colour_sum = np.zeros((256, 3))
    for i, rare in enumerate(rare_plan(seed, 0, n, domain)):
        img, label_ids = render(seed, 0, i, height, width, rare, domain)
        train_ids = LABELID_TO_TRAINID[label_ids]
        _imwrite(tmp / "images" / f"{i + 1:05d}.png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        _imwrite(tmp / "labels" / f"{i + 1:05d}.png", train_ids_to_label_ids(train_ids))
        hist = np.bincount(train_ids.ravel(), minlength=256)
        counts += hist
        presence += hist[:NUM_CLASSES] > 0
        for c in range(3):
            colour_sum[:, c] += np.bincount(train_ids.ravel(), weights=img[..., c].ravel(), minlength=256)
    share = counts[:NUM_CLASSES] / max(1, counts[:NUM_CLASSES].sum())
    mean_colour = colour_sum[:NUM_CLASSES] / np.maximum(1, counts[:NUM_CLASSES, None])
    return {
        "generator": GENERATOR, "domain": domain, "layout": "gta5", "num_images": n,
        "height": height, "width": width, "seed": seed, "class_names": list(CLASS_NAMES),
        "train_share": [round(float(v), 6) for v in share],
        "cityscapes_share": [float(v) for v in CITYSCAPES_PIXEL_SHARE],
        "ratio_to_cityscapes": [round(float(v), 4) for v in share / CITYSCAPES_PIXEL_SHARE],
        "void_share": round(float(counts[IGNORE] / counts.sum()), 6),
        "train_image_presence": presence.tolist(),
        "missing_classes": [CLASS_NAMES[c] for c in np.flatnonzero(presence == 0)],
        "mean_colour_rgb": [[round(float(v), 2) for v in row] for row in mean_colour],
    }


def add_arguments(parser):
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-train", type=int, default=240)
    parser.add_argument("--num-val", type=int, default=48)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domain", default="city", choices=["city", "game"],
                        help="city: Cityscapes layout; game: the GTA5 stand-in (GTA5 layout, other look and shares)")


def main(args):
    generate(args.out, args.num_train, args.num_val, args.height, args.width, args.seed, domain=args.domain)
    if args.domain == "game":  # GTA5 layout ships labelIds: convert them as a user would
        from ..data.layouts import prepare
        prepare("gta5", args.out)


COMMANDS = {"synthesize": (add_arguments, main)}
