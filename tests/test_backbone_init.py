"""Backbone initialisation (dars/models/backbone_init.py): every layout's keys and shapes are built
here as the other code bases write them (no downloads), loaded, and checked tensor by tensor."""
import json

import pytest
import torch
import torch.nn as nn
from helpers import BN, COUNTER, DEEP_STEM_RANDOM, randomized, save_small, semseg_resnet50_state
from torchvision.models import resnet50, resnet101

from dars.io import DarsError
from dars.models import MODELS, build_model
from dars.models.backbone_init import load_backbone_state
from dars.models.pspnet import load_backbone

# The semseg name of each of our stem tensors, written out (not derived from the code under test).
SEMSEG_NAME = {**{f"stem.{i}.0.weight": f"conv{i + 1}.weight" for i in range(3)},
               **{f"stem.{i}.1.{p}": f"bn{i + 1}.{p}" for i in range(3) for p in BN + (COUNTER,)}}
def test_semseg_layout_initialises_the_whole_backbone():
    state = semseg_resnet50_state(counters=True)
    model = build_model("pspnet50", 19)
    messages = []
    report = load_backbone_state(model, state, "resnet50_v2.pth", log=messages.append)
    assert report["layout"] == "semseg" and report["file"] == "resnet50_v2.pth"
    assert report["random"] == [] and report["loaded"] == report["total"] == 275
    assert report["unused"] == ["fc.weight", "fc.bias"]
    for name, tensor in model.backbone.state_dict().items():
        assert torch.equal(tensor, state[SEMSEG_NAME.get(name, name)]), name
    assert int(model.backbone.stem[2][1].num_batches_tracked) == 7
    assert "loaded 275 of 275" in messages[0] and "random" not in messages[0]


def test_semseg_layout_without_counters_still_loads_everything():
    model = build_model("pspnet50", 19)
    report = load_backbone_state(model, semseg_resnet50_state(), "resnet50_v2.pth", log=lambda m: None)
    assert report["random"] == [] and report["loaded"] == 275


def test_torchvision_layout_reports_the_deep_stem_random(tmp_path, capsys):
    src = randomized(resnet50(weights=None).state_dict())
    model = build_model("pspnet50", 19)
    stem_before = model.backbone.stem[0][0].weight.clone()
    report = load_backbone(model, save_small(src, tmp_path / "r50.pth"))  # prints to stdout
    assert report["layout"] == "torchvision" and report["file"] == str(tmp_path / "r50.pth")
    assert report["random"] == DEEP_STEM_RANDOM and len(report["random"]) == 17
    assert report["loaded"] == 275 - 17
    assert sorted(report["unused"]) == sorted(["conv1.weight", "fc.weight", "fc.bias", *(f"bn1.{p}" for p in BN),
                                               "layer1.0.conv1.weight", "layer1.0.downsample.0.weight"])
    assert torch.equal(model.backbone.stem[0][0].weight, stem_before)
    out = capsys.readouterr().out
    assert "17 backbone tensors stay random" in out and "stem.0.0.weight" in out


def test_torchvision_layout_loads_the_values():
    src = randomized(resnet50(weights=None).state_dict())
    model = build_model("pspnet50", 19)
    load_backbone_state(model, src, log=lambda m: None)
    own = model.backbone.state_dict()
    assert torch.equal(own["layer4.2.conv3.weight"], src["layer4.2.conv3.weight"])
    assert torch.equal(own["layer1.0.downsample.1.running_var"], src["layer1.0.downsample.1.running_var"])
    assert torch.equal(own["layer1.0.conv2.weight"], src["layer1.0.conv2.weight"])


def test_a_wrong_shape_is_refused_naming_the_file_and_the_key(tmp_path):
    state = semseg_resnet50_state()
    state["layer2.1.conv2.weight"] = torch.empty(128, 128, 1, 1)
    path = save_small(state, tmp_path / "bad.pth")
    model = build_model("pspnet50", 19)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with pytest.raises(DarsError) as e:
        load_backbone(model, path, log=lambda m: None)
    message = str(e.value)
    assert str(path) in message and "'layer2.1.conv2.weight'" in message
    assert "[128, 128, 1, 1]" in message and "[128, 128, 3, 3]" in message
    assert all(torch.equal(v, before[k]) for k, v in model.backbone.state_dict().items())  # nothing loaded


