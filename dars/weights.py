"""Where backbone weight files live, which file the authors start each model from, and what a
run that starts elsewhere records as a departure.

`train.backbone_weights` is one of:
- a bare file name (no folder), e.g. `resnet50_v2.pth`: the file in the weights folder, which
  is $DARS_WEIGHTS when set, else `weights/` in the working directory (the repository root
  for `snakemake` run there, which keeps config.yaml beside it);
- a path (with a folder): that file;
- `torchvision` (`imagenet` is the older name): torchvision's cached ImageNet ResNet file;
- null: no backbone file (the embedded lite models).

The authors' files (CVMI-Lab/DARS README, "Initialization weights"): PSPNet-50 starts from
semseg's deep-stem `resnet50_v2.pth`, DeepLabv2 from torchvision's `resnet101-5d3b4d8f.pth`.
A file named like one of them must have that file's layout: a torchvision ResNet-50 saved
as `resnet50_v2.pth` is refused (dars.models.pspnet.load_backbone)."""
import os
from pathlib import Path

from .io import DarsError

WEIGHTS_ENV = "DARS_WEIGHTS"
DEFAULT_FOLDER = "weights"
TORCHVISION = ("torchvision", "imagenet")
SEMSEG_URL = "https://drive.google.com/drive/folders/1Hrz1wOxOZm4nIIS7UMJeL79AQrdvpj6v"
# file name -> (its layout, where the authors' README says to get it)
AUTHORS_FILES = {
    "resnet50_v2.pth": ("semseg", f"semseg's ImageNet models ({SEMSEG_URL})"),
    "resnet101_v2.pth": ("semseg", f"semseg's ImageNet models ({SEMSEG_URL})"),
    "resnet101-5d3b4d8f.pth": ("torchvision", "https://download.pytorch.org/models/resnet101-5d3b4d8f.pth"),
}
# model -> the file the authors start it from
AUTHORS_START = {
    "pspnet50": "resnet50_v2.pth",
    "deeplabv2_r101": "resnet101-5d3b4d8f.pth",
    "deeplabv2_r101_authors": "resnet101-5d3b4d8f.pth",
}


def weights_folder():
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_FOLDER)


def is_file_setting(value):
    """A setting that names a file (not null, not torchvision's cached file)."""
    return value is not None and value not in TORCHVISION


def resolve(value):
    """The path a file setting names: a bare name in the weights folder, a path as it is."""
    return weights_folder() / value if Path(value).name == value else Path(value)


def expected_layout(value):
    """The layout a file named like one of the authors' must have, else None."""
    return AUTHORS_FILES.get(Path(value).name, (None, None))[0] if is_file_setting(value) else None


def check_present(value, key):
    """At plan time: the file a setting names exists, else one error naming it, where it goes,
    where to get it and the opt-out (`key`: the config key that set it)."""
    if not is_file_setting(value):
        return
    path = resolve(value)
    if path.is_file():
        return
    name = Path(value).name
    where = (f"put it at {path} (the weights folder: ${WEIGHTS_ENV} when set, else {DEFAULT_FOLDER}/ in the "
             "working directory)" if Path(value).name == value else f"put it at {path}")
    source = AUTHORS_FILES.get(name, (None, None))[1]
    get = f"; the authors' README (CVMI-Lab/DARS, 'Initialization weights') gets it from {source}" if source else ""
    raise DarsError(f"{key}: backbone weights file {name} not found: {where}{get}. Or set {key}: torchvision "
                    "(torchvision's ImageNet file, no deep stem: recorded as a departure in miou.json and the "
                    "table captions)")


def departure(model, value):
    """A run's departure from the authors' starting weights, in words, or None (also None for
    models the authors do not have, such as the embedded lite ones)."""
    wanted = AUTHORS_START.get(model)
    if wanted is None or (is_file_setting(value) and Path(value).name == wanted):
        return None
    got = "no backbone file (random)" if value is None else (
        "torchvision's ImageNet file" if value in TORCHVISION else Path(value).name)
    return f"backbone_weights: {got}, the authors start {model} from {wanted}"
