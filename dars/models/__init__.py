"""Segmentation models by name. Every model returns {"out": logits at input size} and, when it
has an auxiliary head, {"aux": ...} in training mode; `backbone_parameters()` get the base
learning rate and `head_parameters()` the multiplied one."""
from ..io import DarsError
from .lite import LiteSeg

MODELS = {
    "lite": LiteSeg,
}


def build_model(name, num_classes):
    if name not in MODELS:
        raise DarsError(f"model {name!r} is unknown; choose one of {sorted(MODELS)} (config key train.model)")
    return MODELS[name](num_classes)
