"""Cityscapes layout: its path rules (leftImg8bit/ images, gtFine/ labels), pairs of a split, prepare trainIds."""
from pathlib import Path

from ..classes import label_ids_to_train_ids
from ..io import DarsError, read_label
from .layouts import write_labels

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAINIDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABELIDS_SUFFIX = "_gtFine_labelIds.png"


def image_stem(image_rel: str):
    """`aachen_000005_000019` of `.../aachen_000005_000019_leftImg8bit.png`; None for another file name
    (dars.data.lists.image_id, the id of an image of any layout, asks this first)."""
    name = Path(image_rel).name
    return name[: -len(IMAGE_SUFFIX)] if name.endswith(IMAGE_SUFFIX) else None


def label_path_for(image_rel: str, suffix=TRAINIDS_SUFFIX) -> str:
    """leftImg8bit/<split>/<city>/<id>_leftImg8bit.png -> gtFine/<split>/<city>/<id><suffix>."""
    p = Path(image_rel)
    stem = image_stem(image_rel)
    parts = ("gtFine",) + p.parts[1:-1] + ((p.stem if stem is None else stem) + suffix,)
    return str(Path(*parts))


def images_with_id(root, iid):
    """Sorted images (relative to root) of any split whose id is `iid`."""
    return [str(p.relative_to(root)) for p in sorted(Path(root).glob(f"leftImg8bit/*/*/{iid}{IMAGE_SUFFIX}"))]


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
    jobs = [(lab.with_name(lab.name[: -len(LABELIDS_SUFFIX)] + TRAINIDS_SUFFIX), lab)
            for lab in sorted((root / "gtFine").glob(f"*/*/*{LABELIDS_SUFFIX}"))]
    # never overwrites what the user (or cityscapesscripts) made
    return write_labels(jobs, lambda lab: label_ids_to_train_ids(read_label(lab)))
