"""Sliding-window + flip inference (dars.slide): window placement, coverage, padding, batching,
flip averaging, and that whole-image mode is the pipeline's original computation bit for bit."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dars import slide
from dars.data.cityscapes import find_pairs
from dars.data.transforms import resize_pair, to_tensors
from dars.evaluate import evaluate_stage
from dars.infer import infer_stage
from dars.io import DarsError
from dars.models import build_model
from dars.settings import PredictSettings
from dars.shards import Shard
from dars.slide import resolve_window

C = 19


class ConvModel(nn.Module):
    """One zero-padded 3x3 convolution with random (mirror-asymmetric) weights: translation-
    equivariant, so padding the input with zeros changes nothing inside the image."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, C, 3, padding=1)

    def forward(self, x):
        return {"out": self.conv(x)}


class ConstantModel(nn.Module):
    def forward(self, x):
        return {"out": torch.zeros(x.shape[0], C, *x.shape[-2:])}


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def lite(seed=0):
    torch.manual_seed(seed)
    model = build_model("lite", C).eval()
    with torch.no_grad():  # non-trivial BN statistics, so the model is not near-constant
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model


def mirror(t):
    return t.flip(-1)


def test_stride_is_two_thirds_of_the_window_rounded_up():
    assert slide.default_stride((361, 713)) == (241, 476)
    assert slide.default_stride((48, 48)) == (32, 32)
    assert slide.default_stride((1, 2)) == (1, 2)


def test_window_starts_end_at_the_far_edge():
    assert slide.window_starts(100, 48, 32) == [0, 32, 52]
    assert slide.window_starts(48, 48, 32) == [0]
    assert slide.window_starts(49, 48, 32) == [0, 1]
    assert slide.window_starts(112, 48, 32) == [0, 32, 64]
    assert slide.window_starts(1024, 713, 476) == [0, 311]
    assert slide.window_starts(2048, 713, 476) == [0, 476, 952, 1335]


@pytest.mark.parametrize("window", [1, 7, 48, 97])
def test_windows_cover_every_pixel_without_duplicates(window):
    stride = slide.default_stride((window, window))[0]
    for size in range(window, window + 260, 3):
        starts = slide.window_starts(size, window, stride)
        assert starts[0] == 0 and starts[-1] == size - window
        gaps = np.diff(starts)
        assert (gaps > 0).all() and (gaps <= stride).all()
        covered = np.zeros(size, int)
        for s in starts:
            covered[s:s + window] += 1
        assert covered.min() >= 1


def test_constant_logits_give_uniform_probabilities_everywhere():
    for h, w in [(100, 70), (30, 130), (48, 48), (17, 23)]:
        probs = slide.predict_probs(ConstantModel(), image(h, w), mode="slide", window=48)
        assert probs.shape == (C, h, w) and not probs.isnan().any()
        assert torch.allclose(probs, torch.full_like(probs, 1 / C), atol=1e-7)


def test_window_equal_to_the_image_is_whole_image_inference():
    model, im = lite(), image(48, 96)
    for flip in (False, True):
        whole = slide.predict_probs(model, im, flip=flip)
        slid = slide.predict_probs(model, im, mode="slide", window=(48, 96), flip=flip)
        assert torch.allclose(whole, slid, atol=1e-5)


def test_images_smaller_than_the_window_are_padded_and_cropped_back():
    model = ConvModel()
    for h, w, window in [(30, 40, (48, 64)), (47, 47, 48), (20, 48, 48)]:
        im = image(h, w, seed=h + w)
        for flip in (False, True):
            whole = slide.predict_probs(model, im, flip=flip)
            slid = slide.predict_probs(model, im, mode="slide", window=window, flip=flip)
            assert slid.shape == (C, h, w)
            # Zero padding (the mean colour) is what the zero-padded convolution sees at the
            # image border anyway, so the crop back must match to the pixel.
            assert torch.allclose(whole, slid, atol=1e-6)
    # Padded along one axis only, several windows along the other.
    probs = slide.predict_probs(lite(), image(30, 100), mode="slide", window=48)
    assert probs.shape == (C, 30, 100)
    assert torch.allclose(probs.sum(0), torch.ones(30, 100), atol=1e-5)


