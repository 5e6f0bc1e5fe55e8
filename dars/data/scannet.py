"""ScanNet v2 2D frames (the `scannet_frames_25k` subset of the 2D semantic label benchmark).

Expected tree (the tsv and scene lists come with ScanNet; put or link them beside the frames):

    <root>/scannet_frames_25k/<scene>/color/<frame>.jpg   RGB frames (000000.jpg, 000100.jpg ...)
    <root>/scannet_frames_25k/<scene>/label/<frame>.png   labels, in one of two id spaces (below)
    <root>/scannetv2_train.txt                  scene names (scene0000_00 ...), one a line
    <root>/scannetv2_val.txt
    <root>/scannetv2-labels.combined.tsv        columns `id` (raw ScanNet id) and `nyu40id`; only
                                                needed for raw labels

Other folders of a scene (depth/, pose/, instance/, intrinsics) are ignored.

Two label id spaces, never confused (`label_space`, the `--label-space` of prepare):
- `nyu40` (the default): the `scannet_frames_25k` download is ScanNet's pre-processed subset; its
  label PNGs are 8-bit NYUv2-40 ids (0 = unannotated, 1..40), the ids the 2D benchmark scores.
- `raw`: the per-scan `<scene>_2d-label(-filt).zip` images, 16-bit raw ScanNet ids, mapped to
  NYU40 through the tsv. NYU40 ids must never go through that table: NYU40 2 (floor) is raw id 2,
  which the table maps to NYU40 5 (chair).
prepare samples the label PNGs before writing anything (16-bit, or an id above 40, means raw;
8-bit with every id <= 40 means NYU40) and refuses a tree that contradicts the declared space.

`prepare` keeps the 20 benchmark classes (dars.classes; 0 and the other NYU40 classes become
255), writes `<scene>/label20/<frame>.png` (uint8) and records the space in
`scannet_frames_25k/label20.json`; train-id labels without that record (made before the record
existed, by a version that read NYU40 ids as raw ids) are refused. The pipeline needs image and
label of equal size, and the color frames are larger than the labels (1296x968 vs 640x480): then
prepare also writes the frame shrunk to the label size (area interpolation, JPEG quality 95) to
`<scene>/color_resized/<frame>.jpg`, and find_pairs pairs that image with the label. We shrink
the image rather than enlarge the label, so the ground truth keeps the benchmark's resolution and
no label pixels are invented. The resized image is written before the label, so a label in
label20/ means its frame is fully prepared.

Frame names repeat in every scene; image ids are `<scene>_<frame>` (image_id below), the names
the benchmark gives its ground truth and expects of predictions.

OpenCV is imported inside the functions that decode or write pixels: the plan imports every
layout (dars.data.layouts) and reads no pixel.
"""
import csv
from pathlib import Path

import numpy as np

from ..classes import IGNORE, NYU40_TO_SCANNET_TRAINID, SCANNET_CLASSES, SCANNET_NYU40_IDS
from ..io import DarsError, atomic_path, read_image, read_json, write_json, write_png
from . import lists
from .labelmaps import LabelProblem, image_size, prepare_command, write_labels

TREE = ("scannet_frames_25k/<scene>/{color/<frame>.jpg,label/<frame>.png}, "
        "scannetv2-labels.combined.tsv, scannetv2_{train,val}.txt")
CLASSES = SCANNET_CLASSES
find_images = None  # the benchmark's test scenes are not in this layout
FRAMES = "scannet_frames_25k"
TSV = "scannetv2-labels.combined.tsv"
COLOR, LABEL, TRAIN_IDS, RESIZED = "color", "label", "label20", "color_resized"
RECORD = "label20.json"      # scannet_frames_25k/label20.json: the id space label20/ was made from
LABEL_SPACES = ("nyu40", "raw")
DEFAULT_LABEL_SPACE = "nyu40"  # what the scannet_frames_25k download holds
NYU40_MAX = 40
SAMPLE = 32                  # label PNGs prepare looks at before writing anything
JPEG_QUALITY = 95
BENCHMARK_SIZE = (480, 640)  # (H, W) at which ScanNet's 2D evaluation compares


def check_root(root):
    root = Path(root)
    if not (root / FRAMES).is_dir():
        raise DarsError(f"{root}: not a ScanNet 2D root; expected {FRAMES}/<scene>/color/*.jpg and "
                        f"label/*.png, with scannetv2_{{train,val}}.txt beside it")
    return root


def raw_to_train_ids(tsv_path) -> np.ndarray:
    """A 65536-entry lookup table raw ScanNet id -> train id, from the label tsv."""
    tsv_path = Path(tsv_path)
    if not tsv_path.is_file():
        raise DarsError(f"{tsv_path}: ScanNet label table missing; raw label ids need it (it ships with "
                        "ScanNet v2 as scannetv2-labels.combined.tsv and maps raw ids to NYU40 ids)")
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


