"""Registry of the dataset layouts the pipeline reads.

Every layout obeys one contract: a dataset is a root directory plus
`find_pairs(root, split) -> sorted [(image_rel, label_rel)]`, paths relative to the root, where
each label is a single-channel uint8 PNG of train ids (0..C-1, 255 = ignore). Layouts that ship
labels in another id space have a `prepare(root)` that writes train-id PNGs once into the tree
(never overwriting a file) and a `find_pairs` that says which command to run when it is missing.

A layout is its module (dars.data.cityscapes, gta5, scannet, voc), and every module has the same
names: `TREE` (what the root must hold, for messages), `CLASSES` (its dars.classes.ClassSet),
`check_root(root)`, `find_pairs(root, split)`, `label_path(image_rel)` (the train-id label an
image pairs with), `images_with_id(root, image_id)`, `image_id(image_rel)`, `prepare(root)` (None
where labels ship as train ids), `find_images(root, split)` (its images-only listing, test split
included; None where it has no test split), `check_label_space(root, label_space)` (None where
labels ship in one id space) and `EXPORT` (the format of its exported predictions: what the PNGs
hold, their writer). Path rules live only in a layout's module; other code reaches them through
this registry, by layout name. The helpers the modules share are dars.data.labelmaps'.
"""
from pathlib import Path

from ..io import DarsError
from . import cityscapes, gta5, scannet, voc

DEFAULT_LAYOUT = "cityscapes"  # of a dataset, split or command that names none

LAYOUTS = {"cityscapes": cityscapes, "gta5": gta5, "scannet": scannet, "voc": voc}


def layout(name):
    """The module of a dataset layout; a clear error for an unknown one."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise DarsError(f"unknown dataset layout {name!r}; known layouts: {', '.join(sorted(LAYOUTS))}") \
            from None


def class_set(name):
    """The class set (dars.classes.ClassSet) of a dataset layout."""
    return layout(name).CLASSES


def label_path(name, image_rel) -> str:
    """The train-id label (relative to the root) that pairs with an image of the layout."""
    return layout(name).label_path(image_rel)


def images_with_id(name, root, image_id) -> list:
    """Sorted images (relative to the root, of any split) whose id (the layout's image_id) is
    `image_id`: one in a well-formed tree, none when it is not there."""
    return layout(name).images_with_id(Path(root), image_id)


def image_id(image_rel) -> str:
    """A unique, readable id of an image of any layout; it names pseudo-label files and seeds
    sampling. The first layout whose rule reads more than the file stem gives it, else the stem:

    Cityscapes `leftImg8bit/train/aachen/aachen_000005_000019_leftImg8bit.png` -> `aachen_000005_000019`
    (existing results depend on it); GTA5 `images/00001.png` -> `00001`; VOC
    `JPEGImages/2007_000032.jpg` -> `2007_000032`; ScanNet frame names repeat in every scene, so
    `scannet_frames_25k/scene0000_00/color/000100.jpg` -> `scene0000_00_000100`."""
    stem = Path(image_rel).stem
    for module in LAYOUTS.values():
        iid = module.image_id(image_rel)
        if iid != stem:
            return iid
    return stem


def recognise(root):
    """The name of the first layout whose folders `root` holds, or None."""
    for name, module in LAYOUTS.items():
        try:
            if Path(root).is_dir() and module.check_root(Path(root)):
                return name
        except DarsError:
            continue
    return None


def check_root(name, root) -> Path:
    """The root as a Path; a clear error naming the root and the folders its layout needs."""
    module = layout(name)
    root = Path(root)
    if not root.is_dir():
        raise DarsError(f"{root}: {name} dataset root does not exist; it must hold {module.TREE}")
    return module.check_root(root)


def find_pairs(name, root, split):
    """Sorted (image_rel, label_rel) pairs of one split; labels are train-id PNGs."""
    check_root(name, root)
    return layout(name).find_pairs(Path(root), split)


def find_images(name, root, split):
    """Sorted image paths (relative to the root) of one split, without requiring labels: the
    test split's labels are missing or, in Cityscapes, all void. A layout without an images-only
    listing has no test split; its other splits are the images of find_pairs."""
    module = layout(name)
    check_root(name, root)
    if module.find_images is not None:
        return module.find_images(Path(root), split)
    if split == "test":
        raise DarsError(f"{root}: the {name} layout has no {split!r} split (dars lists test images of the "
                        "cityscapes layout only); use split 'val' instead")
    return [image for image, _ in find_pairs(name, root, split)]


def prepare(name, root, label_space=None) -> int:
    """Write the train-id labels a layout needs (`python -m dars prepare <layout> <root>`);
    returns the number of files written (0 for layouts that ship train ids). `label_space`: the
    id space of the source labels, for the layouts that ship more than one (scannet)."""
    module = layout(name)
    root = check_root(name, root)
    if label_space is not None and module.check_label_space is None:
        raise DarsError(f"--label-space: the {name} layout ships labels in one id space only; drop the option")
    if module.prepare is None:
        return 0
    options = {} if label_space is None else {"label_space": label_space}
    return module.prepare(root, **options)


def check_dataset_labels(name, root, dataset):
    """At plan time: a layout with several label id spaces was prepared from the one the dataset
    declares (config key datasets.<name>.label_space)."""
    module = layout(name)
    if module.check_label_space is not None:
        module.check_label_space(root, dataset.get("label_space"))


def add_arguments(parser):
    parser.add_argument("layout", choices=list(LAYOUTS))
    parser.add_argument("root")
    parser.add_argument("--label-space", choices=scannet.LABEL_SPACES,
                        help="scannet: id space of label/*.png (default nyu40, the scannet_frames_25k download; "
                             "raw: the per-scan *_2d-label zips)")


def main(args):
    print(f"wrote {prepare(args.layout, args.root, args.label_space)} train-id label files")


COMMANDS = {"prepare": (add_arguments, main)}
