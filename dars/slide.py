"""Single-scale inference: whole image or sliding window, with horizontal-flip averaging; and a
checkpoint loaded for the stages that predict (Predictor: infer, evaluate, export).

The paper's evaluation protocol (method.md §4): window = training crop, stride =
ceil(2/3 window) per axis, the last window aligned to the far edge, softmax probabilities
averaged over the flip and over overlapping windows, then resized to the label resolution.
The network sees the image as stored, resized to a fixed [H, W] (`resize`), or with its
long side resized to `resize_long` (the authors' `base_size`: VOC 400).

What is averaged follows the authors' code, which does it two ways: their evaluation
(tool/test.py) averages softmax probabilities over the flip and the windows (fuse "probs",
the default); their pseudo-label generation averages logits and takes one softmax at the
end (fuse "logits", set per dataset by evaluate.teacher_fusion for the teacher's shards).
Either way the shards store probabilities.

Why images smaller than the window are padded with zeros, centred: zero after ImageNet
normalisation is the mean colour, which is what training padded crops and rotation borders
with, so the network has seen it as "no content"; reflecting or replicating would invent
image structure. Centring keeps the flipped window's padding where the unflipped one has
it, so flip averaging stays an exact mirror average (bottom/right padding would not).

On CUDA ("auto") the network runs under bf16 autocast, and in slide mode with channels_last
tensors; softmax, averaging and resizing are always float32. Several windows and their
mirror images share one forward (up to 2 x batch_windows images). channels_last is off for
whole images under "auto" because PSPNet's pyramid pooling (AdaptiveAvgPool2d) is slow in
that layout on large maps: on an H200, PSPNet-50 bf16 at 1024x2048 ran 15 images/s with it
and 35 without (43 of 67 ms in the pooling), whereas 713-px windows ran 18.4 with and 15.4
without (bench/infer_bench.py)."""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import runtime
from .checkpoint import read_checkpoint
from .data.transforms import normalize_batch, resize_pair, to_tensors
from .io import DarsError
from .models import build_model
from .models.fold import fold_batchnorm
from .runtime import resolve_amp, resolve_channels_last
from .settings import PredictSettings

MODES = ("whole", "slide")
FUSIONS = ("probs", "logits")


def as_size(value, what):
    """(h, w) of positive ints from an int or a pair; DarsError naming `what` otherwise."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if value is not None else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise DarsError(f"{what} must be a positive integer or [height, width] of positive integers, got {value!r}")
    return pair


def default_stride(window):
    """ceil(2/3 x window) per axis (method.md §4): 361 -> 241, 713 -> 476."""
    return tuple(-(-2 * s // 3) for s in window)


def window_starts(size, window, stride):
    """Start offsets of the windows along one axis of length `size` (>= window after padding):
    every `stride`, the last one moved back so the window ends exactly at the far edge."""
    if size <= window:
        return [0]
    count = math.ceil((size - window) / stride) + 1
    return [min(i * stride, size - window) for i in range(count)]


def window_grid(height, width, window, stride):
    """(y, x) top-left corners of every window over a height x width (padded) image."""
    return [(y, x) for y in window_starts(height, window[0], stride[0])
            for x in window_starts(width, window[1], stride[1])]


def _channels_last(channels_last, device, mode="slide"):
    """"auto": on CUDA in slide mode only (module docstring)."""
    return resolve_channels_last(channels_last, device, auto=torch.device(device).type == "cuda" and mode == "slide")


class _Runner:
    """The model with this call's precision and memory format: float32 logits of a batch."""

    def __init__(self, model, device, amp, channels_last, mode):
        self.model, self.device = model, torch.device(device)
        self.dtype = resolve_amp(amp, device)
        self.channels_last = _channels_last(channels_last, device, mode)
        # Idempotent and cheap once converted; the stages own the model they pass. Converted
        # back when not wanted, so one model serves calls of either setting.
        model.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def __call__(self, batch):
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.dtype is None:
            return self.model(batch)["out"].float()
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            out = self.model(batch)["out"]
        return out.float()


def long_side_size(height, width, long_side):
    """[h, w] with the long side `long_side` and the aspect kept, rounded as the authors'
    test.py does (Python's round): 500x375 at 400 -> [300, 400]."""
    if height > width:
        return [long_side, round(long_side / height * width)]
    return [round(long_side / width * height), long_side]


def _input(image_rgb, resize, device):
    """The normalised 1 x 3 x h x w network input. On a GPU the uint8 image is uploaded and
    normalised there (a quarter of the bytes to copy): with numpy normalising on one core,
    whole-image PSPNet-50 at 1024x2048 on an H200 ran 10.6 images/s in fp32, 23.8 this way."""
    image, _ = resize_pair(image_rgb, None, resize)
    if torch.device(device).type == "cpu":
        return to_tensors(image)[None]
    return normalize_batch(torch.from_numpy(np.ascontiguousarray(image))[None].to(device)).contiguous()


