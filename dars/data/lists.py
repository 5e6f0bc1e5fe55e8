"""List files: the one reader (and writer) of each list format stages pass on. (Image ids are the
layouts': dars.data.layouts.image_id.)

- Pair lists (labeled.txt, unlabeled.txt, imported and published split lists): one
  `<image> <label>` pair a line, both relative to the dataset root; blank lines and `#`
  comments are skipped.
- pseudo_labels.txt: the same pairs, images relative to the dataset root and labels relative to
  the list's own folder.
- Id lists (a dataset's own split files: GTA5 `<split>.txt`, VOC `ImageSets/Segmentation/*.txt`,
  ScanNet `scannetv2_<split>.txt`): one id, or an image path whose stem is the id, a line.
"""
from pathlib import Path

from ..io import DarsError, write_text_lines


def read_list(path, root=None):
    """Pairs from a list file: one `image label` pair per line, relative to the dataset root. With
    `root`, the first and last pairs' files must exist under it (a list of another tree fails here)."""
    path = Path(path)
    if not path.is_file():
        raise DarsError(f"{path}: list file not found")
    pairs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DarsError(f"{path}:{n}: expected `<image path> <label path>`, got {line!r}")
        pairs.append((fields[0], fields[1]))
    if root is not None:
        for img, lab in pairs[:1] + pairs[-1:]:
            for p in (img, lab):
                if not (Path(root) / p).is_file():
                    raise DarsError(f"{path}: {p} does not exist under dataset root {root}")
    return pairs


def write_list(path, pairs):
    """Write `image label` pairs, one a line (atomically)."""
    write_text_lines(path, [f"{image} {label}" for image, label in pairs])


def read_pseudo_list(path):
    """[(image relative to the dataset root, label Path)] of a pseudo_labels.txt; each label is
    the list's folder joined with the path the list names."""
    base = Path(path).parent
    return [(image, base / label) for image, label in read_list(path)]


def read_ids(path):
    """Ids of an id list, in file order: each line's first field, reduced to its stem."""
    ids = []
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            ids.append(Path(line.split()[0]).stem)  # an id, or an image path whose stem is the id
    return ids
