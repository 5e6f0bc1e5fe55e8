"""BatchNorm folded into the convolution before it, for inference on a GPU.

In eval mode a BatchNorm is a fixed per-channel affine map, so conv -> BN equals one conv with
rescaled weights and a bias. Folding drops a full read and write of every normalised feature
map; at output stride 8 those maps are large (PSPNet-50's layer4: 2048 x 90 x 90 per 713-px
window) and such memory-bound passes, not the convolutions' arithmetic, bound bf16 inference.
The folded model computes the same function up to float rounding; CPU inference keeps the
unfolded model so its results stay bit-identical to earlier runs."""
import copy

import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _pairs(module):
    """(conv name, bn name) of `module`'s direct children where the BN reads only that conv's
    output: neighbours in a Sequential, and torchvision ResNet blocks' convK/bnK."""
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        return [(a, b) for a, b in zip(names, names[1:])
                if isinstance(children[a], nn.Conv2d) and type(children[b]) is nn.BatchNorm2d]
    return [("conv" + name[2:], name) for name, child in children.items()
            if name.startswith("bn") and type(child) is nn.BatchNorm2d
            and isinstance(children.get("conv" + name[2:]), nn.Conv2d)]


def fold_batchnorm(model):
    """An eval-mode copy of `model` with every foldable BatchNorm2d merged into its conv (and
    replaced by Identity); the number folded is in `.folded_batchnorms`."""
    model = copy.deepcopy(model).eval()
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in _pairs(module):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    model.folded_batchnorms = folded
    return model

