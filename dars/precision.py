"""How a network runs on its device: the `amp` and `channels_last` settings shared by training
(dars.train) and inference (dars.slide), resolved in one place so they mean the same thing."""
import torch

from .io import DarsError


def resolve_amp(value, device):
    """`amp` -> autocast dtype, or None for float32. auto: bf16 on CUDA (where supported),
    float32 on CPU, where bf16 is slower. YAML reads a bare `off` as False."""
    device = torch.device(device)
    if value in (None, "auto"):
        if device.type != "cuda":
            return None
        # GPUs before Ampere emulate bf16 slowly: fall back to float32 there.
        return None if torch.cuda.is_available() and not torch.cuda.is_bf16_supported() else torch.bfloat16
    if value in ("off", False):
        return None
    if value == "bf16":
        return torch.bfloat16
    raise DarsError(f"amp={value!r} unknown: use 'auto', 'bf16' or 'off'")


def resolve_channels_last(value, device, auto=None):
    """`channels_last` -> bool. auto: `auto` if given (inference decides per mode), else on CUDA."""
    if value in (None, "auto"):
        return torch.device(device).type == "cuda" if auto is None else auto
    if isinstance(value, bool):
        return value
    raise DarsError(f"channels_last={value!r} unknown: use 'auto', true or false")
