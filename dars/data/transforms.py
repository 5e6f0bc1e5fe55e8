"""Paired image/label augmentation in the paper's order, driven by an explicit numpy Generator.

Order (method.md §3): random scale (one factor, bilinear image, nearest label), rotation
+-10 deg with p=0.5 (label filled with ignore), Gaussian blur p=0.5, horizontal flip p=0.5,
random crop (label padded with ignore), ImageNet mean/std normalisation."""
import cv2
import numpy as np
import torch

from ..classes import IGNORE

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255


def resize_pair(image, label, size):
    """Resize to (height, width); None keeps the size."""
    if size is None or tuple(image.shape[:2]) == tuple(size):
        return image, label
    h, w = size
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if label is not None:
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return image, label


def augment(image, label, rng: np.random.Generator, crop, scale_range, rotate=10.0, blur=True, flip=True):
    """Return an augmented (image, label) crop of size `crop` (height, width)."""
    s = rng.uniform(*scale_range)
    h, w = image.shape[:2]
    nh, nw = max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
    if rotate and rng.random() < 0.5:
        angle = rng.uniform(-rotate, rotate)
        m = cv2.getRotationMatrix2D((nw / 2, nh / 2), angle, 1.0)
        image = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in MEAN))
        label = cv2.warpAffine(label, m, (nw, nh), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
    if blur and rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.1, 2.0))
    if flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    ch, cw = crop
    pad_h, pad_w = max(ch - nh, 0), max(cw - nw, 0)
    if pad_h or pad_w:
        # Image padding is the mean colour, so it is zero after normalisation.
        image = cv2.copyMakeBorder(np.ascontiguousarray(image), 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                   value=tuple(float(v) for v in MEAN))
        label = cv2.copyMakeBorder(np.ascontiguousarray(label), 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                   value=IGNORE)
    h, w = label.shape
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]


def to_tensors(image, label=None):
    """HWC uint8 RGB -> normalised CHW float tensor; label -> int64 tensor."""
    img = (np.asarray(image, dtype=np.float32) - MEAN) / STD
    img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    if label is None:
        return img
    return img, torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))
