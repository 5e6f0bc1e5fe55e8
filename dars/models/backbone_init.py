"""Backbone initialisation from a ResNet checkpoint file, with a report of what it initialised.

The file's layout is read from its keys, after unwrapping `{"state_dict": ...}` / `{"model": ...}`
and stripping the prefixes `module.` (DataParallel), `backbone.` and `Scale.` (the Caffe-converted
DeepLab files) from every key:

- `semseg`: the deep-stem ResNet of the PSPNet authors' code base (hszhao/semseg,
  `resnet50_v2.pth` / `resnet101_v2.pth`): `conv1/bn1` 3->64 (stride 2), `conv2/bn2` 64->64,
  `conv3/bn3` 64->128, `layer1..4`, `fc`. Into PSPNet's deep stem: every tensor.
- `torchvision`: `conv1` (7x7) / `bn1`, `layer1..4`, `fc`. Into DeepLabv2: every tensor. Into a
  deep stem there is no counterpart for `conv1/bn1` nor for `layer1.0.conv1` and
  `layer1.0.downsample.0` (64 input channels in the file, 128 after the deep stem): the stem's
  15 tensors and those 2 stay random, reported by name.
- `deeplabv2`: the Caffe-converted DeepLab-v2 ResNet-101 of the UDA code bases (AdaptSegNet,
  AdvEnt, DACS, ...: `Res_Deeplab` / `ResNetMulti` / `DeeplabMulti`): torchvision's names for
  `conv1/bn1/layer1..4`, no `fc`, classifiers `layer5` / `layer6` (`conv2d_list.*`, not loaded:
  they are heads), often under `Scale.` or `module.`. Their weights expect those code bases'
  preprocessing (BGR, mean subtracted, no std) and Caffe's blocks stride in conv1; the log says so.
- `dars`: this project's own names (`stem.*`, `layer*`; e.g. a dars checkpoint's `model`).

`num_batches_tracked` is loaded where the file has it, but counted nowhere (a counter, not a
weight; older files do not store it). A file whose tensors do not fit (another depth, another
block type, another stem) is refused with one DarsError naming the file and the first bad key
with both shapes; nothing is loaded then.

The report (printed, returned, stored as `backbone_init` in the training checkpoint and miou.json):
{"file", "layout", "loaded": N, "total": N + len(random), "random": [backbone tensor names the
file did not initialise], "unused": [file keys, as the file names them, that initialised nothing]}."""
import re

import torch

from ..io import DarsError

PREFIXES = ("module.", "backbone.", "Scale.")
LAYOUTS = ("semseg", "torchvision", "deeplabv2", "dars")
_LAYER = re.compile(r"^layer([1-4])\.(\d+)\.")
_SEMSEG_STEM = re.compile(r"^(conv|bn)([123])\.(.+)$")
_COUNTER = "num_batches_tracked"
# A single-conv-stem file's tensors that have no counterpart in a deep-stem backbone.
_DEEP_STEM_ONLY = ("layer1.0.conv1.weight", "layer1.0.downsample.0.weight")


def _tensor_dict(obj):
    return isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap(obj, source):
    """The state dict inside a loaded file: the object itself or its "state_dict" / "model"
    entry (a training checkpoint)."""
    if _tensor_dict(obj):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if _tensor_dict(obj.get(key)):
                return obj[key]
    raise DarsError(f"{source}: not a ResNet state_dict (a dict of tensors, or a checkpoint with one under "
                    "'state_dict' or 'model'); set train.backbone_weights to such a file")


def strip_prefixes(state, source):
    """Keys without the wrappers' prefixes; returns (state, {stripped key: file key}, sorted
    prefixes seen)."""
    out, origin, seen = {}, {}, set()
    for key, value in state.items():
        name = key
        while name.startswith(PREFIXES):
            prefix = next(p for p in PREFIXES if name.startswith(p))
            seen.add(prefix)
            name = name[len(prefix):]
        if name in out:
            raise DarsError(f"{source}: keys {origin[name]!r} and {key!r} are the same tensor once the prefixes "
                            f"{PREFIXES} are stripped; keep one of them")
        out[name], origin[name] = value, key
    return out, origin, sorted(seen)


def detect_layout(keys, prefixes=()):
    """semseg, torchvision, deeplabv2 or dars, from the (prefix-stripped) key names; None when the
    keys hold no ResNet layer1..4."""
    keys = list(keys)
    if not any(_LAYER.match(k) for k in keys):
        return None
    top = {k.split(".", 1)[0] for k in keys}
    if "stem" in top:
        return "dars"
    if {"conv2", "conv3", "bn3"} <= top:
        return "semseg"
    if "fc" in top:
        return "torchvision"
    if top & {"layer5", "layer6"} or "Scale." in prefixes:
        return "deeplabv2"
    return "torchvision"  # torchvision's names without the classifier


