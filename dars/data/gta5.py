"""GTA5 ("Playing for Data"), the synthetic source domain of GTA5 -> Cityscapes.

Expected tree (as downloaded; the CyCADA-translated images keep the same names):

    <root>/images/00001.png ... 24966.png    RGB frames, mostly 1914x1052
    <root>/labels/00001.png ...              Cityscapes labelIds, as palette (or grey) PNGs
    <root>/train.txt, <root>/val.txt         optional: image ids, one per line (`00001` or
                                             `images/00001.png`)

`prepare` writes `<root>/labels_trainIds/<id>.png` (uint8 train ids, 255 = ignore) for every
label lacking one. GTA5 has no official train/val split in this layout and serves only as the
source domain, so without list files split "train" is every image and any other split is an
error (evaluate on the Cityscapes val set instead). A `<root>/<split>.txt` list, when present,
defines that split (train included), and `prepare` then covers exactly the listed images, which
is also how to leave out frames whose label size does not match the image.
"""
from functools import partial
from pathlib import Path

from ..classes import GTA5_CLASSES, label_ids_to_train_ids
from ..io import DarsError
from .labelmaps import (
    LabelProblem,
    image_size,
    prepare_command,
    read_index_label,
    write_labels,
    write_train_id_prediction,
)
from .lists import read_ids
from .pairing import check_paired

TREE = "images/<id>.png and labels/<id>.png (Cityscapes labelIds)"
CLASSES = GTA5_CLASSES
find_images = None  # no test split: it is only the source domain
check_label_space = None  # one label id space (Cityscapes labelIds)
IMAGES = "images"
LABELS = "labels"
TRAIN_IDS = "labels_trainIds"
IMAGE_EXTS = (".png", ".jpg")


def check_root(root):
    root = Path(root)
    if not (root / IMAGES).is_dir() or not ((root / LABELS).is_dir() or (root / TRAIN_IDS).is_dir()):
        raise DarsError(f"{root}: not a GTA5 root; expected folders {IMAGES}/ (00001.png ...) and "
                        f"{LABELS}/ (Cityscapes labelIds PNGs of the same names)")
    return root


def _all_images(root):
    images = {}
    for ext in IMAGE_EXTS:
        for path in (root / IMAGES).glob(f"*{ext}"):
            images.setdefault(path.stem, path.name)
    return images


def image_id(image_rel):
    """`00001` of images/00001.png: the file stem."""
    return Path(image_rel).stem


def label_path(image_rel):
    """images/<id>.png -> labels_trainIds/<id>.png"""
    return f"{TRAIN_IDS}/{Path(image_rel).stem}.png"


def images_with_id(root, iid):
    """images/<id>.png (or .jpg), where it exists."""
    return sorted(f"{IMAGES}/{iid}{ext}" for ext in IMAGE_EXTS if (Path(root) / IMAGES / f"{iid}{ext}").is_file())


def _split_images(root, split):
    """{id: image file name} of a split."""
    images = _all_images(root)
    if not images:
        raise DarsError(f"{root / IMAGES}: no GTA5 images (*.png) found")
    list_path = root / f"{split}.txt"
    if list_path.is_file():
        ids = read_ids(list_path)
        if not ids:
            raise DarsError(f"{list_path}: split list is empty")
        missing = [i for i in ids if i not in images]
        if missing:
            raise DarsError(f"{list_path}: {len(missing)} listed images are not in {root / IMAGES}, "
                            f"e.g. {missing[0]}")
        return {i: images[i] for i in ids}
    if split == "train":
        return images
    raise DarsError(f"{root}: GTA5 has no {split!r} split: it is only the source domain (evaluate on "
                    f"the Cityscapes val set), or list its image ids in {list_path}")


def find_pairs(root, split):
    """Sorted (images/<id>.png, labels_trainIds/<id>.png) pairs of a split. Images and labels are
    compared both ways (dars.data.pairing); without a list file every label of labels/ (or
    labels_trainIds/) needs its image too."""
    root = check_root(root)
    split_images = _split_images(root, split)
    pairs, unprepared, images_alone = [], 0, []
    for iid, name in sorted(split_images.items()):
        lab = label_path(name)
        if (root / lab).is_file():
            pairs.append((f"{IMAGES}/{name}", lab))
        elif (root / LABELS / f"{iid}.png").is_file():
            unprepared += 1
        else:
            images_alone.append(f"{IMAGES}/{name}")
    labels_alone = []
    if not (root / f"{split}.txt").is_file():  # a list file's split is its ids; other labels are other splits
        labels_alone = sorted({f"{folder}/{p.name}" for folder in (LABELS, TRAIN_IDS)
                               for p in (root / folder).glob("*.png") if p.stem not in split_images})
    unprepared_error = DarsError(f"{root / TRAIN_IDS}: {unprepared} GTA5 labels have no train-id copy (GTA5 "
                                 f"ships Cityscapes labelIds). Create them once with "
                                 f"`{prepare_command('gta5', root)}`") if unprepared else None
    return check_paired(pairs, labels_alone, images_alone, f"{root} (split {split})", root / IMAGES, root / LABELS,
                        also=unprepared_error)


def _prepare_ids(root):
    """The images prepare covers: those of every split list, and all images while no train.txt
    restricts split "train"."""
    chosen = {} if (root / "train.txt").is_file() else _all_images(root)
    for split in ("train", "val", "test"):
        if (root / f"{split}.txt").is_file():
            chosen.update(_split_images(root, split))
    return chosen


def _train_ids(root, item):
    """The train-id map of one (id, image name), or the LabelProblem that stops it."""
    iid, name = item
    src = root / LABELS / f"{iid}.png"
    if not src.is_file():
        raise LabelProblem(f"{src}: label missing for {IMAGES}/{name}")
    label_ids = read_index_label(src)
    size = image_size(root / IMAGES / name)
    if label_ids.shape != size:
        raise LabelProblem(f"{src}: label is {label_ids.shape[1]}x{label_ids.shape[0]} but "
                           f"{IMAGES}/{name} is {size[1]}x{size[0]}")
    if label_ids.max(initial=0) > 255:
        raise LabelProblem(f"{src}: ids above 255; not a Cityscapes labelIds map")
    return label_ids_to_train_ids(label_ids.astype("uint8"))


def prepare(root):
    """Write labels_trainIds/<id>.png from labels/<id>.png (labelIds); returns the count written.

    Frames whose label is missing or differs in size from the image are reported together in one
    error, after every other label has been written, so a rerun only redoes what failed."""
    root = check_root(root)
    jobs = [(root / label_path(name), (iid, name)) for iid, name in sorted(_prepare_ids(root).items())]
    return write_labels(jobs, partial(_train_ids, root), lambda n: f"{root}: GTA5 prepare wrote {n} labels",
                        f"The pipeline needs a label of the image's size for every frame: fix these "
                        f"files, or list the frames to use in {root}/train.txt (one id a line) and "
                        "run prepare again")


def write_prediction(out, image_rel, train_ids, classes):
    """trainIds/<id>.png (GTA5 has no benchmark format) and color/<id>.png."""
    return write_train_id_prediction(out, image_id(image_rel), train_ids, classes)


EXPORT = ("trainIds", write_prediction)  # what the prediction PNGs hold, their writer (dars.export)
