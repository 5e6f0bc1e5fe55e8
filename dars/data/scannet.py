"""ScanNet v2 2D frames (the `scannet_frames_25k` subset of the 2D semantic label benchmark).

Expected tree (the tsv and scene lists come with ScanNet; put or link them beside the frames):

    <root>/scannetv2-labels.combined.tsv        columns `id` (raw ScanNet id) and `nyu40id`
    <root>/scannetv2_train.txt                  scene names (scene0000_00 ...), one a line
    <root>/scannetv2_val.txt
    <root>/scannet_frames_25k/<scene>/color/<frame>.jpg   RGB frames (000000.jpg, 000100.jpg ...)
    <root>/scannet_frames_25k/<scene>/label/<frame>.png   raw ScanNet ids, 16-bit (or 8-bit) PNG

Other folders of a scene (depth/, pose/, instance/, intrinsics) are ignored.

`prepare` maps raw id -> nyu40id (the tsv) -> the 20 benchmark train ids (dars.classes; raw ids
not in the tsv, 0 = unannotated, and NYU40 classes outside the 20 become 255) and writes
`<scene>/label20/<frame>.png` (uint8). The pipeline needs image and label of equal size, and the
color frames can be larger than the labels (1296x968 vs 640x480): then prepare also writes the
frame shrunk to the label size (area interpolation, JPEG quality 95) to
`<scene>/color_resized/<frame>.jpg`, and find_pairs pairs that image with the label. We shrink
the image rather than enlarge the label, so the ground truth keeps its own resolution and no
label pixels are invented. The resized image is written before the label, so a label in
label20/ means its frame is fully prepared.

Frame names repeat in every scene; image ids are `<scene>_<frame>` (dars.data.lists.image_id, by frame_id below).
"""
import csv
from pathlib import Path

import cv2
import numpy as np

from ..classes import IGNORE, NYU40_TO_SCANNET_TRAINID
from ..io import DarsError, atomic_path, read_image
from . import lists
from .layouts import LabelProblem, image_size, prepare_command, write_labels

FRAMES = "scannet_frames_25k"
TSV = "scannetv2-labels.combined.tsv"
COLOR, LABEL, TRAIN_IDS, RESIZED = "color", "label", "label20", "color_resized"
JPEG_QUALITY = 95


def check_root(root):
    root = Path(root)
    if not (root / FRAMES).is_dir():
        raise DarsError(f"{root}: not a ScanNet 2D root; expected {FRAMES}/<scene>/color/*.jpg and "
                        f"label/*.png, with {TSV} and scannetv2_{{train,val}}.txt beside it")
    return root


def raw_to_train_ids(tsv_path) -> np.ndarray:
    """A 65536-entry lookup table raw ScanNet id -> train id, from the label tsv."""
    tsv_path = Path(tsv_path)
    if not tsv_path.is_file():
        raise DarsError(f"{tsv_path}: ScanNet label table missing; it ships with ScanNet v2 "
                        "(scannetv2-labels.combined.tsv) and maps raw ids to NYU40 ids")
    lut = np.full(65536, IGNORE, dtype=np.uint8)
    with open(tsv_path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in ("id", "nyu40id") if c not in (reader.fieldnames or [])]
        if missing:
            raise DarsError(f"{tsv_path}: no column {' or '.join(missing)} in the header "
                            f"{reader.fieldnames}; expected the tab-separated ScanNet label table")
        for row in reader:
            raw, nyu40 = (row["id"] or "").strip(), (row["nyu40id"] or "").strip()
            if not nyu40:
                continue  # a raw label without an NYU40 class stays ignored
            try:
                raw, nyu40 = int(raw), int(nyu40)
            except ValueError:
                raise DarsError(f"{tsv_path}:{reader.line_num}: id {raw!r} / nyu40id {nyu40!r} "
                                "are not integers") from None
            if 0 <= raw < lut.size and 0 <= nyu40 < NYU40_TO_SCANNET_TRAINID.size:
                lut[raw] = NYU40_TO_SCANNET_TRAINID[nyu40]
    return lut


def _scenes(root, split):
    list_path = root / f"scannetv2_{split}.txt"
    if not list_path.is_file():
        raise DarsError(f"{list_path}: ScanNet scene list for split {split!r} missing (it ships with "
                        "ScanNet v2: scannetv2_train.txt, scannetv2_val.txt)")
    return sorted(set(lists.read_ids(list_path)))


def _is_scene(name):
    """A ScanNet scene folder name such as scene0000_00."""
    return len(name) == 12 and name.startswith("scene") and name[5:9].isdigit() and name[9] == "_" \
        and name[10:].isdigit()


