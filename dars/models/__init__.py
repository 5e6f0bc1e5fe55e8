"""Segmentation models by name. Every model returns {"out": logits at input size} and, when it
has an auxiliary head, {"aux": ...} in training mode; `backbone_parameters()` get the base
learning rate and `head_parameters()` the multiplied one."""
from functools import partial

from ..io import DarsError
from .lite import LiteSeg
from .pspnet import DeepLabV2, DeepLabV2Authors, PSPNet

MODELS = {
    "lite": partial(LiteSeg, width=16),
    "lite24": partial(LiteSeg, width=24),
    "lite32": partial(LiteSeg, width=32),
    "pspnet50": partial(PSPNet, layers=50),
    "deeplabv2_r101": partial(DeepLabV2, layers=101),
    "deeplabv2_r101_authors": partial(DeepLabV2Authors, layers=101),  # their quirks (pspnet.py)
}


def build_model(name, num_classes):
    if name not in MODELS:
        raise DarsError(f"model {name!r} is unknown; choose one of {sorted(MODELS)} (config key train.model)")
    return MODELS[name](num_classes)
