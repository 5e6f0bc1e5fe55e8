"""Registry of the dataset layouts the pipeline reads, and helpers they share.

Every layout obeys one contract: a dataset is a root directory plus
`find_pairs(root, split) -> sorted [(image_rel, label_rel)]`, paths relative to the root, where
each label is a single-channel uint8 PNG of train ids (0..C-1, 255 = ignore). Layouts that ship
labels in another id space have a `prepare(root)` that writes train-id PNGs once into the tree
(never overwriting a file) and a `find_pairs` that says which command to run when it is missing.

Path rules live only in a layout's module; other code reaches them through this registry:
`label_path(name, image_rel)` (the train-id label an image pairs with), `images_with_id(name,
root, image_id)`, `find_images`, `recognise(root)` (the layout of a tree) and `class_set(name)`.

Layout modules are imported lazily: they import the helpers below, and a registry that imported
them at load time would make that circular.
"""
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import CITYSCAPES_CLASSES, GTA5_CLASSES, IGNORE, SCANNET_CLASSES, VOC_CLASSES, ClassSet
from ..io import DarsError, write_png

DEFAULT_LAYOUT = "cityscapes"  # of a dataset, split or command that names none


@dataclass(frozen=True)
class Layout:
    name: str
    module: str          # dars.data.<module>
    find: str            # its find_pairs function
    check: str           # its check_root function
    prepare: str | None  # its prepare function; None when labels ship as train ids
    tree: str            # what the root must hold, for messages and docs
    classes: ClassSet    # names and colours of its train ids
    label: str           # its image -> train-id label path rule
    ids: str             # its image id -> images rule
    images: str | None = None  # its images-only listing (no labels needed); None: no test split
    label_spaces: str | None = None  # its check of datasets.<name>.label_space; None: one id space

    def function(self, attr):
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), attr)


LAYOUTS = {
    "cityscapes": Layout("cityscapes", "cityscapes", "find_pairs", "check_root", "prepare_train_ids",
                         "leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
                         "gtFine/<split>/<city>/*_gtFine_labelIds.png", CITYSCAPES_CLASSES,
                         "label_path_for", "images_with_id", images="find_images"),
    "gta5": Layout("gta5", "gta5", "find_pairs", "check_root", "prepare",
                   "images/<id>.png and labels/<id>.png (Cityscapes labelIds)", GTA5_CLASSES,
                   "label_path", "images_with_id"),
    "scannet": Layout("scannet", "scannet", "find_pairs", "check_root", "prepare",
                      "scannet_frames_25k/<scene>/{color/<frame>.jpg,label/<frame>.png}, "
                      "scannetv2-labels.combined.tsv, scannetv2_{train,val}.txt", SCANNET_CLASSES,
                      "label_path", "images_with_id", label_spaces="check_label_space"),
    "voc": Layout("voc", "voc", "find_pairs", "check_root", None,
                  "JPEGImages/<id>.jpg, SegmentationClassAug/<id>.png, "
                  "ImageSets/Segmentation/{train_aug,val}.txt", VOC_CLASSES,
                  "label_path", "images_with_id"),
}


def layout(name) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise DarsError(f"unknown dataset layout {name!r}; known layouts: {', '.join(sorted(LAYOUTS))}") \
            from None


def class_set(name) -> ClassSet:
    """The class set of a dataset layout; a clear error for an unknown one."""
    return layout(name).classes


def label_path(name, image_rel) -> str:
    """The train-id label (relative to the root) that pairs with an image of the layout."""
    lay = layout(name)
    return lay.function(lay.label)(image_rel)


def images_with_id(name, root, image_id) -> list:
    """Sorted images (relative to the root, of any split) whose dars.data.lists.image_id is
    `image_id`: one in a well-formed tree, none when it is not there."""
    lay = layout(name)
    return lay.function(lay.ids)(Path(root), image_id)


def recognise(root):
    """The name of the first layout whose folders `root` holds, or None."""
    for name, lay in LAYOUTS.items():
        try:
            if Path(root).is_dir() and lay.function(lay.check)(Path(root)):
                return name
        except DarsError:
            continue
    return None


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


def prepare(name, root, label_space=None) -> int:
    """Write the train-id labels a layout needs (`python -m dars prepare <layout> <root>`);
    returns the number of files written (0 for layouts that ship train ids). `label_space`: the
    id space of the source labels, for the layouts that ship more than one (scannet)."""
    lay = layout(name)
    root = check_root(name, root)
    if label_space is not None and lay.label_spaces is None:
        raise DarsError(f"--label-space: the {name} layout ships labels in one id space only; drop the option")
    if lay.prepare is None:
        return 0
    options = {} if label_space is None else {"label_space": label_space}
    return lay.function(lay.prepare)(root, **options)


def check_dataset_labels(name, root, dataset):
    """At plan time: a layout with several label id spaces was prepared from the one the dataset
    declares (config key datasets.<name>.label_space)."""
    lay = layout(name)
    if lay.label_spaces is not None:
        lay.function(lay.label_spaces)(root, dataset.get("label_space"))


def prepare_command(name, root, label_space=None) -> str:
    option = f" --label-space {label_space}" if label_space else ""
    return f"python -m dars prepare {name} {root}{option}"


def check_train_ids(path, label: np.ndarray, num_classes):
    """Error naming `path` if the train-id map holds ids outside 0..num_classes-1 and 255."""
    bad = np.unique(label[(label >= num_classes) & (label != IGNORE)])
    if bad.size:
        raise DarsError(f"{path}: holds ids {bad[:8].tolist()} outside the {num_classes} train ids "
                        f"0..{num_classes - 1} and 255 (ignore); is it in the source id space instead "
                        "of train ids?")


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


class LabelProblem(Exception):
    """A label prepare cannot write; reported with all the others once everything else is written."""


def write_labels(jobs, convert, what=None, hint=""):
    """Write `convert(source)`, a train-id map, to `out` for every (out, source) of `jobs` whose
    `out` does not exist yet (never overwriting what the user or an earlier run made); returns the
    number written. The LabelProblems `convert` raises make one error after every other label was
    written, so a rerun only redoes what failed; it starts with `what(written)` and ends with `hint`."""
    written, problems = 0, []
    for out, source in jobs:
        if Path(out).exists():
            continue
        try:
            label = convert(source)
        except LabelProblem as e:
            problems.append(str(e))
            continue
        write_png(out, label)
        written += 1
    if problems:
        shown = "\n  ".join(problems[:10])
        if len(problems) > 10:
            shown += f"\n  ... and {len(problems) - 10} more"
        raise DarsError(f"{what(written)}: {len(problems)} problems\n  {shown}\n{hint}")
    return written


def add_arguments(parser):
    parser.add_argument("layout", choices=list(LAYOUTS))
    parser.add_argument("root")
    parser.add_argument("--label-space", choices=["nyu40", "raw"],
                        help="scannet: id space of label/*.png (default nyu40, the scannet_frames_25k download; "
                             "raw: the per-scan *_2d-label zips)")


def main(args):
    print(f"wrote {prepare(args.layout, args.root, args.label_space)} train-id label files")


COMMANDS = {"prepare": (add_arguments, main)}
