import pytest
import torch

from dars.io import DarsError
from dars.models import MODELS, build_model
from dars.models.fold import fold_batchnorm


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_return_logits_at_input_size(name):
    model = build_model(name, 19).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 65, 97))
    assert out["out"].shape == (1, 19, 65, 97)
    ids = {id(p) for p in model.backbone_parameters()} | {id(p) for p in model.head_parameters()}
    # Every trainable parameter gets a learning rate (the authors' DeepLabv2 freezes its BN affine).
    assert ids == {id(p) for p in model.parameters() if p.requires_grad}


def test_pspnet50_structure_and_parameter_count():
    model = build_model("pspnet50", 19)
    stem = model.backbone.stem
    assert [stem[i][0].out_channels for i in range(3)] == [64, 64, 128]
    assert model.backbone.layer4[0].conv2.dilation == (4, 4) and model.backbone.layer3[0].conv2.dilation == (2, 2)
    assert len(model.ppm.stages) == 4 and model.head[0][0].in_channels == 4096
    # ResNet-50 deep stem (23.6 M) + PPM + head + aux: ~49 M, as the public PSPNet-50 reports.
    assert 48_000_000 < n_params(model) < 50_000_000
    x = torch.randn(1, 3, 64, 64)
    model.train()
    out = model(torch.cat([x, x]))
    assert set(out) == {"out", "aux"} and out["aux"].shape == (2, 19, 64, 64)
    c3, c4 = model.backbone(x)
    assert c3.shape[-1] == 8 and c4.shape[1] == 2048  # output stride 8


@pytest.mark.e2e  # over 30 s
def test_pspnet50_forward_backward_at_713():
    torch.manual_seed(0)
    model = build_model("pspnet50", 19).train()
    x = torch.randn(2, 3, 713, 713)
    out = model(x)
    y = torch.randint(0, 19, (2, 713, 713))
    loss = torch.nn.functional.cross_entropy(out["out"], y) + 0.4 * torch.nn.functional.cross_entropy(out["aux"], y)
    loss.backward()
    assert out["out"].shape == (2, 19, 713, 713) and torch.isfinite(loss)
    assert model.backbone.stem[0][0].weight.grad is not None


def test_deeplabv2_parameter_count():
    assert 42_000_000 < n_params(build_model("deeplabv2_r101", 19)) < 44_000_000


def test_unknown_model_is_a_clear_error():
    with pytest.raises(DarsError, match="train.model"):
        build_model("pspnet51", 19)


def test_backbone_weights_load_from_a_torchvision_state_dict(tmp_path):
    from torchvision.models import resnet50

    from dars.models.pspnet import load_backbone
    src = resnet50(weights=None)
    torch.save(src.state_dict(), tmp_path / "r50.pth")
    model = build_model("pspnet50", 19)
    report = load_backbone(model, tmp_path / "r50.pth")
    assert torch.equal(model.backbone.layer4[2].conv3.weight, src.layer4[2].conv3.weight)
    # The deep stem and layer1's widened first convs have no torchvision counterpart (the layouts
    # and their reports are tested in test_backbone_init.py).
    missing = report["random"]
    assert any(k.startswith("stem.") for k in missing) and "layer1.0.conv1.weight" in missing
    assert "layer2.0.conv1.weight" not in missing
    with pytest.raises(DarsError, match="backbone_weights"):
        load_backbone(model, tmp_path / "nope.pth")


@pytest.mark.parametrize("name", ["lite32", "pspnet50", "deeplabv2_r101", "deeplabv2_r101_authors"])
def test_folding_batchnorm_keeps_the_function(name):
    """Every BatchNorm is folded (none is left to run) and eval outputs agree to float rounding,
    with running statistics and affine parameters far from the identity."""
    torch.manual_seed(0)
    model = build_model(name, 19)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in norms:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    folded = fold_batchnorm(model)
    assert folded.folded_batchnorms == len(norms)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == len(norms)  # a copy
    x = torch.randn(2, 3, 65, 97)
    with torch.no_grad():
        want, got = model(x)["out"], folded(x)["out"]
    assert (want - got).abs().max() <= 1e-5 * want.abs().max()
