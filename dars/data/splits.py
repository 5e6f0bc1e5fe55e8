"""Labeled / unlabeled image lists for a 1/N split: seeded and nested, or imported from a list file."""
import hashlib
from pathlib import Path

import numpy as np

from ..classes import IGNORE
from ..io import DarsError, read_label, write_json, write_text_lines
from ..manifest import file_record, write_manifest
from . import published
from .cityscapes import read_list
from .layouts import class_set, find_pairs


def make_split(root, split, seed, out_dir, dataset, list_file=None, layout="cityscapes",
               source_root=None, source_layout="cityscapes", family="random", min_labeled=1):
    """Write labeled.txt, unlabeled.txt and split.json for 1/`split` of the train images.

    The labeled list is, in this order: the source's train set (split 0), `list_file` (the
    user's own list; family "file"), the published list of `family` for this split (see
    dars.data.published), else a random one. Returns (classes without a labeled pixel,
    warnings to show the user).

    A random split takes the first round(n/split) images of one permutation seeded by `seed`
    alone, so with the same seed the 1/8 labeled set lies inside the 1/4 one (as the
    authors' lists do). split 1 labels everything (the oracle; no unlabeled list). split 0 is
    domain adaptation: the labeled list is every train image of the source dataset at
    `source_root` (paths relative to it), the unlabeled list every target train image.

    Every label is checked here, the first stage, naming the file: the labeled ones (their size
    and sha256 go to labeled.manifest.json, for the trainer's resume fingerprint) and the val
    ones (evaluation would otherwise fail on them after all training). Fewer than `min_labeled`
    labeled images is an error (the split stage's default, datasets.<name>.min_labeled, is 2)."""
    if split < 0 or (split == 0) != (source_root is not None):
        raise DarsError(f"split={split}: 1/N of the train images is labeled (N >= 1); split 0 (domain "
                        "adaptation) needs a source dataset, and only split 0 takes one")
    root = Path(root)
    train = find_pairs(layout, root, "train")
    classes = class_set(layout)
    labeled_root = root
    warnings = []
    requested = family
    if split == 0:
        family = "source"
    elif list_file:
        family = "file"
    elif split > 1:
        family, list_file = published.list_file(layout, family, split)
        if family != requested:
            warnings.append(f"the {requested} split family has no 1/{split} list for the {layout} layout "
                            f"(it has {published.available(layout).get(requested, [])}); this split is random")
    else:
        family = "random"  # split 1 labels everything: every family is the same
    if split == 0:
        labeled_root = Path(source_root)
        labeled = find_pairs(source_layout, labeled_root, "train")
        source, digest = "source", None
    elif list_file:
        labeled = read_list(list_file, root)
        if not labeled:
            raise DarsError(f"{list_file}: the imported split list is empty; it needs one `image label` "
                            "pair per labeled image")
        known = {img for img, _ in train}
        unknown = [img for img, _ in labeled if img not in known]
        if unknown:
            hint = ("" if family == "file" else f" (the published {family} list; a tree without all of its "
                    "images needs datasets.<name>.split_family: random)")
            raise DarsError(f"{list_file}: {len(unknown)} images are not train images under {root}, "
                            f"e.g. {unknown[0]}{hint}")
        source, digest = "imported", hashlib.sha256(Path(list_file).read_bytes()).hexdigest()
    else:
        if split > len(train):
            raise DarsError(f"split={split}: 1/{split} of the {len(train)} train images under {root} is less "
                            f"than one image; use a split of at most {len(train)}")
        order = np.random.default_rng(seed).permutation(len(train))
        num_labeled = max(1, round(len(train) / split))
        labeled = [train[i] for i in sorted(order[:num_labeled])]
        source, digest = "random", None
    _check_min_labeled(labeled, min_labeled, split, len(train), root, list_file, labeled_root, dataset)
    labeled_images = {img for img, _ in labeled}
    unlabeled = train if split == 0 else [p for p in train if p[0] not in labeled_images]
    if not unlabeled and split != 1:
        raise DarsError(f"split={split}: no unlabeled images left (train has {len(train)} images)")

    presence = np.zeros(classes.num_classes, dtype=np.int64)
    records = {}
    for _, lab in labeled:
        records[lab] = file_record(labeled_root / lab)
        # found here, not as an anonymous IndexError deep in training
        ids = _label_ids(labeled_root / lab, classes, layout if split else source_layout)
        presence[ids[ids < classes.num_classes]] += 1
    warnings += _check_val_labels(root, layout, classes)
    missing = [classes.names[c] for c in np.flatnonzero(presence == 0)]
    if missing:
        warnings.append(f"the labeled images contain no pixels of {missing}; no pseudo-labeler can learn "
                        "these classes")

    out_dir = Path(out_dir)
    write_manifest(out_dir / "labeled.txt", records)
    write_text_lines(out_dir / "labeled.txt", [f"{i} {lab}" for i, lab in labeled])
    write_text_lines(out_dir / "unlabeled.txt", [f"{i} {lab}" for i, lab in unlabeled])
    write_json(out_dir / "split.json", {
        "dataset": dataset, "root": str(root), "layout": layout, "split": split, "seed": seed,
        "labeled_root": str(labeled_root), "labeled_layout": source_layout if split == 0 else layout,
        "source": source, "source_file": str(list_file) if list_file else None,
        "source_sha256": digest, "split_family": family,
        **({"split_family_requested": requested} if requested != family and family == "random" else {}),
        "num_labeled": len(labeled), "num_unlabeled": len(unlabeled),
        "labeled_class_images": presence.tolist(), "missing_classes": missing,
        "warnings": warnings,
    })
    return missing, warnings


def _label_ids(path, classes, layout):
    """The ids in a label file; an error naming it if one is neither a class nor ignore."""
    ids = np.unique(read_label(path))
    bad = ids[(ids >= classes.num_classes) & (ids != IGNORE)]
    if bad.size:
        raise DarsError(f"{path}: label id {int(bad[0])} is neither a class of the {classes.num_classes}-class "
                        f"{layout} set (0-{classes.num_classes - 1}) nor ignore ({IGNORE}); are these train ids?")
    return ids


def _check_val_labels(root, layout, classes):
    """Check every val label now: a bad one would otherwise stop evaluation after all training.
    Returns warnings (a layout without a val split: nothing can be evaluated)."""
    try:
        val = find_pairs(layout, root, "val")
    except DarsError as e:
        return [f"no val images to evaluate on ({e})"]
    for _, lab in val:
        _label_ids(Path(root) / lab, classes, layout)
    return []


def _check_min_labeled(labeled, min_labeled, split, num_train, root, list_file, labeled_root, dataset):
    """Too few labeled images is an error with the numbers, not a run on one image."""
    n = len(labeled)
    if n >= min_labeled:
        return
    key = f"the minimum of {min_labeled} (datasets.{dataset}.min_labeled)"
    if split == 0:
        raise DarsError(f"{labeled_root}: the source's train set has {n} images, fewer than {key}")
    if list_file:
        raise DarsError(f"{list_file}: lists {n} labeled images, fewer than {key}")
    raise DarsError(f"split={split}: 1/{split} of the {num_train} train images under {root} is {n} labeled "
                    f"images, fewer than {key}; use a split of at most {max(1, num_train // min_labeled)}")