def _target(layout, key, deep_stem):
    """The backbone's name for a file key, or None when it has no counterpart (then: unused)."""
    if _LAYER.match(key):
        if deep_stem and layout in ("torchvision", "deeplabv2") and key in _DEEP_STEM_ONLY:
            return None
        return key
    if layout == "dars":
        return key if key.startswith("stem.") else None
    m = _SEMSEG_STEM.match(key)
    if not m:
        return None  # fc, layer5/layer6 classifiers, anything else
    kind, index, rest = m.group(1), int(m.group(2)), m.group(3)
    if layout == "semseg":
        if deep_stem:
            return f"stem.{index - 1}.{0 if kind == 'conv' else 1}.{rest}"
        return f"stem.{0 if kind == 'conv' else 1}.{rest}" if index == 1 else None
    if index != 1 or deep_stem:  # conv1 7x7 / bn1: no counterpart in a deep stem
        return None
    return f"stem.{0 if kind == 'conv' else 1}.{rest}"


def _blocks(keys):
    blocks = {}
    for k in keys:
        m = _LAYER.match(k)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return {layer: len(b) for layer, b in blocks.items()}


def _shape(t):
    return list(t.shape)


def load_backbone_state(model, state, source="state_dict", log=print, expect=None):
    """Load a ResNet state dict (any layout above) into `model.backbone`. Prints and returns the
    report {"file", "layout", "loaded", "total", "random": [names], "unused": [file keys]}
    (`loaded` of `total` backbone tensors; `random`: the backbone's tensors the file did not
    initialise; `unused`: the file's keys that initialised nothing). `expect`: the layout the
    file must have (a file named like the authors'); another one is refused with the report of
    what it would have loaded, and nothing is loaded."""
    backbone = getattr(model, "backbone", None)
    own = backbone.state_dict() if isinstance(backbone, torch.nn.Module) else {}
    if not any(_LAYER.match(k) for k in own):
        raise DarsError(f"{source}: train.backbone_weights initialises a ResNet backbone; model "
                        f"{type(model).__name__} has none (set train.backbone_weights: null)")
    state, origin, prefixes = strip_prefixes(unwrap(state, source), source)
    layout = detect_layout(state, prefixes)
    if layout is None:
        raise DarsError(f"{source}: no ResNet layer1..4 keys (e.g. layer1.0.conv1.weight) even without the "
                        f"prefixes {PREFIXES}; first keys: {list(state)[:4]}")
    deep_stem = "stem.0.0.weight" in own
    file_blocks, own_blocks = _blocks(state), _blocks(own)
    for layer in (1, 2, 3, 4):
        if file_blocks.get(layer, 0) != own_blocks.get(layer, 0):
            raise DarsError(f"{source}: layer{layer} has {file_blocks.get(layer, 0)} blocks in this file "
                            f"({layout} layout) and {own_blocks.get(layer, 0)} in the model's backbone "
                            f"(a ResNet of another depth?); nothing loaded")
    mapped, unused = {}, []
    for key, value in state.items():
        name = _target(layout, key, deep_stem)
        if name is None or name not in own:
            if not key.endswith(_COUNTER):
                unused.append(origin[key])
            continue
        if own[name].shape != value.shape:
            raise DarsError(f"{source}: does not fit the backbone ({layout} layout, "
                            f"{'deep' if deep_stem else '7x7'} stem): first bad key {origin[key]!r} has shape "
                            f"{_shape(value)} in the file, {name!r} has {_shape(own[name])} in the model; "
                            "nothing loaded")
        mapped[name] = value
    counted = [k for k in own if not k.endswith(_COUNTER)]
    random = [k for k in counted if k not in mapped]
    report = {"file": str(source), "layout": layout, "loaded": len(counted) - len(random), "total": len(counted),
              "random": random, "unused": unused}
    if expect is not None and layout != expect:
        raise DarsError(f"{source}: a file of this name is the authors' {expect} layout, this one is {layout}; "
                        f"nothing loaded. It would have loaded: {describe(report, prefixes, deep_stem)}\n"
                        "Fetch the authors' file, or name this one for what it is (train.backbone_weights: "
                        "torchvision, or another file name)")
    result = backbone.load_state_dict(mapped, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    log(describe(report, prefixes, deep_stem))
    return report


def _names(names, limit=40):
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def describe(report, prefixes=(), deep_stem=False):
    """The log lines of a load report: what loaded, and (when any) what stayed random."""
    r = report
    line = (f"backbone init from {r['file']}: {r['layout']} layout"
            + (f" (stripped prefix: {' '.join(prefixes)})" if prefixes else "")
            + f", loaded {r['loaded']} of {r['total']} backbone tensors (num_batches_tracked not counted); "
            + f"unused file keys: {len(r['unused'])}" + (f" [{_names(r['unused'])}]" if r["unused"] else ""))
    if r["layout"] == "deeplabv2":
        line += ("\nbackbone init: note: the Caffe-converted DeepLab-v2 files were trained on BGR input minus "
                 "the mean (no division by the std, the UDA code bases' preprocessing); dars feeds RGB "
                 "normalised by ImageNet mean and std, and its blocks stride in conv2, Caffe's in conv1")
    if r["random"]:
        hint = (" (the deep stem has no counterpart in a single-conv-stem file; the authors' semseg "
                "resnet50_v2.pth initialises all of it)" if deep_stem and r["layout"] != "semseg" else "")
        line += f"\nbackbone init: {len(r['random'])} backbone tensors stay random{hint}: {_names(r['random'])}"
    return line
