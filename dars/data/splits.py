"""Labeled / unlabeled image lists for a 1/N split: seeded and nested, or imported from a list file."""
import logging
from pathlib import Path

import numpy as np

from ..classes import IGNORE
from ..io import DarsError, read_label, write_json
from . import published
from .digests import file_record, file_sha256, write_manifest
from .layouts import DEFAULT_LAYOUT, class_set, find_pairs
from .lists import read_list, write_list
from .pairing import Unpaired

log = logging.getLogger(__name__)


def make_split(root, split, seed, out_dir, dataset, list_file=None, layout=DEFAULT_LAYOUT,
               source_root=None, source_layout=DEFAULT_LAYOUT, family="random", min_labeled=1,
               allow_unpaired=False):
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
    ones (evaluation would otherwise fail on them after all training): a val set that cannot be
    evaluated in full stops here, before any training. Fewer than `min_labeled` labeled images
    is an error (the split stage's default, datasets.<name>.min_labeled, is 2). Images without
    labels or labels without images are an error, or with `allow_unpaired` a warning recorded
    in split.json (dars.data.pairing)."""
    _check_split_number(split, source_root)
    root = Path(root)
    warnings = []
    train = listed_pairs(layout, root, "train", allow_unpaired, warnings)
    classes = class_set(layout)
    used, list_file, family_warnings = _family(split, list_file, family, layout)
    warnings += family_warnings
    labeled_root = root if split else Path(source_root)
    labeled_layout = layout if split else source_layout
    if split == 0:
        labeled = listed_pairs(source_layout, labeled_root, "train", allow_unpaired, warnings)
        source, digest = "source", None
    elif list_file:
        labeled, source, digest = _imported(list_file, root, train, used), "imported", file_sha256(list_file)
    else:
        labeled, source, digest = _random(train, split, seed, root, min_labeled), "random", None
    _check_min_labeled(labeled, min_labeled, split, len(train), root, list_file, labeled_root, dataset)
    unlabeled = _unlabeled(train, labeled, split)
    presence, records = _labeled_classes(labeled, labeled_root, classes, labeled_layout)
    num_val = _check_val_labels(root, layout, classes, allow_unpaired, warnings)
    missing = [classes.names[c] for c in np.flatnonzero(presence == 0)]
    if missing:
        warnings.append(f"the labeled images contain no pixels of {missing}; no pseudo-labeler can learn "
                        "these classes")
    _write_split(Path(out_dir), labeled, unlabeled, records, {
        "dataset": dataset, "root": str(root), "layout": layout, "split": split, "seed": seed,
        "labeled_root": str(labeled_root), "labeled_layout": labeled_layout,
        "source": source, "source_file": str(list_file) if list_file else None,
        "source_sha256": digest, "split_family": used,
        **({"split_family_requested": family} if family != used and used == "random" else {}),
        "num_labeled": len(labeled), "num_unlabeled": len(unlabeled), "num_val": num_val,
        **({"allow_unpaired": True} if allow_unpaired else {}),
        "labeled_class_images": presence.tolist(), "missing_classes": missing,
        "warnings": warnings,
    })
    return missing, warnings


def _check_split_number(split, source_root):
    if split < 0 or (split == 0) != (source_root is not None):
        raise DarsError(f"split={split}: 1/N of the train images is labeled (N >= 1); split 0 means domain "
                        "adaptation: it needs a source dataset (`datasets.<name>.source:`), and only split 0 "
                        "takes one")


def _unlabeled(train, labeled, split):
    """The train pairs that are not labeled (domain adaptation: every target train pair)."""
    labeled_images = {img for img, _ in labeled}
    unlabeled = train if split == 0 else [p for p in train if p[0] not in labeled_images]
    if not unlabeled and split != 1:
        raise DarsError(f"split={split}: no unlabeled images left (train has {len(train)} images)")
    return unlabeled


def _write_split(out_dir, labeled, unlabeled, records, description):
    """labeled.txt (with its manifest of label sizes and digests), unlabeled.txt, split.json."""
    write_manifest(out_dir / "labeled.txt", records)
    write_list(out_dir / "labeled.txt", labeled)
    write_list(out_dir / "unlabeled.txt", unlabeled)
    write_json(out_dir / "split.json", description)


def _family(split, list_file, requested, layout):
    """(the split family used, the list file to import or None, warnings)."""
    family, warnings = requested, []
    if split == 0:
        family = "source"
    elif list_file:
        family = "file"
    elif split > 1:
        family, list_file = published.list_file(layout, requested, split)
        if family != requested:
            warnings.append(f"the {requested} split family has no 1/{split} list for the {layout} layout "
                            f"(it has {published.available(layout).get(requested, [])}); this split is random")
    else:
        family = "random"  # split 1 labels everything: every family is the same
    return family, list_file, warnings


def _imported(list_file, root, train, family):
    """The labeled pairs of a list file (the user's own, family "file", or a published one), all
    of them train images of the tree."""
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
    return labeled


def _random(train, split, seed, root, min_labeled=1):
    """The first round(n/split) images of the permutation seeded by `seed`, in list order."""
    if split > len(train):
        raise DarsError(f"split={split}: 1/{split} of the {len(train)} train images under {root} is less "
                        f"than one image; use a split of at most {largest_split(len(train), min_labeled)}")
    order = np.random.default_rng(seed).permutation(len(train))
    num_labeled = max(1, round(len(train) / split))
    return [train[i] for i in sorted(order[:num_labeled])]


def _labeled_classes(labeled, labeled_root, classes, layout):
    """(images per class among the labeled ones, {label: size and sha256} for the manifest);
    every labeled label is checked here, not found as an anonymous IndexError deep in training."""
    presence = np.zeros(classes.num_classes, dtype=np.int64)
    records = {}
    for _, lab in labeled:
        records[lab] = file_record(labeled_root / lab)
        ids = _label_ids(labeled_root / lab, classes, layout)
        presence[ids[ids < classes.num_classes]] += 1
    return presence, records


def _label_ids(path, classes, layout):
    """The ids in a label file; an error naming it if one is neither a class nor ignore."""
    ids = np.unique(read_label(path))
    bad = ids[(ids >= classes.num_classes) & (ids != IGNORE)]
    if bad.size:
        raise DarsError(f"{path}: label id {int(bad[0])} is neither a class of the {classes.num_classes}-class "
                        f"{layout} set (0-{classes.num_classes - 1}) nor ignore ({IGNORE}); are these train ids?")
    return ids


def _check_val_labels(root, layout, classes, allow_unpaired, warnings):
    """Check the val set now, complete and every label: a missing or bad one would otherwise stop
    evaluation after all training. Returns the number of val pairs evaluation will score."""
    try:
        val = listed_pairs(layout, root, "val", allow_unpaired, warnings)
    except Unpaired as e:
        raise DarsError(f"the val set cannot be evaluated in full: {e}") from None
    except DarsError as e:
        raise DarsError(f"no val images to evaluate on: {e}") from None
    for _, lab in val:
        _label_ids(Path(root) / lab, classes, layout)
    return len(val)


def listed_pairs(layout, root, split, allow_unpaired=False, warnings=None):
    """find_pairs of the layout; with `allow_unpaired`, images without labels (and labels without
    images) are left out under a warning appended to `warnings` instead of an error."""
    try:
        return find_pairs(layout, root, split)
    except Unpaired as e:
        if not allow_unpaired:
            raise
        if warnings is not None:
            warnings.append(f"allow_unpaired: {e}".split(". A folder is missing")[0])
        return e.pairs


def largest_split(num_train, min_labeled):
    """The largest N whose 1/N split of `num_train` images still labels `min_labeled` of them
    (max(1, round(num_train / N)) >= min_labeled)."""
    need = max(1, min_labeled)
    n = 1
    while n < num_train and max(1, round(num_train / (n + 1))) >= need:
        n += 1
    return n


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
                    f"images, fewer than {key}; use a split of at most {largest_split(num_train, min_labeled)}")


def add_arguments(parser):
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--list-file", help="import the labeled list from this file instead of sampling")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT)
    parser.add_argument("--source-root", help="split 0 (domain adaptation): the labeled source dataset")
    parser.add_argument("--source-layout", default=DEFAULT_LAYOUT)
    parser.add_argument("--family", default="random",
                        help="published list family (dars.data.published): dars, cps, random")
    parser.add_argument("--min-labeled", type=int, default=2, help="fewer labeled images is an error (default 2)")
    parser.add_argument("--allow-unpaired", action="store_true",
                        help="leave out images without labels (and labels without images) under a warning")


def main(args):
    _, warnings = make_split(args.root, args.split, args.seed, args.out_dir, args.dataset, args.list_file,
                             args.layout, args.source_root, args.source_layout, args.family,
                             min_labeled=args.min_labeled, allow_unpaired=args.allow_unpaired)
    for warning in warnings:
        log.warning(warning)


COMMANDS = {"split": (add_arguments, main)}