def _whole(run, x, size, flip, pair_batch, fuse="probs"):
    """Probabilities of whole images x (N x 3 x h x w) at `size`. Logits are resized before
    the softmax, as the pipeline always did (shards equal full-resolution logits' softmax).
    fuse "logits": the flip pair's logits are averaged, then the softmax taken."""
    def scores_of(batch):
        logits = run(batch)
        if logits.shape[-2:] != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits if fuse == "logits" else F.softmax(logits, dim=1)

    if not flip:
        mean = scores_of(x)
    elif pair_batch:
        n = x.shape[0]
        both = scores_of(torch.cat([x, x.flip(-1)]))
        mean = (both[:n] + both[n:].flip(-1)) / 2
    else:
        # Separate forwards on CPU: bit-identical to the original pipeline, and a batch of two
        # is no faster there.
        mean = (scores_of(x) + scores_of(x.flip(-1)).flip(-1)) / 2
    return F.softmax(mean, dim=1) if fuse == "logits" else mean


def _slide(run, x, window, stride, flip, batch_windows, fuse="probs"):
    """Window-averaged probabilities (C x h x w) of one normalised image x (1 x 3 x h x w);
    fuse "logits": window-averaged logits (the caller takes the softmax)."""
    h, w = x.shape[-2:]
    wh, ww = window
    pad_h, pad_w = max(wh - h, 0), max(ww - w, 0)
    top, left = pad_h // 2, pad_w // 2
    if pad_h or pad_w:
        x = F.pad(x, (left, pad_w - left, top, pad_h - top))  # zeros = mean colour (docstring)
    hp, wp = x.shape[-2:]
    corners = window_grid(hp, wp, window, stride)
    acc, count = None, torch.zeros((hp, wp), dtype=torch.float32, device=x.device)
    for i in range(0, len(corners), batch_windows):
        chunk = corners[i:i + batch_windows]
        crops = torch.cat([x[..., y:y + wh, c:c + ww] for y, c in chunk])
        n = crops.shape[0]
        if flip:
            crops = torch.cat([crops, crops.flip(-1)])
        logits = run(crops)
        if logits.shape[-2:] != (wh, ww):
            logits = F.interpolate(logits, size=(wh, ww), mode="bilinear", align_corners=False)
        probs = logits if fuse == "logits" else F.softmax(logits, dim=1)
        if flip:
            probs = (probs[:n] + probs[n:].flip(-1)) / 2
        if acc is None:
            acc = torch.zeros((probs.shape[1], hp, wp), dtype=torch.float32, device=x.device)
        for p, (y, c) in zip(probs, chunk):
            acc[:, y:y + wh, c:c + ww] += p
            count[y:y + wh, c:c + ww] += 1
    return (acc / count)[:, top:top + h, left:left + w]


def _check(mode, batch_windows):
    if mode not in MODES:
        raise DarsError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(batch_windows, int) or batch_windows < 1:
        raise DarsError(f"batch_windows must be a positive integer, got {batch_windows!r}")


