"""What several test files share: the repository, the Snakemake runner and the tiny configs it
runs, generated dataset trees, the training settings of the unit tests, run records and backbone
state dicts. Fixtures live in conftest.py; everything a test file imports lives here."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from torchvision.models import resnet50

from dars.classes import NUM_CLASSES, train_ids_to_label_ids
from dars.io import write_json, write_png

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def tiny_config(**overrides):
    """The smoke setting of the tests and CI: the default DAG on 32 tiny images, 3 epochs."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(dataset="synthetic", split=4, rounds=2, seeds=[0, 1], num_shards=2,
                  compare_methods=["supervised", "st", "cbst", "dars"], later_rounds=None)
    config["datasets"]["synthetic"]["synthetic"] = {
        "num_train": 32, "num_val": 8, "height": 64, "width": 128, "seed": 0}
    config["train"].update(crop=[48, 96], batch_size=4, pretrain_epochs=3, round_epochs=1)
    config.update(overrides)
    return config


def uda_config():
    """tiny_config with one seed and small embedded domains (the game source, the evidence target)."""
    config = tiny_config(seeds=[0])
    small = {"num_train": 16, "num_val": 6, "height": 64, "width": 128}
    config["datasets"]["synthetic_evidence"]["synthetic"].update(small)
    config["datasets"]["synthetic_game"]["synthetic"].update(num_train=16)
    for name in ("synthetic_evidence", "synthetic_uda"):
        config["datasets"][name]["train"] = {"crop": [48, 96], "pretrain_steps": 8}
    config["train"].update(round_epochs=1)
    return config


def snakemake(workdir, *args, config=None, timeout=900):
    """Snakemake on the repository's Snakefile in `workdir` (with `config` written to its
    config.yaml), output captured. Without "-n" it runs jobs: mark such a test `e2e`."""
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(SNAKEMAKE + ["--directory", str(workdir), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin", "bielefeld"]}


def write_cityscapes_tree(root, num_train=8, num_val=2, height=32, width=64, seed=0, trainids=True, num_test=0):
    """A tiny tree in Cityscapes layout: blocky random labels, images coloured by class. Test
    images (num_test) get all-void labels, as Cityscapes ships them."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
    for split, count in (("train", num_train), ("val", num_val), ("test", num_test)):
        for i in range(count):
            city = CITIES[split][i % len(CITIES[split])]
            stem = f"{city}_{i:06d}_000019"
            blocks = rng.integers(0, NUM_CLASSES, size=(height // 8, width // 8)).astype(np.uint8)
            label = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
            label[:2] = 255
            image = palette[label] // 2 + rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
            if split == "test":
                label[:] = 255
            write_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image, rgb=True)
            write_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", train_ids_to_label_ids(label))
            if trainids:
                write_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png", label)
    return root


# A resolved training settings dict (as dars.config.train_settings writes it) for a few CPU steps
# of the lite model on write_cityscapes_tree's 32x64 images.
TRAIN_SETTINGS = {
    "model": "lite", "num_classes": 19, "seed": 0, "round": 0, "mode": "pretrain", "epochs": 3,
    "batch_size": 2, "crop": [32, 48], "resize": None, "scale_range": [0.5, 1.0], "base_lr": 0.01,
    "head_lr_mult": 10, "momentum": 0.9, "weight_decay": 1e-4, "poly_power": 0.9, "aux_weight": 0.4,
    "rotate": 10, "blur": True, "flip": True, "checkpoint_every": 1, "workers": 0,
}

CLASS_NAMES = ["road", "car", "pole", "rider"]  # the class set of put's runs


def put(root, method, seed, rnd, iou, *, labeler=None, alpha=None, kl=None, **extra):
    """A per-run miou.json (and pseudo_stats.json when `kl` is given) in the pipeline's layout."""
    d = root / f"seed{seed}" / ("round0" if method == "baseline" else f"{method}/round{rnd}")
    present = [v for v in iou if v is not None]
    run = {"dataset": "synthetic", "split": 8, "seed": seed, "round": rnd, "method": method,
           "labeler": labeler, "alpha": alpha, "scale_range": [0.75, 1.5], "protocol": "whole image",
           "class_names": CLASS_NAMES, "iou": iou, "miou": sum(present) / len(present)}
    run.update(extra)
    write_json(d / "miou.json", run)
    if kl is not None:
        write_json(d / "pseudo_stats.json", {"labeler": labeler, "alpha": alpha, "pseudo_counts": [1, 1, 1, 1],
                                             "gt": {"kl_true_pseudo": kl, "gt_pixels": [9, 1, 1, 1]}})
    return str(d / "miou.json")


COUNTER = "num_batches_tracked"
BN = ("weight", "bias", "running_mean", "running_var")
# The deep stem as hszhao/semseg's resnet.py (deep_base=True) names it.
SEMSEG_STEM = [("conv1", (64, 3, 3, 3), "bn1", 64), ("conv2", (64, 64, 3, 3), "bn2", 64),
               ("conv3", (128, 64, 3, 3), "bn3", 128)]
# What a torchvision (plain stem) ResNet file leaves randomly initialised in our deep-stem backbone.
DEEP_STEM_RANDOM = ([f"stem.{i}.0.weight" if p is None else f"stem.{i}.1.{p}" for i in range(3) for p in (None,) + BN]
                    + ["layer1.0.conv1.weight", "layer1.0.downsample.0.weight"])


def randomized(state, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: v if k.endswith(COUNTER) else torch.randn(v.shape, generator=g) for k, v in state.items()}


def semseg_resnet50_state(counters=False):
    """A state dict with the names and shapes of semseg's resnet50_v2.pth: deep stem, layer1's
    first block reading 128 channels, fc; no num_batches_tracked unless `counters`."""
    state = {}
    for conv, shape, bn, width in SEMSEG_STEM:
        state[f"{conv}.weight"] = torch.empty(shape)
        state.update({f"{bn}.{p}": torch.empty(width) for p in BN})
        if counters:
            state[f"{bn}.{COUNTER}"] = torch.tensor(7)
    for k, v in resnet50(weights=None).state_dict().items():
        if k.startswith("layer") and (counters or not k.endswith(COUNTER)):
            state[k] = v
    state["layer1.0.conv1.weight"] = torch.empty(64, 128, 1, 1)
    state["layer1.0.downsample.0.weight"] = torch.empty(256, 128, 1, 1)
    state["fc.weight"], state["fc.bias"] = torch.empty(1000, 2048), torch.empty(1000)
    return randomized(state)


def save_small(state, path):
    """Save a state dict whose tensors keep their shapes but share one element each (stride-0
    views): the file is a few kB, the shapes are all that the checks read."""
    torch.save({k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}, path)
    return path
