import numpy as np
import pytest

from dars.classes import NUM_CLASSES, train_ids_to_label_ids
from dars.io import write_png

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


@pytest.fixture
def tiny_cityscapes(tmp_path):
    return write_cityscapes_tree(tmp_path / "cityscapes")