def test_another_depth_or_stem_is_refused():
    model = build_model("deeplabv2_r101", 19)
    with pytest.raises(DarsError, match="layer3 has 6 blocks in this file .* and 23 in the model"):
        load_backbone_state(model, resnet50(weights=None).state_dict(), "r50.pth", log=lambda m: None)
    semseg101 = {k: v for k, v in semseg_resnet50_state().items() if not k.startswith("layer3.")}
    semseg101.update({k: v for k, v in resnet101(weights=None).state_dict().items() if k.startswith("layer3.")})
    with pytest.raises(DarsError, match=r"'conv1.weight' has shape \[64, 3, 3, 3\] in the file, 'stem.0.weight' "
                                        r"has \[64, 3, 7, 7\]"):
        load_backbone_state(model, semseg101, "resnet101_v2.pth", log=lambda m: None)


@pytest.mark.parametrize("wrap", ["module.", "backbone.", "module.backbone.", "state_dict", "model"])
def test_prefixes_and_checkpoint_wrappers(wrap):
    src = semseg_resnet50_state()
    if wrap.endswith("."):
        state = {wrap + k: v for k, v in src.items()}
    else:
        state = {wrap: {"module." + k: v for k, v in src.items()}, "epoch": 100}
    model = build_model("pspnet50", 19)
    report = load_backbone_state(model, state, log=lambda m: None)
    pre = wrap if wrap.endswith(".") else "module."
    assert report["layout"] == "semseg" and report["random"] == []
    assert report["unused"] == [pre + "fc.weight", pre + "fc.bias"]  # as the file names them
    assert torch.equal(model.backbone.stem[1][0].weight, src["conv2.weight"])


def deeplab_export(model, prefix, num_classes=19):
    """`model`'s backbone and ASPP in the DeepLab-v2 ResNet-101 layout of the UDA code bases
    (AdaptSegNet/AdvEnt `DeeplabMulti` / `ResNetMulti`): conv1/bn1, layer1..4, classifiers
    layer5 (on layer3) and layer6 (on layer4) as conv2d_list.*."""
    out = {}
    for k, v in model.backbone.state_dict().items():
        k = k.replace("stem.0.", "conv1.").replace("stem.1.", "bn1.")
        out[prefix + k] = v.clone()
    for i, conv in enumerate(model.aspp):
        out[f"{prefix}layer5.conv2d_list.{i}.weight"] = torch.randn(num_classes, 1024, 3, 3)
        out[f"{prefix}layer5.conv2d_list.{i}.bias"] = torch.randn(num_classes)
        out[f"{prefix}layer6.conv2d_list.{i}.weight"] = conv.weight.detach().clone()
        out[f"{prefix}layer6.conv2d_list.{i}.bias"] = conv.bias.detach().clone()
    return out


@pytest.mark.parametrize("prefix", ["Scale.", "module.", ""])
def test_deeplabv2_uda_layout_round_trip(prefix):
    torch.manual_seed(0)
    a = build_model("deeplabv2_r101", 19)
    a.backbone.load_state_dict(randomized(a.backbone.state_dict(), seed=1))
    state = deeplab_export(a, prefix)
    b = build_model("deeplabv2_r101", 19)
    report = load_backbone_state(b, state, "DeepLab_resnet_pretrained_imagenet.pth", log=lambda m: None)
    assert report["layout"] == "deeplabv2" and report["random"] == []
    assert report["loaded"] == report["total"] == len([k for k in b.backbone.state_dict() if COUNTER not in k])
    assert report["unused"] == [f"{prefix}layer{n}.conv2d_list.{i}.{p}" for i in range(4) for n in (5, 6)
                                for p in ("weight", "bias")]  # the file's own key names
    for k, v in a.backbone.state_dict().items():
        assert torch.equal(b.backbone.state_dict()[k], v), k


def test_deeplabv2_loads_torchvision_resnet101_whole():
    model = build_model("deeplabv2_r101", 19)
    src = randomized(resnet101(weights=None).state_dict())
    report = load_backbone_state(model, src, "resnet101.pth", log=lambda m: None)
    assert report["layout"] == "torchvision" and report["random"] == [] and report["unused"] == ["fc.weight", "fc.bias"]
    assert torch.equal(model.backbone.stem[0].weight, src["conv1.weight"])
    assert torch.equal(model.backbone.stem[1].running_mean, src["bn1.running_mean"])


