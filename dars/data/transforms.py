"""Paired image/label augmentation in the paper's order, driven by an explicit numpy Generator.

Order (method.md §3): random scale (one factor, bilinear image, nearest label), rotation
+-10 deg with p=0.5 (label filled with ignore), Gaussian blur p=0.5, horizontal flip p=0.5,
random crop (label padded with ignore), ImageNet mean/std normalisation.

The loader's workers stop at uint8 crops (`augment`); the trainer normalises each batch on
its device (`normalize_batch`): a quarter of the bytes to pass between processes and to copy
to the GPU, and no float work on the loader's cores."""
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


def _canvas(size, s):
    """The scaled image's size (the canvas rotation, flip and crop act on)."""
    h, w = size
    return max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))


def augment_settings(settings):
    """(keyword arguments of `augment`, the size its scale factor applies to) of a run's
    resolved train settings. `scale_reference: full` (the authors'): the factor applies to the
    image as stored (Cityscapes 1024x2048, so crop 361 at [0.25, 1.0] is centred on the
    512x1024 evaluation size); otherwise to the dataset's `resize` (None: the image's size)."""
    s = settings
    args = dict(crop=s["crop"], scale_range=s["scale_range"], rotate=s["rotate"], blur=s["blur"], flip=s["flip"])
    args.update({k: s[k] for k in ("blur_kernel", "crop_pad") if k in s})
    return args, None if s.get("scale_reference") == "full" else s["resize"]


def augment(image, label, rng: np.random.Generator, crop, scale_range, rotate=10.0, blur=True, flip=True,
            base_size=None, blur_kernel=None, crop_pad="end"):
    """An augmented (image, label) crop of size `crop` (height, width), as uint8 arrays.

    The paper's chain (module docstring) is composed into one affine map from crop pixels to
    source pixels and applied by a single warp per array: only the crop's pixels are ever
    computed, and the image is resampled once instead of twice (scale, then rotation). The
    random draws, their order and the geometry are the chain's; `base_size` (h, w) is the
    size the scale factor applies to (the dataset's `resize`; default: the image's size).

    `blur_kernel` None: sigma drawn in U(0.1, 2); an odd k: cv2.GaussianBlur with a k x k
    kernel and sigma 0, which for k <= 7 selects OpenCV's fixed table, not a sigma (the
    authors': 5, the binomial kernel [1, 4, 6, 4, 1] / 16 per axis). `crop_pad` "end": a
    canvas smaller than the crop is padded bottom/right; "centre" (the authors'): half on
    each side."""
    src_h, src_w = image.shape[:2]
    nh, nw = _canvas(base_size or (src_h, src_w), rng.uniform(*scale_range))
    # Canvas (scaled image) -> source pixel centres, as cv2.resize maps them.
    to_source = np.array([[src_w / nw, 0, 0.5 * src_w / nw - 0.5],
                          [0, src_h / nh, 0.5 * src_h / nh - 0.5], [0, 0, 1]])
    if rotate and rng.random() < 0.5:
        # Rotation about the canvas centre, canvas size kept (corners cut, borders filled).
        turn = np.vstack([cv2.getRotationMatrix2D((nw / 2, nh / 2), rng.uniform(-rotate, rotate), 1.0), [0, 0, 1]])
        to_source = to_source @ np.linalg.inv(turn)
    if blur_kernel:  # sigma is only "blur or not" here: the call below passes sigma 0
        sigma = 0.3 * ((blur_kernel - 1) * 0.5 - 1) + 0.8 if blur and rng.random() < 0.5 else 0.0
    else:
        sigma = rng.uniform(0.1, 2.0) if blur and rng.random() < 0.5 else 0.0
    if flip and rng.random() < 0.5:
        to_source = to_source @ np.array([[-1, 0, nw - 1], [0, 1, 0], [0, 0, 1]])
    ch, cw = crop
    # The crop's corner on the canvas padded to at least the crop size (bottom/right, or half
    # before: a negative corner).
    y = int(rng.integers(0, max(nh, ch) - ch + 1))
    x = int(rng.integers(0, max(nw, cw) - cw + 1))
    if crop_pad == "centre":
        y, x = y - max(ch - nh, 0) // 2, x - max(cw - nw, 0) // 2
    # Blur acts on the canvas before the crop, so the warp covers a margin the kernel reads.
    m = (blur_kernel // 2 + 1 if blur_kernel else int(np.ceil(3 * sigma)) + 1) if sigma else 0
    to_source = to_source @ np.array([[1, 0, x - m], [0, 1, y - m], [0, 0, 1]])
    warp = dict(dsize=(cw + 2 * m, ch + 2 * m), borderMode=cv2.BORDER_CONSTANT)
    image = cv2.warpAffine(image, to_source[:2], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderValue=tuple(float(v) for v in MEAN), **warp)
    if sigma:
        # A fixed size with sigma 0: OpenCV's fixed kernel for it (5: [1,4,6,4,1]/16); else the
        # size from sigma.
        k, sx = ((blur_kernel, blur_kernel), 0) if blur_kernel else ((0, 0), sigma)
        image = cv2.GaussianBlur(image, k, sigmaX=sx)[m:m + ch, m:m + cw]
        to_source = to_source @ np.array([[1, 0, m], [0, 1, m], [0, 0, 1]])
    label = cv2.warpAffine(label, to_source[:2], flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                           borderValue=IGNORE, **dict(warp, dsize=(cw, ch)))
    # Beyond the canvas is padding, not image, even where the rotated source would reach.
    pad = MEAN.round().astype(np.uint8)
    image[nh - y:], label[nh - y:] = pad, IGNORE
    image[:, nw - x:], label[:, nw - x:] = pad, IGNORE
    top, left = max(-y, 0), max(-x, 0)  # centred padding before the canvas
    image[:top], label[:top] = pad, IGNORE
    image[:, :left], label[:, :left] = pad, IGNORE
    return image, label


def to_tensors(image, label=None):
    """HWC uint8 RGB -> normalised CHW float tensor; label -> int64 tensor."""
    img = (np.asarray(image, dtype=np.float32) - MEAN) / STD
    img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    if label is None:
        return img
    return img, torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))


def normalize_batch(images):
    """N x H x W x 3 RGB batch (uint8, as the training loader yields it) -> normalised
    N x 3 x H x W float32 on the batch's device, in the channels_last memory layout (a view of
    NHWC storage; `.contiguous()` makes it NCHW). Bitwise what to_tensors computes. Other float
    dtypes are kept (tests train in float64)."""
    x = images.permute(0, 3, 1, 2)
    x = x.float() if x.dtype == torch.uint8 else x
    mean, std = (torch.as_tensor(v, dtype=x.dtype, device=x.device).view(1, 3, 1, 1) for v in (MEAN, STD))
    return (x - mean) / std
