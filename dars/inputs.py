"""Dataset listings for the plan: the image and label files of a configured dataset's split, as
Snakemake inputs (workflow/rules/common.smk), so that an edited label reruns what read it.

Cached per (layout, root, split): a DAG asks once per job, the tree is listed once."""
import functools
from pathlib import Path

from .config import dataset, dataset_root, generated_files, labeled_dataset, layout_of
from .data.layouts import find_pairs
from .data.pairing import Unpaired
from .io import DarsError
from .paths import generated_root


@functools.lru_cache(maxsize=None)
def dataset_files(layout, root, split, allow_unpaired=False):
    """Every image and label file of a real dataset's split, as paths under `root` (Snakemake
    inputs); () for a split the layout does not have (e.g. GTA5 without val). Images without
    labels or labels without images fail the plan (dars.data.pairing), unless allowed."""
    try:
        pairs = find_pairs(layout, root, split)
    except Unpaired as e:
        if not allow_unpaired:
            raise  # an incomplete val set would be scored on fewer images: stop before any training
        pairs = e.pairs
    except DarsError:
        if split == "train":
            raise  # the train split must be there; its error names the fix (e.g. prepare)
        return ()
    return tuple(str(Path(root) / p) for pair in pairs for p in pair)


def input_files(config, name, split="train"):
    """Snakemake inputs of a configured dataset: the files of its `split` and, for train, those
    of its UDA source too; nothing for a generated tree (the rule making it is the input)."""
    names = [name, labeled_dataset(config, name)] if split == "train" else [name]
    files = []
    for n in dict.fromkeys(names):
        root = dataset_root(config, n)
        if root not in generated_files(config, n):
            ds = dataset(config, n)
            files += dataset_files(layout_of(ds), root, split, bool(ds.get("allow_unpaired")))
    return files


def has_val_labels(config, name):
    """Whether dataset `name` has val labels (or its generator will write them), so that every
    prior of its runs records its D_KL to them (a generated game-domain tree has no val split)."""
    ds = dataset(config, name)
    made_by = [g for g, d in config["datasets"].items() if "synthetic" in d and generated_root(g) == ds["root"]]
    if made_by:
        return config["datasets"][made_by[0]]["synthetic"].get("domain", "city") != "game"
    return bool(dataset_files(layout_of(ds), dataset_root(config, name), "val"))