def test_files_without_a_resnet_and_models_without_one_are_refused(tmp_path):
    with pytest.raises(DarsError, match="no ResNet layer1..4 keys"):
        load_backbone_state(build_model("pspnet50", 19), {"encoder.weight": torch.zeros(1)}, "x.pth")
    with pytest.raises(DarsError, match="has none"):
        load_backbone_state(build_model("lite", 19), semseg_resnet50_state(), "x.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DarsError, match="junk.pth: not a readable state_dict"):
        load_backbone(build_model("pspnet50", 19), tmp_path / "junk.pth")


# --- the report travels: training checkpoint -> student checkpoint -> miou.json -------------------

class _Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn1(self.conv1(x)))


class _TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4))
        self.layer1, self.layer2 = nn.Sequential(_Block(4, 4)), nn.Sequential(_Block(4, 8))
        self.layer3, self.layer4 = nn.Sequential(_Block(8, 8)), nn.Sequential(_Block(8, 8))

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class TinySeg(nn.Module):
    """A ResNet-shaped backbone small enough to train in a test (names as torchvision's)."""

    def __init__(self, num_classes):
        super().__init__()
        self.backbone, self.cls = _TinyResNet(), nn.Conv2d(8, num_classes, 1)

    def backbone_parameters(self):
        return list(self.backbone.parameters())

    def head_parameters(self):
        return list(self.cls.parameters())

    def forward(self, x):
        y = self.cls(self.backbone(x))
        return {"out": nn.functional.interpolate(y, x.shape[-2:], mode="bilinear", align_corners=False)}


def test_report_is_recorded_in_checkpoints_and_miou_json(tiny_cityscapes, tmp_path, monkeypatch):
    from dars.data.splits import make_split
    from dars.evaluate import evaluate_stage
    from dars.train import train
    monkeypatch.setitem(MODELS, "tiny_resnet", TinySeg)
    make_split(tiny_cityscapes, 2, 0, tmp_path / "split", "tiny")
    labeled, unlabeled = tmp_path / "split/labeled.txt", tmp_path / "split/unlabeled.txt"
    file_state = {k.replace("stem.0.", "conv1.").replace("stem.1.", "bn1."): v
                  for k, v in TinySeg(19).backbone.state_dict().items() if not k.startswith("layer4.")}
    file_state.update({k: v for k, v in TinySeg(19).backbone.state_dict().items() if k.startswith("layer4.")})
    file_state["fc.weight"] = torch.zeros(1000, 8)
    weights = tmp_path / "tiny.pth"
    torch.save(file_state, weights)
    settings = {"model": "tiny_resnet", "num_classes": 19, "seed": 0, "round": 0, "mode": "pretrain", "epochs": 1,
                "batch_size": 2, "crop": [32, 48], "resize": None, "scale_range": [0.5, 1.0], "base_lr": 0.01,
                "head_lr_mult": 10, "momentum": 0.9, "weight_decay": 1e-4, "poly_power": 0.9, "aux_weight": 0.4,
                "rotate": 0, "blur": False, "flip": True, "workers": 0, "backbone_weights": str(weights)}
    messages = []
    train(settings, tmp_path / "r0.pt", tiny_cityscapes, labeled, log=messages.append)
    assert any(m.startswith(f"backbone init from {weights}: torchvision layout") for m in messages)
    r0 = torch.load(tmp_path / "r0.pt", weights_only=False)["backbone_init"]
    assert r0["file"] == str(weights) and r0["loaded"] == r0["total"] == 25 and r0["unused"] == ["fc.weight"]
    student = dict(settings, round=1, mode="supervised")
    train(student, tmp_path / "r1.pt", tiny_cityscapes, labeled, unlabeled_list=unlabeled,
          init_ckpt=tmp_path / "r0.pt", log=lambda m: None)
    assert torch.load(tmp_path / "r1.pt", weights_only=False)["backbone_init"] == r0  # the teacher's
    evaluate_stage(tmp_path / "r1.pt", tiny_cityscapes, tmp_path / "miou.json")
    assert json.loads((tmp_path / "miou.json").read_text())["backbone_init"] == r0
    # A checkpoint from before the field (or of a model without a backbone file) still evaluates.
    old = torch.load(tmp_path / "r1.pt", weights_only=False)
    del old["backbone_init"]
    torch.save(old, tmp_path / "old.pt")
    evaluate_stage(tmp_path / "old.pt", tiny_cityscapes, tmp_path / "old.json")
    assert "backbone_init" not in json.loads((tmp_path / "old.json").read_text())
