"""Published labeled-split lists shipped with the package (published_splits/, attribution in
its PROVENANCE.md), selected by family name per layout and split.

"1/8 Cityscapes" names different 372-image lists in different papers, which share only
about 40 images: a number is comparable only within its family, so every split records it."""
from importlib import resources

from ..io import DarsError

FAMILIES = ("dars", "cps", "random")  # `random`: the seeded, nested split of dars.data.splits

# layout -> family -> split N -> file under published_splits/
LISTS = {
    "cityscapes": {
        "dars": {8: "dars/cs_split8_labeled.txt", 4: "dars/cs_split4_labeled.txt"},
        "cps": {n: f"cps/cityscapes_1_{n}_labeled.txt" for n in (2, 4, 8, 16, 30)},
    },
    # The authors' 1,464 labeled of the 10,582 train_aug images (their `split1464`): the nearest
    # 1/N is 1/7 (10,582 / 1,464 = 7.2), so split7 names it; its unlabeled set is the other 9,118.
    "voc": {"dars": {7: "dars/voc_1464_labeled.txt"}},
}


def list_file(layout, family, split):
    """(family used, path of its list or None) for 1/`split` of a `layout` dataset.

    A family without a list for this split falls back to `random` (the Cityscapes presets ask
    for `dars`, which exists for 1/8 and 1/4 only); the caller records and reports that."""
    if family not in FAMILIES:
        raise DarsError(f"split_family {family!r} is unknown; choose one of {FAMILIES}")
    name = LISTS.get(layout, {}).get(family, {}).get(split)
    if name is None:
        return "random", None
    return family, str(resources.files(__package__) / "published_splits" / name)


def available(layout):
    """{family: [splits]} shipped for a layout, for messages and the README."""
    return {f: sorted(lists) for f, lists in LISTS.get(layout, {}).items()}
