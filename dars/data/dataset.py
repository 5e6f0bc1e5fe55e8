"""Torch datasets over image/label pairs; every random choice comes from (seed, epoch, index)."""
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..io import DarsError, read_image, read_label
from .lists import read_pseudo_list
from .transforms import augment, resize_pair


class SegmentationPairs(Dataset):
    """(image, label) pairs given as absolute paths, yielded as uint8 tensors: image H x W x 3
    RGB (transforms.normalize_batch makes network input of a batch), label H x W. With
    `augment_args`, augmented crops whose randomness depends only on (seed, epoch, index):
    identical across worker counts."""

    def __init__(self, pairs, resize=None, augment_args=None, seed=0):
        self.pairs = [(Path(i), Path(lab)) for i, lab in pairs]
        self.resize = resize
        self.augment_args = augment_args
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        image_path, label_path = self.pairs[index]
        image, label = read_image(image_path), read_label(label_path)
        if image.shape[:2] != label.shape:
            raise DarsError(f"{label_path}: label is {label.shape[0]}x{label.shape[1]} but its image {image_path} "
                            f"is {image.shape[0]}x{image.shape[1]}; they must be the same size "
                            "(`python -m dars prepare <layout> <root>` resizes ScanNet's colour frames)")
        if self.augment_args is None:
            image, label = resize_pair(image, label, self.resize)
        else:
            # `resize` is folded into augmentation's single warp: the scale applies to that size.
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, label = augment(image, label, rng, **self.augment_args, base_size=self.resize)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(label))


def list_pairs(root, pairs):
    """Make list-file pairs (relative to the dataset root) absolute."""
    root = Path(root)
    return [(root / i, root / lab) for i, lab in pairs]


def pseudo_pairs(root, pseudo_list):
    """Absolute pairs of a pseudo_labels.txt (images under the dataset root, labels beside the list)."""
    return [(Path(root) / image, label) for image, label in read_pseudo_list(pseudo_list)]


class ImageList(Dataset):
    """(index, image H x W x 3 RGB uint8, label H x W uint8 or None) of list pairs relative to
    `root`, for inference; labels are read only with `labels=True`."""

    def __init__(self, root, pairs, labels=False):
        self.root, self.pairs, self.labels = Path(root), list(pairs), labels

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        image_rel, label_rel = self.pairs[i]
        label = read_label(self.root / label_rel) if self.labels else None
        return i, read_image(self.root / image_rel), label


def _as_arrays(item):
    i, image, label = item
    return i, image.numpy(), None if label is None else label.numpy()


def prefetched(dataset, workers):
    """The items of `dataset` in order. With workers > 0, that many processes decode ahead of
    the consumer, so a GPU need not wait for PNG decoding (43 ms for a 1024x2048 image on one
    core, about as long as slide inference of it takes); results do not depend on it."""
    if not workers:
        yield from (dataset[i] for i in range(len(dataset)))
        return
    cv2.setNumThreads(1)  # before the fork: one core per worker (see dars.train)
    # Tensors, not arrays, cross from the workers: through shared memory instead of a pipe.
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=4)
    yield from map(_as_arrays, loader)
