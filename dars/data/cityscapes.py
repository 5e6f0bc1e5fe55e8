"""Cityscapes layout: its path rules (leftImg8bit/ images, gtFine/ labels), pairs of a split, prepare
(trainIds from labelIds) and the official prediction format (labelIds)."""
from pathlib import Path

from ..classes import CITYSCAPES_CLASSES, label_ids_to_train_ids, train_ids_to_label_ids
from ..io import DarsError, read_label, write_png
from .labelmaps import write_labels
from .pairing import check_paired

TREE = "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png"
CLASSES = CITYSCAPES_CLASSES
IMAGE_SUFFIX = "_leftImg8bit.png"
TRAINIDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABELIDS_SUFFIX = "_gtFine_labelIds.png"
check_label_space = None  # one label id space (labelIds)


def image_id(image_rel: str) -> str:
    """`aachen_000005_000019` of `.../aachen_000005_000019_leftImg8bit.png` (existing results
    depend on it); the file stem of another file name."""
    name = Path(image_rel).name
    return name[: -len(IMAGE_SUFFIX)] if name.endswith(IMAGE_SUFFIX) else Path(image_rel).stem


def label_path(image_rel: str, suffix=TRAINIDS_SUFFIX) -> str:
    """leftImg8bit/<split>/<city>/<id>_leftImg8bit.png -> gtFine/<split>/<city>/<id><suffix>."""
    p = Path(image_rel)
    parts = ("gtFine",) + p.parts[1:-1] + (image_id(image_rel) + suffix,)
    return str(Path(*parts))


def images_with_id(root, iid):
    """Sorted images (relative to root) of any split whose id is `iid`."""
    return [str(p.relative_to(root)) for p in sorted(Path(root).glob(f"leftImg8bit/*/*/{iid}{IMAGE_SUFFIX}"))]


def check_root(root):
    root = Path(root)
    if not (root / "leftImg8bit").is_dir():
        raise DarsError(f"{root}: dataset root has no leftImg8bit/ folder; set `datasets.<name>.root` in the config "
                        "(config.yaml or --configfile) to a directory in Cityscapes layout (leftImg8bit/, gtFine/)")
    return root


def _labels_by_image(root, split):
    """{image key (city, id): a label file of it (train ids or label ids)} of a split."""
    labels = {}
    for suffix in (LABELIDS_SUFFIX, TRAINIDS_SUFFIX):  # train ids win: they are what pairs
        for lab in (root / "gtFine" / split).glob(f"*/*{suffix}"):
            labels[(lab.parent.name, lab.name[: -len(suffix)])] = str(lab.relative_to(root))
    return labels


def find_pairs(root, split):
    """Sorted (image, label) pairs, relative to root, of one split (train/val). Images and labels
    are compared both ways: either without the other is an error (dars.data.pairing)."""
    root = check_root(root)
    images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"))
    labels = _labels_by_image(root, split)
    if not images and not labels:
        raise DarsError(f"{root / 'leftImg8bit' / split}: no *{IMAGE_SUFFIX} images found")
    pairs, images_alone = [], []
    missing_trainids = 0
    for img in images:
        rel = str(img.relative_to(root))
        lab = label_path(rel)
        if (root / lab).is_file():
            pairs.append((rel, lab))
        elif (root / label_path(rel, LABELIDS_SUFFIX)).is_file():
            missing_trainids += 1
        else:
            images_alone.append(rel)
    unprepared = DarsError(
        f"{root / 'gtFine' / split}: {missing_trainids} images have *{LABELIDS_SUFFIX} but no "
        f"*{TRAINIDS_SUFFIX} (Cityscapes does not ship them). Create them once with "
        f"`python -m dars prepare cityscapes {root}` (or cityscapesscripts' csCreateTrainIdLabelImgs)"
    ) if missing_trainids else None
    image_keys = {(img.parent.name, img.name[: -len(IMAGE_SUFFIX)]) for img in images}
    labels_alone = [lab for key, lab in labels.items() if key not in image_keys]
    return check_paired(pairs, labels_alone, images_alone, f"{root} (split {split})",
                        root / "leftImg8bit" / split, root / "gtFine" / split, also=unprepared)


def find_images(root, split):
    """Sorted images, relative to root, of one split (test included), whatever labels exist."""
    root = check_root(root)
    images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise DarsError(f"{root / 'leftImg8bit' / split}: no *{IMAGE_SUFFIX} images found (split {split!r} "
                        f"of dataset root {root})")
    return [str(img.relative_to(root)) for img in images]


def prepare(root):
    """Write *_labelTrainIds.png beside every *_labelIds.png that lacks one; returns the count written."""
    root = check_root(root)
    jobs = [(lab.with_name(lab.name[: -len(LABELIDS_SUFFIX)] + TRAINIDS_SUFFIX), lab)
            for lab in sorted((root / "gtFine").glob(f"*/*/*{LABELIDS_SUFFIX}"))]
    # never overwrites what the user (or cityscapesscripts) made
    return write_labels(jobs, lambda lab: label_ids_to_train_ids(read_label(lab)))


def write_prediction(out, image_rel, train_ids, classes):
    """labelIds/<city>/<id>_pred_labelIds.png (the official evaluator's and benchmark server's ids),
    and color/<city>/<id>_pred_color.png for viewing; returns the prediction's path under `out`."""
    city, iid = Path(image_rel).parent.name, image_id(image_rel)
    pred = f"labelIds/{city}/{iid}_pred_labelIds.png"
    write_png(out / pred, train_ids_to_label_ids(train_ids))
    write_png(out / "color" / city / f"{iid}_pred_color.png", classes.colorize(train_ids), rgb=True)
    return pred


EXPORT = ("labelIds", write_prediction)  # what the prediction PNGs hold, their writer (dars.export)