def frame_id(image_rel):
    """`scene0000_00_000100` of `.../scene0000_00/color/000100.jpg` (frame names repeat in every
    scene); None for an image outside a scene folder."""
    path = Path(image_rel)
    scene = path.parts[-3] if len(path.parts) >= 3 else ""
    return f"{scene}_{path.stem}" if _is_scene(scene) else None


def label_path(image_rel):
    """<scene>/color/<frame>.jpg (or color_resized/) -> <scene>/label20/<frame>.png"""
    path = Path(image_rel)
    return f"{path.parent.parent.as_posix()}/{TRAIN_IDS}/{path.stem}.png"


def images_with_id(root, iid):
    """The image of frame `<scene>_<frame>`, where it exists."""
    scene, frame = iid[:12], iid[13:]
    if not _is_scene(scene) or iid[12:13] != "_":
        return []
    rel = _color_rel(Path(root), scene, frame)
    return [rel] if (Path(root) / rel).is_file() else []


def _color_rel(root, scene, frame):
    """The frame's image: the one shrunk to label size when prepare made it, else the original."""
    resized = f"{FRAMES}/{scene}/{RESIZED}/{frame}.jpg"
    return resized if (root / resized).is_file() else f"{FRAMES}/{scene}/{COLOR}/{frame}.jpg"


def find_pairs(root, split):
    """Sorted (image, label20/<frame>.png) pairs of the scenes listed for a split."""
    root = check_root(root)
    pairs, unprepared = [], 0
    for scene in _scenes(root, split):
        for color in sorted((root / FRAMES / scene / COLOR).glob("*.jpg")):
            frame = color.stem
            lab = label_path(color.relative_to(root))
            if not (root / lab).is_file():
                raw = root / FRAMES / scene / LABEL / f"{frame}.png"
                if not raw.is_file():
                    raise DarsError(f"{raw}: ground truth missing for {color.relative_to(root)}")
                unprepared += 1
                continue
            pairs.append((_color_rel(root, scene, frame), lab))
    if unprepared:
        raise DarsError(f"{root / FRAMES}: {unprepared} frames of split {split!r} have raw ScanNet labels "
                        f"but no {TRAIN_IDS}/ train-id copy. Create them once with "
                        f"`{prepare_command('scannet', root)}`")
    if not pairs:
        raise DarsError(f"{root / FRAMES}: no frames of the scenes in scannetv2_{split}.txt found")
    return sorted(pairs)


def _read_raw_label(path):
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # keeps 16 bits
    if raw is None:
        raise DarsError(f"{path}: label map missing or unreadable")
    if raw.ndim != 2 or raw.dtype not in (np.uint8, np.uint16):
        raise DarsError(f"{path}: expected a single-channel 8- or 16-bit raw-id PNG, got shape "
                        f"{raw.shape} {raw.dtype}")
    return raw


def _write_resized(out, color_path, size):
    if out.exists():
        return  # an earlier, interrupted run made it
    h, w = size
    image = cv2.resize(read_image(color_path), (w, h), interpolation=cv2.INTER_AREA)
    with atomic_path(out, suffix=".jpg") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise DarsError(f"{out}: could not write JPEG")


def prepare(root):
    """Write label20/<frame>.png (and color_resized/<frame>.jpg where sizes differ) for every raw
    label of every scene; returns the number of labels written. Frames without a color image are
    reported together after all others were written."""
    root = check_root(root)
    raw_labels = sorted((root / FRAMES).glob(f"*/{LABEL}/*.png"))
    if not raw_labels:
        raise DarsError(f"{root / FRAMES}: no raw labels (<scene>/{LABEL}/*.png) found")
    lut = raw_to_train_ids(root / TSV)  # only after the cheap checks: a clear error comes first

    def train_ids(raw_path):
        scene_dir, frame = raw_path.parent.parent, raw_path.stem
        color = scene_dir / COLOR / f"{frame}.jpg"
        if not color.is_file():
            raise LabelProblem(f"{color}: color frame missing for {raw_path.relative_to(root)}")
        raw = _read_raw_label(raw_path)
        if image_size(color) != raw.shape:
            _write_resized(scene_dir / RESIZED / f"{frame}.jpg", color, raw.shape)
        return lut[raw]
    jobs = [(p.parent.parent / TRAIN_IDS / f"{p.stem}.png", p) for p in raw_labels]
    return write_labels(jobs, train_ids, lambda n: f"{root}: ScanNet prepare wrote {n} labels",
                        "Restore the missing frames (or remove their labels) and run prepare again")
