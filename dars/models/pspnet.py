"""PSPNet-50 (Zhao et al. 2017) as used by the DARS paper, and DeepLabv2-ResNet-101.

PSPNet-50: ResNet-50 with a deep stem (three 3x3 convs 3->64->64->128), layer3 and layer4
dilated (2, 4) for output stride 8, pyramid pooling over bins (1, 2, 3, 6) with 512-channel
branches, head conv3x3 4096->512 + BN + ReLU + Dropout2d(0.1) + conv1x1, and an auxiliary
head on layer3 (1024->256->C) whose loss the trainer weights by `aux_weight` (0.4).
The backbones are torchvision's ResNets; ImageNet weights are loaded by `load_backbone`
(layouts and the load report: dars/models/backbone_init.py; where files live:
dars/weights.py).

Every upsampling (pyramid pooling branches, logits to the input size) uses
align_corners=True, as the authors' PSPNet and DeepLabv2 do: at their 8k+1 sizes (321, 361,
481, 713) the output pixel 8i then lies exactly on feature i; align_corners=False shifts
the logits by up to 3.4 px inside a 361 window."""
import pickle
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet50, resnet101

from .. import weights
from ..io import DarsError
from .backbone_init import load_backbone_state

ALIGN = True  # align_corners of every upsampling (module docstring)


def _dilate(layer, dilation):
    """PSPNet/DeepLab-style dilation: stride 1 and the same dilation in every block's 3x3 conv
    (torchvision's replace_stride_with_dilation keeps the first block at the previous rate)."""
    for name, m in layer.named_modules():
        if name.endswith("conv2"):
            m.stride, m.dilation, m.padding = (1, 1), (dilation, dilation), (dilation, dilation)
        elif name.endswith("downsample.0"):
            m.stride = (1, 1)
    return layer


def _dilated_resnet(depth):
    resnet = {50: resnet50, 101: resnet101}[depth](weights=None)
    _dilate(resnet.layer3, 2)
    _dilate(resnet.layer4, 4)
    return resnet


