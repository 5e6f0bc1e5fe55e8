"""Label maps on disk, as every dataset layout reads and writes them: source-id PNGs read, train-id
maps checked, train-id labels written once by `prepare`, predictions written in train ids.

The layout modules (cityscapes, gta5, scannet, voc) share these; they live apart from the
registry (dars.data.layouts) so that the registry can import the layout modules themselves.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import IGNORE
from ..io import DarsError, write_png


def prepare_command(name, root, label_space=None) -> str:
    """The command that writes the train-id labels of a layout, for messages."""
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


def write_train_id_prediction(out, image_id, train_ids, classes):
    """The export format of a layout without an official one: trainIds/<id>.png, and
    color/<id>.png for viewing; returns the prediction's path relative to `out`."""
    pred = f"trainIds/{image_id}.png"
    write_png(out / pred, train_ids)
    write_png(out / "color" / f"{image_id}.png", classes.colorize(train_ids), rgb=True)
    return pred