def test_batch_windows_does_not_change_the_result():
    model, im = lite(), image(100, 150)
    one = slide.predict_probs(model, im, mode="slide", window=48, batch_windows=1)
    eight = slide.predict_probs(model, im, mode="slide", window=48, batch_windows=8)
    three = slide.predict_probs(model, im, mode="slide", window=48, batch_windows=3)
    assert torch.allclose(one, eight, atol=1e-5) and torch.allclose(one, three, atol=1e-5)
    assert torch.allclose(one.sum(0), torch.ones(100, 150), atol=1e-5)


def test_flip_is_the_mirror_average():
    model, im = ConvModel(seed=3), image(48, 112)  # windows at 0, 32, 64: a mirror-symmetric grid
    kw = dict(mode="slide", window=48)
    plain = slide.predict_probs(model, im, flip=False, **kw)
    mirrored = mirror(slide.predict_probs(model, np.ascontiguousarray(im[:, ::-1]), flip=False, **kw))
    flipped = slide.predict_probs(model, im, flip=True, **kw)
    assert not torch.allclose(plain, mirrored, atol=1e-3)  # the model is not mirror-symmetric
    assert torch.allclose(flipped, (plain + mirrored) / 2, atol=1e-6)
    # Whole-image flip: the same identity with one window.
    whole = slide.predict_probs(model, im, flip=True)
    by_hand = (slide.predict_probs(model, im, flip=False)
               + mirror(slide.predict_probs(model, np.ascontiguousarray(im[:, ::-1]), flip=False))) / 2
    assert torch.allclose(whole, by_hand, atol=1e-6)


@torch.no_grad()
def original_predict_probs(model, image_rgb, resize=None, flip=True, device="cpu"):
    """The pipeline's whole-image inference before dars.slide existed, kept as the reference."""
    h, w = image_rgb.shape[:2]
    x = to_tensors(resize_pair(image_rgb, None, resize)[0])[None].to(device)

    def probs_of(batch):
        logits = model(batch)["out"].float()
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return F.softmax(logits, dim=1)

    probs = probs_of(x)
    if flip:
        probs = (probs + probs_of(x.flip(-1)).flip(-1)) / 2
    return probs[0]


@pytest.mark.parametrize("resize, flip", [(None, True), ((32, 64), True), ((32, 64), False)])
def test_whole_mode_is_bit_identical_to_the_original(resize, flip):
    model, im = lite(), image(48, 96)
    expected = original_predict_probs(model, im, resize, flip)
    assert torch.equal(slide.predict_probs(model, im, resize=resize, flip=flip), expected)
    assert torch.equal(slide.predict_probs(model, im, resize, flip, "cpu"), expected)  # positional call style


def test_slide_at_a_resize_returns_probabilities_at_the_image_size():
    model, im = lite(), image(60, 100)
    probs = slide.predict_probs(model, im, (40, 72), True, "cpu", mode="slide", window=(32, 48))
    assert probs.shape == (C, 60, 100) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(0), torch.ones(60, 100), atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="slide", window=0), "window"),
    (dict(mode="slide", window=-3), "window"),
    (dict(mode="slide", window=[48, 0]), "window"),
    (dict(mode="slide", window=[48]), "window"),
    (dict(mode="slide", window=None), "window"),
    (dict(mode="slide", window=48, stride=0), "stride"),
    (dict(mode="tiles"), "mode"),
    (dict(mode="slide", window=48, batch_windows=0), "batch_windows"),
    (dict(amp="fp8"), "amp"),
    (dict(channels_last="yes"), "channels_last"),
])
def test_bad_settings_raise_a_clear_error(kwargs, message):
    with pytest.raises(DarsError, match=message):
        slide.predict_probs(ConstantModel(), image(20, 20), **kwargs)