def nyu40_to_train_ids() -> np.ndarray:
    """A 65536-entry lookup table NYU40 id -> train id (ids above 40 never pass the checks)."""
    lut = np.full(65536, IGNORE, dtype=np.uint8)
    lut[:NYU40_TO_SCANNET_TRAINID.size] = NYU40_TO_SCANNET_TRAINID
    return lut


def train_ids_to_nyu40(train_ids: np.ndarray) -> np.ndarray:
    """Predicted train ids 0..19 as the benchmark's NYU40 ids (255 -> 0, unannotated)."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[:SCANNET_NYU40_IDS.size] = SCANNET_NYU40_IDS
    return lut[train_ids]


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


def image_id(image_rel):
    """`scene0000_00_000100` of `.../scene0000_00/color/000100.jpg` (frame names repeat in every
    scene); the file stem of an image outside a scene folder."""
    path = Path(image_rel)
    scene = path.parts[-3] if len(path.parts) >= 3 else ""
    return f"{scene}_{path.stem}" if _is_scene(scene) else path.stem


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


def prepared_label_space(root):
    """The id space label20/ was made from (scannet_frames_25k/label20.json), None before prepare;
    an error for train-id labels made without the record."""
    root = Path(root)
    record = root / FRAMES / RECORD
    if record.is_file():
        return read_json(record)["label_space"]
    made = next((root / FRAMES).glob(f"*/{TRAIN_IDS}/*.png"), None)
    if made is not None:
        raise DarsError(f"{made}: train-id labels without {record.name}: made by a dars version (before 0.2) "
                        "that read the NYU40 ids of scannet_frames_25k as raw ids and scrambled the classes. "
                        f"Delete them (`rm -r {root / FRAMES}/*/{TRAIN_IDS}`) and run "
                        f"`{prepare_command('scannet', root)}` again")
    return None


def check_label_space(root, label_space):
    """At plan time: the tree was prepared from the id space the dataset declares
    (datasets.<name>.label_space, default nyu40)."""
    made = prepared_label_space(root)
    declared = label_space or DEFAULT_LABEL_SPACE
    if made is None:
        raise DarsError(f"{Path(root) / FRAMES}: the labels are not prepared yet (no {RECORD}). Create the train-id "
                        f"labels once with `{prepare_command('scannet', root, label_space)}`")
    if made != declared:
        raise DarsError(f"{Path(root) / FRAMES / RECORD}: label20/ was prepared from {made} ids but the dataset "
                        f"declares label_space {declared!r}; set datasets.<name>.label_space: {made}, or delete "
                        f"the label20/ folders and prepare again with --label-space {declared}")


def find_pairs(root, split):
    """Sorted (image, label20/<frame>.png) pairs of the scenes listed for a split. A frame with a
    color image but no label, or a label but no color image, is an error naming the count."""
    root = check_root(root)
    prepared_label_space(root)
    pairs, unprepared, no_label, no_image = [], 0, [], []
    for scene in _scenes(root, split):
        scene_dir = root / FRAMES / scene
        colors = {p.stem for p in (scene_dir / COLOR).glob("*.jpg")}
        labels = {p.stem for p in (scene_dir / LABEL).glob("*.png")}
        no_label += [scene_dir / COLOR / f"{f}.jpg" for f in sorted(colors - labels)]
        no_image += [scene_dir / LABEL / f"{f}.png" for f in sorted(labels - colors)]
        for frame in sorted(colors & labels):
            lab = f"{FRAMES}/{scene}/{TRAIN_IDS}/{frame}.png"
            if not (root / lab).is_file():
                unprepared += 1
                continue
            pairs.append((_color_rel(root, scene, frame), lab))
    _check_complete(root, split, no_label, "color frames without a label", f"{LABEL}/<frame>.png")
    _check_complete(root, split, no_image, "labels without a color frame", f"{COLOR}/<frame>.jpg")
    if unprepared:
        raise DarsError(f"{root / FRAMES}: {unprepared} frames of split {split!r} have ScanNet labels "
                        f"but no {TRAIN_IDS}/ train-id copy. Create them once with "
                        f"`{prepare_command('scannet', root)}`")
    if not pairs:
        raise DarsError(f"{root / FRAMES}: no frames of the scenes in scannetv2_{split}.txt found")
    return sorted(pairs)


def _check_complete(root, split, orphans, what, expected):
    if orphans:
        raise DarsError(f"{root / FRAMES}: {len(orphans)} {what} in split {split!r}, e.g. {orphans[0]}; every "
                        f"frame needs both color/<frame>.jpg and label/<frame>.png (expected {expected}). "
                        "Restore the missing files, or remove the frame from both folders")


def _read_label(path):
    import cv2
    ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # keeps 16 bits
    if ids is None:
        raise DarsError(f"{path}: label map missing or unreadable")
    if ids.ndim != 2 or ids.dtype not in (np.uint8, np.uint16):
        raise DarsError(f"{path}: expected a single-channel 8- or 16-bit label PNG, got shape "
                        f"{ids.shape} {ids.dtype}")
    return ids


def _looks_like(ids):
    """What a label map's own bits say: raw for 16-bit or ids above 40, else nyu40."""
    return "raw" if ids.dtype == np.uint16 or int(ids.max(initial=0)) > NYU40_MAX else "nyu40"


