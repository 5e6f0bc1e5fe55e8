"""Errors users can act on, and atomic file writing (nothing half-written is ever consumed)."""
import contextlib
import errno
import json
import os
import secrets
import shlex
import shutil
from pathlib import Path

import numpy as np


class DarsError(Exception):
    """Bad input or configuration: the message names the file or key and what to do."""


def rebuild_hint(directory):
    """The exact command that rebuilds a directory output and everything made from it. Not
    `rm -r` then `snakemake`: Snakemake does not rerun the jobs downstream of a deleted
    intermediate whose own outputs exist, so that would leave them describing a missing file."""
    return (f"rebuild it and everything made from it: `snakemake --forcerun {shlex.quote(str(directory))}` (with "
            "your usual options and target)")


def _fresh(final, suffix, create):
    """Create a new temporary entry beside `final` with `create(path)` and return its path. Not
    tempfile's: its files are 0600 and folders 0700 whatever the umask, so results renamed from
    them would be unreadable to colleagues; os.open/os.mkdir apply the umask like any new file."""
    final.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = final.parent / f".{final.name}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def free_space(path) -> str:
    """Free space of the file system a path is (to be) written on, in words."""
    try:
        return f"{shutil.disk_usage(Path(path).parent).free / 2**30:.2f} GiB free there"
    except OSError:
        return "free space unknown"


@contextlib.contextmanager
def _named_write_errors(final, tmp=None):
    """A full disk or quota, raised anywhere in writing `final`: one DarsError naming the file and
    the free space (counted once the partial temporary file is gone), not a bare Errno 28."""
    try:
        yield
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        if tmp is not None and os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise DarsError(f"{final}: could not write it ({e.strerror}); {free_space(final)}. Free some "
                        "space (or quota) and rerun") from e


def _create_file(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextlib.contextmanager
def atomic_path(final, suffix=""):
    """Yield a temporary path beside `final`; rename it onto `final` only on success."""
    final = Path(final)
    with _named_write_errors(final):
        tmp = _fresh(final, suffix, _create_file)
    try:
        with _named_write_errors(final, tmp):
            yield Path(tmp)
            os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(final):
    """Yield a temporary directory beside `final`; it replaces `final` only on success."""
    final = Path(final)
    with _named_write_errors(final):
        tmp = _fresh(final, "", os.mkdir)
    try:
        with _named_write_errors(final, tmp):
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path):
    path = Path(path)
    if not path.is_file():
        raise DarsError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DarsError(f"{path}: not valid JSON ({e})") from e


def write_text_lines(path, lines):
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in lines))


def read_image(path) -> np.ndarray:
    """RGB uint8 image; a clear error if missing or unreadable."""
    import cv2  # here, not at the top: the plan imports this module and reads no image (no OpenCV)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DarsError(f"{path}: image missing or unreadable")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path) -> np.ndarray:
    """Single-channel uint8 label map; a clear error if missing or not single-channel."""
    import cv2
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise DarsError(f"{path}: label map missing or unreadable")
    if lab.ndim != 2 or lab.dtype != np.uint8:
        raise DarsError(f"{path}: expected a single-channel 8-bit label PNG, got shape {lab.shape} {lab.dtype}")
    return lab


def write_png(path, array: np.ndarray, rgb=False):
    """Write a PNG atomically (RGB arrays are converted to OpenCV's BGR order)."""
    import cv2
    if rgb:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), array):
            raise DarsError(f"{path}: could not write PNG ({free_space(path)})")

