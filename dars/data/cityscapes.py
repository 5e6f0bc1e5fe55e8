"""Cityscapes-layout datasets: find image/label pairs, read and write list files, prepare trainIds."""
from pathlib import Path

import numpy as np

from ..classes import label_ids_to_train_ids
from ..io import DarsError, read_label, write_png

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAINIDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABELIDS_SUFFIX = "_gtFine_labelIds.png"


def image_id(image_rel: str) -> str:
    """A unique, readable id of an image of any layout; it names pseudo-label files and seeds sampling.

    Cityscapes `leftImg8bit/train/aachen/aachen_000005_000019_leftImg8bit.png` -> `aachen_000005_000019`
    (existing results depend on it); GTA5 `images/00001.png` -> `00001`; VOC
    `JPEGImages/2007_000032.jpg` -> `2007_000032`; ScanNet frame names repeat in every scene, so
    `scannet_frames_25k/scene0000_00/color/000100.jpg` -> `scene0000_00_000100`."""
    path = Path(image_rel)
    name = path.name
    if name.endswith(IMAGE_SUFFIX):
        return name[: -len(IMAGE_SUFFIX)]
    scene = path.parts[-3] if len(path.parts) >= 3 else ""
    if len(scene) == 12 and scene.startswith("scene") and scene[5:9].isdigit() and scene[9] == "_" \
            and scene[10:].isdigit():  # a ScanNet scene folder such as scene0000_00
        return f"{scene}_{path.stem}"
    return path.stem


def label_path_for(image_rel: str, suffix=TRAINIDS_SUFFIX) -> str:
    p = Path(image_rel)
    parts = ("gtFine",) + p.parts[1:-1] + (image_id(image_rel) + suffix,)
    return str(Path(*parts))


def check_root(root, name="dataset root"):
    root = Path(root)
    if not (root / "leftImg8bit").is_dir():
        raise DarsError(f"{root}: {name} has no leftImg8bit/ folder; set `datasets.<name>.root` in "
                        "config.yaml to a directory in Cityscapes layout (leftImg8bit/, gtFine/)")
    return root


def find_pairs(root, split):
    """Sorted (image, label) pairs, relative to root, of one split (train/val)."""
    root = check_root(root)
    images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise DarsError(f"{root / 'leftImg8bit' / split}: no *{IMAGE_SUFFIX} images found")
    pairs = []
    missing_trainids = 0
    for img in images:
        rel = str(img.relative_to(root))
        lab = label_path_for(rel)
        if not (root / lab).is_file():
            if (root / label_path_for(rel, LABELIDS_SUFFIX)).is_file():
                missing_trainids += 1
                continue
            raise DarsError(f"{root / lab}: ground truth missing for {rel}")
        pairs.append((rel, lab))
    if missing_trainids:
        raise DarsError(
            f"{root / 'gtFine' / split}: {missing_trainids} images have *{LABELIDS_SUFFIX} but no "
            f"*{TRAINIDS_SUFFIX} (Cityscapes does not ship them). Create them once with "
            f"`python -m dars prepare cityscapes {root}` (or cityscapesscripts' csCreateTrainIdLabelImgs)")
    return pairs


def find_images(root, split):
    """Sorted images, relative to root, of one split (test included), whatever labels exist."""
    root = check_root(root)
    images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise DarsError(f"{root / 'leftImg8bit' / split}: no *{IMAGE_SUFFIX} images found (split {split!r} "
                        f"of dataset root {root})")
    return [str(img.relative_to(root)) for img in images]


def prepare_train_ids(root):
    """Write *_labelTrainIds.png beside every *_labelIds.png that lacks one; returns the count written."""
    root = check_root(root)
    written = 0
    for lab in sorted((root / "gtFine").glob(f"*/*/*{LABELIDS_SUFFIX}")):
        out = lab.with_name(lab.name[: -len(LABELIDS_SUFFIX)] + TRAINIDS_SUFFIX)
        if out.exists():
            continue  # never overwrite what the user (or cityscapesscripts) made
        write_png(out, label_ids_to_train_ids(read_label(lab)))
        written += 1
    return written


def read_list(path, root=None):
    """Pairs from a list file: one `image label` pair per line, relative to the dataset root."""
    path = Path(path)
    if not path.is_file():
        raise DarsError(f"{path}: list file not found")
    pairs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DarsError(f"{path}:{n}: expected `<image path> <label path>`, got {line!r}")
        pairs.append((fields[0], fields[1]))
    if root is not None:
        for img, lab in pairs[:1] + pairs[-1:]:
            for p in (img, lab):
                if not (Path(root) / p).is_file():
                    raise DarsError(f"{path}: {p} does not exist under dataset root {root}")
    return pairs


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