def test_window_defaults_to_the_training_crop():
    assert resolve_window("slide", None, {"settings": {"crop": [48, 96]}}) == (48, 96)
    assert resolve_window("slide", 40, {"settings": {"crop": [48, 96]}}) == (40, 40)
    assert resolve_window("whole", None, {}) is None
    with pytest.raises(DarsError, match="evaluate.window"):
        resolve_window("slide", None, {})


def test_stages_run_the_sliding_window_at_the_training_crop(tiny_cityscapes, tmp_path):
    ckpt = tmp_path / "model.pt"
    torch.save({"model": lite().state_dict(), "model_name": "lite", "num_classes": C, "epochs": 1,
                "iteration": 1, "settings": {"crop": [24, 48]}}, ckpt)
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{i} {lab}\n" for i, lab in find_pairs(tiny_cityscapes, "train")[:2]))
    infer_stage(ckpt, tiny_cityscapes, listed, tmp_path / "shard", 1, 0, PredictSettings(mode="slide", batch_windows=2))
    meta, pred, conf = Shard(tmp_path / "shard").get(0)
    assert pred.shape == (32, 64) and conf.dtype == "float16" and 0 < conf.min() and conf.max() <= 1
    out = evaluate_stage(ckpt, tiny_cityscapes, tmp_path / "miou.json", PredictSettings(resize=(40, 80), mode="slide"))
    saved = json.loads((tmp_path / "miou.json").read_text())
    assert saved["protocol"] == "slide 24x48 stride 16x32 at 40x80, flip" == out["protocol"]
    assert saved["window"] == [24, 48] and saved["stride"] == [16, 32] and saved["precision"] == "fp32"
    whole = evaluate_stage(ckpt, tiny_cityscapes, tmp_path / "whole.json", {"flip": False})
    assert whole["protocol"] == "whole image at 32x64 (native)" and whole["window"] is None


def test_protocol_names_what_was_done():
    assert slide.describe("slide", (512, 1024), 361) == "slide 361x361 stride 241x241 at 512x1024, flip"
    assert slide.describe("whole", (128, 256)) == "whole image at 128x256, flip"
    assert slide.describe("whole", None, flip=False, native={(64, 128)}) == "whole image at 64x128 (native)"
    assert slide.precision("cpu") == "fp32"
    assert slide.precision("cuda", "auto", "auto", "slide") == "bf16 autocast, channels_last"
    assert slide.precision("cuda", "auto", "auto", "whole") == "bf16 autocast"
    assert slide.precision("cuda", "off", True, "whole") == "fp32, channels_last"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_agrees_with_fp32():
    model, im = lite().cuda(), image(100, 150)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # a float32 reference to compare bf16 with
    try:
        _compare_on_cuda(model, im)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def _compare_on_cuda(model, im):
    # Normalisation on the GPU (uint8 upload) is the CPU path's arithmetic.
    assert torch.allclose(slide._input(im, None, "cuda").cpu(), to_tensors(im)[None], atol=1e-6)
    kw = dict(mode="slide", window=48, device="cuda")
    ref = slide.predict_probs(model, im, amp="off", channels_last=False, **kw)
    cpu = slide.predict_probs(lite(), im, mode="slide", window=48)
    assert torch.allclose(ref.cpu(), cpu, atol=1e-4)
    fast = slide.predict_probs(model, im, **kw)  # auto: bf16 + channels_last
    assert fast.dtype == torch.float32 and fast.shape == ref.shape
    assert (fast - ref).abs().max() < 0.05
    assert (fast.argmax(0) == ref.argmax(0)).float().mean() > 0.97
    whole = slide.predict_probs(model, im, device="cuda", amp="off", channels_last=False)
    assert torch.allclose(whole.cpu(), slide.predict_probs(lite(), im), atol=1e-4)