def _conv_bn_relu(cin, cout, k=3, stride=1, padding=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Backbone(nn.Module):
    """A dilated torchvision ResNet returning layer3 and layer4 features (output stride 8)."""

    def __init__(self, resnet, deep_stem):
        super().__init__()
        if deep_stem:
            self.stem = nn.Sequential(_conv_bn_relu(3, 64, stride=2), _conv_bn_relu(64, 64),
                                      _conv_bn_relu(64, 128), nn.MaxPool2d(3, 2, 1))
            # layer1's first block now receives 128 channels instead of 64.
            block = resnet.layer1[0]
            block.conv1 = nn.Conv2d(128, block.conv1.out_channels, 1, bias=False)
            block.downsample[0] = nn.Conv2d(128, block.downsample[0].out_channels, 1, bias=False)
        else:
            self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        c3 = self.layer3(x)
        return c3, self.layer4(c3)


class PyramidPooling(nn.Module):
    def __init__(self, cin, bins=(1, 2, 3, 6)):
        super().__init__()
        branch = cin // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), _conv_bn_relu(cin, branch, k=1, padding=0)) for b in bins)

    def forward(self, x):
        size = x.shape[-2:]
        # Adaptive average pooling reads a channels_last map slowly (on an H200, 43 of 67 ms of
        # a whole 1024x2048 image went to it); one NCHW copy is a single memory pass. A no-op
        # for NCHW input.
        planar = x.contiguous()
        return torch.cat([x] + [F.interpolate(s(planar), size, mode="bilinear", align_corners=ALIGN)
                                for s in self.stages], 1)


class PSPNet(nn.Module):
    def __init__(self, num_classes, layers=50, deep_stem=True):
        super().__init__()
        self.backbone = _Backbone(_dilated_resnet(layers), deep_stem)
        self.ppm = PyramidPooling(2048)
        self.head = nn.Sequential(_conv_bn_relu(4096, 512), nn.Dropout2d(0.1), nn.Conv2d(512, num_classes, 1))
        self.aux = nn.Sequential(_conv_bn_relu(1024, 256), nn.Dropout2d(0.1), nn.Conv2d(256, num_classes, 1))

    def backbone_parameters(self):
        return list(self.backbone.parameters())

    def head_parameters(self):
        return [p for m in (self.ppm, self.head, self.aux) for p in m.parameters()]

    def forward(self, x):
        size = x.shape[-2:]
        c3, c4 = self.backbone(x)
        out = {"out": F.interpolate(self.head(self.ppm(c4)), size, mode="bilinear", align_corners=ALIGN)}
        if self.training:
            out["aux"] = F.interpolate(self.aux(c3), size, mode="bilinear", align_corners=ALIGN)
        return out


class DeepLabV2(nn.Module):
    """DeepLabv2: dilated ResNet-101 (output stride 8) and an ASPP classifier that sums four
    3x3 convolutions with dilations 6, 12, 18, 24."""

    def __init__(self, num_classes, layers=101):
        super().__init__()
        self.backbone = _Backbone(_dilated_resnet(layers), deep_stem=False)
        self.aspp = nn.ModuleList(nn.Conv2d(2048, num_classes, 3, padding=d, dilation=d) for d in (6, 12, 18, 24))

    def backbone_parameters(self):
        return list(self.backbone.parameters())

    def head_parameters(self):
        return list(self.aspp.parameters())

    def forward(self, x):
        size = x.shape[-2:]
        _, c4 = self.backbone(x)
        logits = sum(branch(c4) for branch in self.aspp)
        return {"out": F.interpolate(logits, size, mode="bilinear", align_corners=ALIGN)}


class DeepLabV2Authors(DeepLabV2):
    """The authors' DeepLabv2 (CVMI-Lab/DARS model/deeplabv2.py, from AdvSemiSeg), quirks kept
    because their numbers depend on them:
    - the classifier sums only the dilation-6 and -12 branches (a `return` inside the loop of
      their Classifier_Module; the 18 and 24 branches never reach the output, so they are not
      built here), weights drawn from N(0, 0.01);
    - every BatchNorm's affine weight and bias are frozen (requires_grad False) at the file's
      values; the running statistics still update in training mode;
    - layer2's first block strides in its 1x1 conv1 (Caffe's ResNet), and the stem's max pool
      rounds up (ceil_mode);
    - parameter groups: stem, layer1-3 at the base learning rate, layer4 and the classifier at
      head_lr_mult (their index_split = 5)."""

    def __init__(self, num_classes, layers=101):
        nn.Module.__init__(self)
        resnet = _dilated_resnet(layers)
        resnet.maxpool.ceil_mode = True
        first = resnet.layer2[0]
        first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
        self.backbone = _Backbone(resnet, deep_stem=False)
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)
        self.aspp = nn.ModuleList(nn.Conv2d(2048, num_classes, 3, padding=d, dilation=d) for d in (6, 12))
        for branch in self.aspp:
            nn.init.normal_(branch.weight, 0, 0.01)

    def backbone_parameters(self):
        b = self.backbone
        return [p for m in (b.stem, b.layer1, b.layer2, b.layer3) for p in m.parameters() if p.requires_grad]

    def head_parameters(self):
        return [p for p in self.backbone.layer4.parameters() if p.requires_grad] + list(self.aspp.parameters())


def imagenet_weights_file(model):
    """torchvision's cached ImageNet ResNet file for `model`'s backbone depth."""
    from torchvision.models import ResNet50_Weights, ResNet101_Weights
    depth = len(model.backbone.layer3)  # 6 blocks: ResNet-50, 23: ResNet-101
    weights = ResNet50_Weights.IMAGENET1K_V1 if depth == 6 else ResNet101_Weights.IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise DarsError(f"{path}: torchvision's ImageNet weights are not cached on this machine (no downloads "
                        f"at run time); fetch them where there is network ({weights.url}) into that path, "
                        "or set train.backbone_weights to a ResNet state_dict file")
    return path


def load_backbone(model, setting, log=print):
    """Initialise the backbone from the ResNet file that `setting` (train.backbone_weights:
    a file name in the weights folder, a path, or torchvision; dars.models.weights) names: the
    PSPNet authors' deep-stem layout (semseg's resnet50_v2.pth), torchvision's, the DeepLab-v2
    layouts of the UDA code bases or dars's own (dars.models.backbone_init). Prints and
    returns the load report {"file", "layout", "loaded", "total", "random", "unused"}; a file
    whose shapes do not fit, or named like the authors' file but of another layout, is refused."""
    if setting in weights.TORCHVISION:
        weights_path, expect = imagenet_weights_file(model), None
    else:
        weights_path, expect = weights.resolve(setting), weights.expected_layout(setting)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        weights.check_present(setting, "train.backbone_weights")
        raise
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DarsError(f"{weights_path}: not a readable state_dict file ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); set train.backbone_weights to a ResNet "
                        "state_dict file") from None
    return load_backbone_state(model, state, str(weights_path), log, expect)