def _describe(path, ids):
    return f"{path}: {ids.dtype.itemsize * 8}-bit PNG, largest id {int(ids.max(initial=0))}"


def _contradiction(path, ids, label_space):
    seen = _looks_like(ids)
    return (f"{_describe(path, ids)}, which means {seen} ids, but label_space is {label_space!r} "
            f"(8-bit with every id <= {NYU40_MAX} is NYU40, the scannet_frames_25k download; 16-bit or "
            f"ids above {NYU40_MAX} are raw ScanNet ids, the per-scan *_2d-label zips). Set "
            f"datasets.<name>.label_space: {seen} (python -m dars prepare scannet ROOT --label-space {seen})")


def detect_label_space(label_paths, label_space):
    """Refuse before anything is written when the sampled label PNGs contradict `label_space`."""
    step = max(1, len(label_paths) // SAMPLE)
    for path in label_paths[::step][:SAMPLE]:
        ids = _read_label(path)
        if _looks_like(ids) != label_space:
            raise DarsError(_contradiction(path, ids, label_space))


def _write_resized(out, color_path, size):
    import cv2
    if out.exists():
        return  # an earlier, interrupted run made it
    h, w = size
    image = cv2.resize(read_image(color_path), (w, h), interpolation=cv2.INTER_AREA)
    with atomic_path(out, suffix=".jpg") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise DarsError(f"{out}: could not write JPEG")


def _start_record(root, label_space):
    """Record the id space before the first label is written; refuse to mix spaces in one tree."""
    made = prepared_label_space(root)
    if made is not None and made != label_space:
        raise DarsError(f"{root / FRAMES / RECORD}: label20/ was prepared from {made} ids; preparing the rest "
                        f"from {label_space} ids would mix two mappings. Use --label-space {made}, or delete "
                        f"the label20/ folders and {RECORD} first")
    if made is None:
        write_json(root / FRAMES / RECORD, {"label_space": label_space, "train_ids": "ScanNet 20-class benchmark "
                                            "(NYU40 ids " + " ".join(map(str, SCANNET_NYU40_IDS)) + "), else 255"})


def prepare(root, label_space=None):
    """Write label20/<frame>.png (and color_resized/<frame>.jpg where sizes differ) for every label
    of every scene; returns the number of labels written. `label_space`: nyu40 (default) or raw.
    Frames without a color image, and labels contradicting the space, are reported together after
    all others were written."""
    root = check_root(root)
    label_space = label_space or DEFAULT_LABEL_SPACE
    if label_space not in LABEL_SPACES:
        raise DarsError(f"label_space {label_space!r}: choose one of {', '.join(LABEL_SPACES)}")
    labels = sorted((root / FRAMES).glob(f"*/{LABEL}/*.png"))
    if not labels:
        raise DarsError(f"{root / FRAMES}: no labels (<scene>/{LABEL}/*.png) found")
    detect_label_space(labels, label_space)
    lut = raw_to_train_ids(root / TSV) if label_space == "raw" else nyu40_to_train_ids()
    _start_record(root, label_space)

    def train_ids(label_path):
        scene_dir, frame = label_path.parent.parent, label_path.stem
        color = scene_dir / COLOR / f"{frame}.jpg"
        if not color.is_file():
            raise LabelProblem(f"{color}: color frame missing for {label_path.relative_to(root)}")
        ids = _read_label(label_path)
        if _looks_like(ids) != label_space:
            raise LabelProblem(_contradiction(label_path, ids, label_space))
        if image_size(color) != ids.shape:
            _write_resized(scene_dir / RESIZED / f"{frame}.jpg", color, ids.shape)
        return lut[ids]
    jobs = [(p.parent.parent / TRAIN_IDS / f"{p.stem}.png", p) for p in labels]
    return write_labels(jobs, train_ids, lambda n: f"{root}: ScanNet prepare wrote {n} labels",
                        "Restore the missing frames (or remove their labels), put a label named above in the declared "
                        "id space (or remove it), and run prepare again")


def write_prediction(out, image_rel, train_ids, classes):
    """The benchmark's format: nyu40/<scene>_<frame>.png, NYU40 ids (8-bit) at the label size, the
    name of its ground-truth file; color/<scene>_<frame>.png for viewing."""
    iid = image_id(image_rel)
    pred = f"nyu40/{iid}.png"
    write_png(out / pred, train_ids_to_nyu40(train_ids))
    write_png(out / "color" / f"{iid}.png", classes.colorize(train_ids), rgb=True)
    return pred


EXPORT = ("nyu40", write_prediction)  # what the prediction PNGs hold, their writer (dars.export)
