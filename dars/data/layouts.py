"""Registry of the dataset layouts the pipeline reads, and helpers they share.

Every layout obeys one contract: a dataset is a root directory plus
`find_pairs(root, split) -> sorted [(image_rel, label_rel)]`, paths relative to the root, where
each label is a single-channel uint8 PNG of train ids (0..C-1, 255 = ignore). Layouts that ship
labels in another id space have a `prepare(root)` that writes train-id PNGs once into the tree
(never overwriting a file) and a `find_pairs` that says which command to run when it is missing.

Layout modules are imported lazily: they import the helpers below, and a registry that imported
them at load time would make that circular.
"""
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import classes
from ..io import DarsError, read_label, write_png


@dataclass(frozen=True)
class Layout:
    name: str
    module: str          # dars.data.<module>
    find: str            # its find_pairs function
    check: str           # its check_root function
    prepare: str | None  # its prepare function; None when labels ship as train ids
    tree: str            # what the root must hold, for messages and docs
    images: str | None = None  # its images-only listing (no labels needed); None: no test split

    def function(self, attr):
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), attr)


LAYOUTS = {
    "cityscapes": Layout("cityscapes", "cityscapes", "find_pairs", "check_root", "prepare_train_ids",
                         "leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
                         "gtFine/<split>/<city>/*_gtFine_labelIds.png", images="find_images"),
    "gta5": Layout("gta5", "gta5", "find_pairs", "check_root", "prepare",
                   "images/<id>.png and labels/<id>.png (Cityscapes labelIds)"),
    "scannet": Layout("scannet", "scannet", "find_pairs", "check_root", "prepare",
                      "scannet_frames_25k/<scene>/{color/<frame>.jpg,label/<frame>.png}, "
                      "scannetv2-labels.combined.tsv, scannetv2_{train,val}.txt"),
    "voc": Layout("voc", "voc", "find_pairs", "check_root", None,
                  "JPEGImages/<id>.jpg, SegmentationClassAug/<id>.png, "
                  "ImageSets/Segmentation/{train_aug,val}.txt"),
}


def layout(name) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise DarsError(f"unknown dataset layout {name!r}; known layouts: {', '.join(sorted(LAYOUTS))}") \
            from None


def class_set(name) -> classes.ClassSet:
    layout(name)  # the same message for an unknown layout everywhere
    return classes.class_set(name)


def check_root(name, root) -> Path:
    """The root as a Path; a clear error naming the root and the folders its layout needs."""
    lay = layout(name)
    root = Path(root)
    if not root.is_dir():
        raise DarsError(f"{root}: {name} dataset root does not exist; it must hold {lay.tree}")
    return lay.function(lay.check)(root)


def find_pairs(name, root, split):
    """Sorted (image_rel, label_rel) pairs of one split; labels are train-id PNGs."""
    lay = layout(name)
    check_root(name, root)
    return lay.function(lay.find)(Path(root), split)


def find_images(name, root, split):
    """Sorted image paths (relative to the root) of one split, without requiring labels: the
    test split's labels are missing or, in Cityscapes, all void. A layout without an images-only
    listing has no test split; its other splits are the images of find_pairs."""
    lay = layout(name)
    check_root(name, root)
    if lay.images is not None:
        return lay.function(lay.images)(Path(root), split)
    if split == "test":
        raise DarsError(f"{root}: the {name} layout has no {split!r} split (dars lists test images of the "
                        "cityscapes layout only); use split 'val' instead")
    return [image for image, _ in find_pairs(name, root, split)]


def prepare(name, root) -> int:
    """Write the train-id labels a layout needs (`python -m dars prepare <layout> <root>`);
    returns the number of files written (0 for layouts that ship train ids)."""
    lay = layout(name)
    root = check_root(name, root)
    return 0 if lay.prepare is None else lay.function(lay.prepare)(root)


def prepare_command(name, root) -> str:
    return f"python -m dars prepare {name} {root}"


def check_train_ids(path, label: np.ndarray, num_classes):
    """Error naming `path` if the train-id map holds ids outside 0..num_classes-1 and 255."""
    bad = np.unique(label[(label >= num_classes) & (label != classes.IGNORE)])
    if bad.size:
        raise DarsError(f"{path}: holds ids {bad[:8].tolist()} outside the {num_classes} train ids "
                        f"0..{num_classes - 1} and 255 (ignore); is it in the source id space instead "
                        "of train ids?")


def check_labels(name, root, pairs):
    """Read every label of `pairs` and check it is a train-id map of the layout's class set."""
    num_classes = class_set(name).num_classes
    for _, lab in pairs:
        path = Path(root) / lab
        check_train_ids(path, read_label(path), num_classes)


def read_index_label(path) -> np.ndarray:
    """Ids of a label PNG in its source id space: 8- or 16-bit grey or palette (GTA5 and VOC save
    ids as palette indices, which OpenCV would expand to colours). Colour PNGs are an error."""
    path = Path(path)
    if not path.is_file():
        raise DarsError(f"{path}: label map missing")
    try:
        with Image.open(path) as img:
            mode = img.mode
            ids = np.array(img)
    except OSError as e:
        raise DarsError(f"{path}: label map unreadable ({e})") from e
    if mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L") or ids.ndim != 2:
        raise DarsError(f"{path}: label map is a {mode} image; expected ids in a single-channel "
                        "(grey or palette) PNG, not a colour rendering")
    return ids


def image_size(path) -> tuple:
    """(height, width) read from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, ValueError) as e:
        raise DarsError(f"{path}: image missing or unreadable ({e})") from e
    return height, width


def write_new_png(path, array) -> bool:
    """Write a label PNG unless the file exists (never overwrite); True if written."""
    if Path(path).exists():
        return False
    write_png(path, array)
    return True


def problems_error(what, problems, hint):
    """One error for everything a prepare run could not do, after it wrote all it could."""
    shown = "\n  ".join(problems[:10])
    if len(problems) > 10:
        shown += f"\n  ... and {len(problems) - 10} more"
    return DarsError(f"{what}: {len(problems)} problems\n  {shown}\n{hint}")