@torch.no_grad()
def predict_probs(model, image_rgb, resize=None, flip=True, device="cpu", *, mode="whole", window=None, stride=None,
                  batch_windows=8, amp="auto", channels_last="auto", fuse="probs"):
    """Softmax probabilities (C x H x W, float32, on `device`) at the image's own resolution.

    The model sees the image (H x W x 3 RGB uint8) resized to `resize` ([h, w]; None keeps
    it). mode "whole": one forward of the whole image, logits resized back before the softmax
    (exactly the original pipeline on CPU with amp off). mode "slide": windows of `window`
    ([h, w] or int; the training crop) every `stride` (default ceil(2/3 window)), window
    probabilities averaged, then resized back to H x W. `flip` averages with the mirrored input.
    `batch_windows` windows (and their flips) share a forward. `amp`: "auto" (bf16 on CUDA),
    "bf16" or "off"; `channels_last`: "auto" (on CUDA in slide mode), True or False.
    `fuse` "probs" averages softmax probabilities over the flip and the windows (the paper's
    evaluation); "logits" averages logits, resizes them, then takes one softmax (the authors'
    pseudo-label generation: evaluate.teacher_fusion). resize, flip and device may be given by
    position: predict_probs(model, image, resize, flip, device)."""
    _check(mode, batch_windows)
    if fuse not in FUSIONS:
        raise DarsError(f"teacher_fusion must be one of {FUSIONS}, got {fuse!r}")
    run = _Runner(model, device, amp, channels_last, mode)
    h, w = image_rgb.shape[:2]
    x = _input(image_rgb, resize, device)
    if mode == "whole":
        return _whole(run, x, (h, w), flip, pair_batch=run.device.type == "cuda", fuse=fuse)[0].contiguous()
    window = as_size(window, "window (slide mode: the training crop)")
    stride = default_stride(window) if stride is None else as_size(stride, "stride")
    probs = _slide(run, x, window, stride, flip, batch_windows, fuse)
    if probs.shape[-2:] != (h, w):
        # Probabilities, not logits, are resized to the label resolution (method.md §4);
        # bilinear weights are convex, so every pixel still sums to one.
        probs = F.interpolate(probs[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return (F.softmax(probs, dim=0) if fuse == "logits" else probs).contiguous()


def describe(mode, resize=None, window=None, stride=None, flip=True, native=None, resize_long=None):
    """The protocol in words, as miou.json records it, e.g. "slide 361x361 stride 241x241 at
    512x1024, flip", "slide 321x321 stride 214x214 at long side 400, flip" or "whole image at
    128x256 (native), flip". `native`: the images' own size(s) when `resize` is None."""
    if resize_long:
        at = f" at long side {resize_long}"
    elif resize:
        at = f" at {resize[0]}x{resize[1]}"
    else:
        sizes = sorted({tuple(s) for s in native or ()})
        at = f" at {'/'.join(f'{a}x{b}' for a, b in sizes)} (native)" if sizes else " at native size"
    if mode == "slide":
        window = as_size(window, "window")
        stride = default_stride(window) if stride is None else as_size(stride, "stride")
        what = f"slide {window[0]}x{window[1]} stride {stride[0]}x{stride[1]}"
    else:
        what = "whole image"
    return what + at + (", flip" if flip else "")


def precision(device, amp="auto", channels_last="auto", mode="slide"):
    """How the network ran, in words: e.g. "bf16 autocast, channels_last" or "fp32"."""
    dtype = resolve_amp(amp, device)
    words = ["bf16 autocast" if dtype is not None else "fp32"]
    if _channels_last(channels_last, device, mode):
        words.append("channels_last")
    return ", ".join(words)


def load_model(ckpt_path, device):
    """Model of a checkpoint, in eval mode (on CUDA with BatchNorm folded into the convolutions),
    plus the checkpoint dict (without weights)."""
    ckpt = read_checkpoint(ckpt_path)
    model = build_model(ckpt["model_name"], ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    if torch.device(device).type == "cuda":
        model = fold_batchnorm(model)  # same function, fewer memory passes (dars/models/fold.py)
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    return model, meta


def resolve_window(mode, window, meta):
    """Slide mode's window: the configured one, else the checkpoint's training crop (the
    paper's protocol); None in whole mode."""
    if mode != "slide":
        return None
    if window is None:
        window = (meta.get("settings") or {}).get("crop")
        if window is None:
            raise DarsError("slide inference needs a window: set evaluate.window, or use a checkpoint "
                            "that records its training crop")
    return as_size(window, "evaluate.window")


@dataclass
class Predictor:
    """A checkpoint loaded for a stage's predictions. infer, evaluate and export share it, so an
    exported PNG is exactly the prediction that evaluate scores."""
    model: torch.nn.Module
    meta: dict                 # the checkpoint without its weights
    device: torch.device
    workers: int               # image-decoding processes (dars.runtime.for_inference)
    settings: PredictSettings
    window: tuple | None       # slide mode: the settings' window, else the training crop

    def probs(self, image, fuse="probs"):
        """predict_probs of one image with the stage's settings."""
        s = self.settings
        resize = long_side_size(*image.shape[:2], s.resize_long) if s.resize_long else s.resize
        return predict_probs(self.model, image, resize, s.flip, self.device, mode=s.mode, window=self.window,
                             batch_windows=s.batch_windows, amp=s.amp, channels_last=s.channels_last, fuse=fuse)

    def train_ids(self, image, size):
        """Argmax train ids (H x W tensor) at `size`, the label's resolution: probabilities are
        resized there before the argmax (§4), never the argmax map."""
        probs = self.probs(image)
        if probs.shape[-2:] != size:
            probs = F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
        return probs.argmax(0)

    def protocol(self, native):
        """The protocol in words (describe); `native`: the image sizes seen."""
        s = self.settings
        return describe(s.mode, s.resize, self.window, flip=s.flip, native=native, resize_long=s.resize_long)

    def precision(self):
        s = self.settings
        return precision(self.device, s.amp, s.channels_last, s.mode)


def load_predictor(ckpt, settings=None, threads=None) -> Predictor:
    """The checkpoint on this process's device (`settings`: a PredictSettings or its dict)."""
    settings = PredictSettings.of(settings)
    device, workers = runtime.for_inference(threads)
    model, meta = load_model(ckpt, device)
    return Predictor(model, meta, device, workers, settings, resolve_window(settings.mode, settings.window, meta))
