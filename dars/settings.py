"""The settings of the network stages, built once and passed on as objects.

TrainSettings    one training run, as dars.config.train_settings resolves it (the `--settings`
                 JSON of `python -m dars train`). `to_dict()` gives back exactly the dict it was
                 built from (keys, their order, the value objects), which is what checkpoints
                 store and what the resume fingerprint digests, so neither changes.
PredictSettings  how infer, evaluate and export run the network (the `--settings` JSON of
                 those commands): resize, flip, mode, window, batch_windows, amp,
                 channels_last, teacher_fusion, resize_long."""
import argparse
import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields

from .io import DarsError


def json_argument(text):
    """argparse type of a JSON option."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None


RUNTIME_ONLY = ("compile",)  # settings that change how, not what, a run computes


@dataclass(frozen=True)
class TrainSettings:
    """One training run (dars.train); built with TrainSettings.of(settings dict)."""
    model: str
    num_classes: int
    seed: int
    round: int
    mode: str                  # pretrain | pseudo | supervised
    epochs: int
    batch_size: int            # the global batch (all ranks together)
    base_lr: float
    head_lr_mult: float
    momentum: float
    weight_decay: float
    poly_power: float
    aux_weight: float
    crop: list
    scale_range: list
    rotate: float
    blur: bool
    flip: bool
    resize: list | None        # the dataset's (None: the images' own size)
    checkpoint_every: int | None = None  # steps between work_dir/last.pt saves (None: epoch ends only)
    workers: int | str | None = "auto"   # DataLoader processes (dars.runtime.resolve_workers)
    backbone_weights: str | None = None
    reinit: bool = False       # round >= 1: start from backbone_weights, not the teacher
    steps: int | None = None   # round 0: fixed length whatever the labeled set's size
    # Written by dars.config only when they differ from these defaults:
    amp: str | bool | None = "auto"
    channels_last: str | bool | None = "auto"
    compile: bool = False
    blur_kernel: int | None = None
    crop_pad: str = "end"
    scale_reference: str = "input"
    # The source dict's keys in its order (the key objects themselves: pickled checkpoints
    # memoise strings by identity) and the keys this class does not know, with their values.
    keys: tuple = field(default=(), repr=False, compare=False)
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, settings):
        """A TrainSettings as it is, or one built from a settings dict."""
        if isinstance(settings, cls):
            return settings
        names = {f.name for f in fields(cls)} - {"keys", "extra"}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
                    and f.name in names]
        missing = [k for k in required if k not in settings]
        if missing:
            raise DarsError(f"train settings lack {', '.join(missing)} (resolve them with dars.config.train_settings)")
        return cls(**{k: v for k, v in settings.items() if k in names}, keys=tuple(settings),
                   extra={k: v for k, v in settings.items() if k not in names})

    def to_dict(self):
        """The settings dict: the source's keys and values, then the fields the source did not
        have that are required or set to a non-default value (as dars.config writes them)."""
        out = {k: self.extra[k] if k in self.extra else getattr(self, k) for k in self.keys}
        for f in fields(self):
            if f.name in out or f.name in ("keys", "extra"):
                continue
            if f.default is MISSING or getattr(self, f.name) != f.default:
                out[f.name] = getattr(self, f.name)
        return out

    def digest(self):
        """sha256 of what the run computes: every setting but RUNTIME_ONLY (resume fingerprint)."""
        what = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_ONLY}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


PREDICT_HELP = ('{"resize": [H, W], "resize_long": N (the long side, instead of resize), "flip": true, '
                '"mode": "whole"|"slide", "window": [H, W] or null (= training crop), '
                '"batch_windows": 8, "amp": "auto"|"bf16"|"off", "channels_last": "auto"|true|false}')


@dataclass(frozen=True)
class PredictSettings:
    """dars.slide.predict_probs's options, for a whole stage (a window of None in slide mode is
    the checkpoint's training crop; teacher_fusion: how infer fuses the flip and the windows,
    evaluate and export always average probabilities)."""
    resize: list | None = None
    flip: bool = True
    mode: str = "whole"
    window: list | int | None = None
    batch_windows: int = 8
    amp: str | bool | None = "auto"
    channels_last: str | bool | None = "auto"
    teacher_fusion: str = "probs"
    resize_long: int | None = None   # the long side resized to this (the authors' base_size), aspect kept

    @classmethod
    def of(cls, settings=None):
        """A PredictSettings as it is, or one from the `--settings` dict (None: the defaults)."""
        if isinstance(settings, cls):
            return settings
        settings = settings or {}
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise DarsError(f"prediction settings {unknown} unknown: use {names}")
        if settings.get("resize") and settings.get("resize_long"):
            raise DarsError("prediction settings: resize (a fixed [H, W]) and resize_long (the long side) "
                            "exclude each other; set one (evaluate.resize_long, datasets.<name>.resize)")
        return cls(**settings)
