"""PASCAL VOC 2012 with the SBD augmented labels ("train_aug", 10,582 train / 1,449 val images).

Val is ImageSets/Segmentation/val.txt, VOC 2012's 1,449 images. The authors' list
(CVMI-Lab/DARS data_split/voc_val.txt) also has 1,449 entries: `wc -l` counts 1,448 because its
last line has no newline. The authors' 1,464-image labeled list is the `dars` family's split 7
(dars.data.published).

Expected tree (root = the VOC2012 folder, e.g. VOCdevkit/VOC2012, with SegmentationClassAug added):

    <root>/JPEGImages/<id>.jpg                       e.g. 2007_000032.jpg
    <root>/SegmentationClassAug/<id>.png             single-channel class indices 0..20, 255 = boundary
    <root>/ImageSets/Segmentation/train_aug.txt      train ids (train.txt is used when it is absent)
    <root>/ImageSets/Segmentation/val.txt

List lines are ids (`2007_000032`) or `JPEGImages/<id>.jpg SegmentationClassAug/<id>.png` pairs
(leading slashes allowed), as the common train_aug lists are written. Labels already are train
ids, so nothing needs preparing. VOC's own SegmentationClass/ PNGs are palette images that
OpenCV decodes to colours; they are rejected with a pointer to SegmentationClassAug.
"""
from pathlib import Path

from PIL import Image

from ..classes import VOC_CLASSES, voc_palette
from ..io import DarsError, atomic_path
from .labelmaps import check_train_ids
from .lists import read_ids
from .pairing import check_paired

TREE = "JPEGImages/<id>.jpg, SegmentationClassAug/<id>.png, ImageSets/Segmentation/{train_aug,val}.txt"
CLASSES = VOC_CLASSES
prepare = None  # the aug labels ship as train ids: nothing to write
find_images = None  # VOC 2012's test labels are held back; dars lists no test split of it
check_label_space = None  # one label id space (class indices)
IMAGES = "JPEGImages"
LABELS = "SegmentationClassAug"
LISTS = Path("ImageSets") / "Segmentation"
LIST_FILES = {"train": ("train_aug.txt", "train.txt")}


def check_root(root):
    root = Path(root)
    if not (root / IMAGES).is_dir() or not (root / LABELS).is_dir():
        hint = (f"; {root / 'SegmentationClass'} holds VOC's colour-palette labels, use the "
                f"{LABELS} index PNGs (SBD-augmented) instead"
                if (root / "SegmentationClass").is_dir() else "")
        raise DarsError(f"{root}: not a VOC 2012 aug root; expected folders {IMAGES}/, {LABELS}/ and "
                        f"{LISTS}/{{train_aug,val}}.txt{hint}")
    return root


def _list_path(root, split):
    candidates = [root / LISTS / name for name in LIST_FILES.get(split, (f"{split}.txt",))]
    for path in candidates:
        if path.is_file():
            return path
    raise DarsError(f"{candidates[0]}: VOC image list for split {split!r} missing (looked for "
                    f"{', '.join(str(p) for p in candidates)})")


def check_label(path):
    """A VOC aug label must be a single-channel map of the 21 class ids and 255."""
    import cv2  # here, not at the top: the plan imports the layouts and decodes no label
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DarsError(f"{path}: label map missing or unreadable")
    if label.ndim != 2:
        raise DarsError(f"{path}: a colour/palette label ({label.shape[-1]} channels after decoding), "
                        f"like VOC's original SegmentationClass PNGs; use the {LABELS} single-channel "
                        "index PNGs (SBD-augmented VOC) instead")
    check_train_ids(path, label, CLASSES.num_classes)


def image_id(image_rel):
    """`2007_000032` of JPEGImages/2007_000032.jpg: the file stem."""
    return Path(image_rel).stem


def label_path(image_rel):
    """JPEGImages/<id>.jpg -> SegmentationClassAug/<id>.png"""
    return f"{LABELS}/{Path(image_rel).stem}.png"


def images_with_id(root, iid):
    """JPEGImages/<id>.jpg, where it exists."""
    rel = f"{IMAGES}/{iid}.jpg"
    return [rel] if (Path(root) / rel).is_file() else []


def find_pairs(root, split):
    """Sorted (JPEGImages/<id>.jpg, SegmentationClassAug/<id>.png) pairs of a split."""
    root = check_root(root)
    list_path = _list_path(root, split)
    ids = set(read_ids(list_path))  # `<id>` or `/JPEGImages/<id>.jpg ...` lines
    if not ids:
        raise DarsError(f"{list_path}: image list is empty")
    pairs, images_alone, labels_alone = [], [], []
    for iid in sorted(ids):
        img = f"{IMAGES}/{iid}.jpg"
        lab = label_path(img)
        has_image, has_label = (root / img).is_file(), (root / lab).is_file()
        if has_image and has_label:
            pairs.append((img, lab))
        elif has_image:
            images_alone.append(img)
        elif has_label:
            labels_alone.append(lab)
        else:
            raise DarsError(f"{root / img}: image of {iid} (listed in {list_path}) missing, and its label too")
    check_paired(pairs, labels_alone, images_alone, f"{list_path}", root / IMAGES, root / LABELS)
    # Decoding all ~10k labels on every call is too slow; the ends catch a wrong label folder.
    for _, lab in {pairs[0], pairs[-1]}:
        check_label(root / lab)
    return pairs


def write_prediction(out, image_rel, train_ids, classes):
    """index/<id>.png: a palette PNG, like VOC's SegmentationClass: the indices are the classes and
    it views in colour; returns the prediction's path under `out`."""
    pred = f"index/{image_id(image_rel)}.png"
    img = Image.fromarray(train_ids)
    img.putpalette(voc_palette(256).tobytes())
    with atomic_path(out / pred, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return pred


EXPORT = ("index", write_prediction)  # what the prediction PNGs hold, their writer (dars.export)
