"""The paper presets follow the authors' recipe (method.md §3, README "Paper fidelity"): one test
per point where our code used to depart from theirs, each written so the old behaviour fails."""
import copy
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers import DEEP_STEM_RANDOM, REPO, SNAKEMAKE, randomized, save_small, semseg_resnet50_state
from snakemake.utils import validate

from dars import slide
from dars.classes import train_ids_to_label_ids
from dars.config import alpha, train_settings
from dars.data.dataset import SegmentationPairs
from dars.data.published import list_file
from dars.data.splits import make_split
from dars.data.transforms import MEAN, augment, augment_settings
from dars.io import write_png
from dars.models import build_model
from dars.models.backbone_init import load_backbone_state
from dars.settings import PredictSettings


@pytest.fixture(scope="module")
def config():
    """config.yaml as the workflow sees it: validated, schema defaults filled in."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    return config


def column_ramp(height, width):
    """An image whose red channel is its column index, green its row index (both < 256)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width)[None]
    image[..., 1] = np.arange(height)[:, None]
    return image


# 1. Crop-361's scale factor applies to the stored full-resolution image.
def test_scale_one_crop_spans_crop_many_full_resolution_pixels(config, tmp_path):
    s = train_settings(config, "cityscapes", None, 0, 0)
    assert s["scale_reference"] == "full" and s["resize"] == [512, 1024]
    # A stand-in at 1/8 of Cityscapes' 1024x2048, with the preset's resize scaled alike.
    s = dict(s, resize=[64, 128], crop=[16, 16], scale_range=[1.0, 1.0], rotate=0, blur=False, flip=False)
    write_png(tmp_path / "image.png", column_ramp(128, 256), rgb=True)
    write_png(tmp_path / "label.png", np.zeros((128, 256), np.uint8))
    aug, base = augment_settings(s)
    image, _ = SegmentationPairs([(tmp_path / "image.png", tmp_path / "label.png")], base, aug)[0]
    columns = image.numpy()[0, :, 0].astype(int)
    assert np.all(np.diff(columns) == 1)  # 16 adjacent stored pixels; scale_reference input: every 2nd
    aug, base = augment_settings(dict(s, scale_reference="input"))
    image, _ = SegmentationPairs([(tmp_path / "image.png", tmp_path / "label.png")], base, aug)[0]
    assert np.all(np.diff(image.numpy()[0, :, 0].astype(int)) == 2)


# 2. Backbone initialisation: the authors' layout loads everything, torchvision's says what stays random.
def test_semseg_layout_loads_the_whole_backbone_and_torchvision_reports_the_rest():
    from torchvision.models import resnet50
    report = load_backbone_state(build_model("pspnet50", 19), semseg_resnet50_state(), "resnet50_v2.pth",
                                 log=lambda m: None)
    assert report["loaded"] == report["total"] and report["random"] == []
    report = load_backbone_state(build_model("pspnet50", 19), randomized(resnet50(weights=None).state_dict()),
                                 "resnet50.pth", log=lambda m: None)
    assert report["random"] == DEEP_STEM_RANDOM
    bad = semseg_resnet50_state()
    bad["conv2.weight"] = torch.empty(64, 64, 1, 1)
    with pytest.raises(Exception, match="first bad key 'conv2.weight'"):
        load_backbone_state(build_model("pspnet50", 19), bad, "bad.pth", log=lambda m: None)


# 3. Round 0 trains at batch 16 in the Cityscapes presets; rounds >= 1 at 8 + 8.
@pytest.mark.parametrize("dataset", ["cityscapes", "cityscapes_full"])
def test_cityscapes_round0_batch_is_16(config, dataset):
    assert train_settings(config, dataset, None, 0, 0)["batch_size"] == 16
    assert train_settings(config, dataset, "dars", 1, 0, split=8)["batch_size"] == 8


# 4. Teacher shards: softmax of the mean of logits (flip and windows), not the mean of softmaxes.
@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_teacher_fusion_logits_is_softmax_of_mean_logits(config, mode):
    assert config["datasets"]["cityscapes"]["evaluate"]["teacher_fusion"] == "logits"
    torch.manual_seed(0)
    model = build_model("lite", 5).eval()
    image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    window = [24, 24] if mode == "slide" else None  # slide: two overlapping windows
    got = slide.predict_probs(model, image, mode=mode, window=window, fuse="logits")
    x = slide.to_tensors(image)[None]
    with torch.no_grad():
        def logits(batch):
            return F.interpolate(model(batch)["out"], size=batch.shape[-2:], mode="bilinear", align_corners=False)
        if mode == "whole":
            mean = (logits(x) + logits(x.flip(-1)).flip(-1)) / 2
        else:
            acc, count = torch.zeros(1, 5, 24, 40), torch.zeros(24, 40)
            for c in (0, 16):
                crop = x[..., c:c + 24]
                acc[..., c:c + 24] += (logits(crop) + logits(crop.flip(-1)).flip(-1)) / 2
                count[:, c:c + 24] += 1
            mean = acc / count
    assert torch.allclose(got, F.softmax(mean, dim=1)[0], atol=1e-6)
    probs = slide.predict_probs(model, image, mode=mode, window=window)  # evaluation: mean of softmaxes
    assert not torch.allclose(got, probs, atol=1e-6)


# 5. Blur: OpenCV's fixed 5x5 kernel (sigma 0: the binomial [1,4,6,4,1]/16); crops padded half on each side.
def test_blur_is_a_fixed_5x5_kernel(config):
    s = train_settings(config, "cityscapes", None, 0, 0)
    assert s["blur_kernel"] == 5 and s["crop_pad"] == "centre"
    image = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    label = np.zeros((40, 40), np.uint8)
    for seed in range(40):  # draws with and without blur (p = 0.5)
        rng = np.random.default_rng(seed)
        out, _ = augment(image, label, rng, crop=[40, 40], scale_range=[1, 1], rotate=0, flip=False, blur_kernel=5)
        if not np.array_equal(out, image):
            break
    inner = (slice(2, -2), slice(2, -2))  # the kernel reads 2 pixels beyond: borders differ by design
    assert np.array_equal(out[inner], cv2.GaussianBlur(image, (5, 5), 0)[inner])
    binomial = np.array([1, 4, 6, 4, 1]) / 16  # what sigma 0 selects at size 5, not a sigma-1.1 Gaussian
    assert np.allclose(cv2.getGaussianKernel(5, 0).ravel(), binomial)
    assert not np.allclose(cv2.getGaussianKernel(5, 1.1).ravel(), binomial, atol=1e-3)


def test_centred_crop_padding():
    image = np.full((20, 30, 3), 7, np.uint8)
    label = np.ones((20, 30), np.uint8)
    out, lab = augment(image, label, np.random.default_rng(0), crop=[30, 40], scale_range=[1, 1], rotate=0,
                       blur=False, flip=False, crop_pad="centre")
    assert np.array_equal(np.flatnonzero(lab[:, 20] == 1), np.arange(5, 25))  # 5 rows above, 5 below
    assert np.array_equal(np.flatnonzero(lab[10] == 1), np.arange(5, 35))
    assert (out[0] == MEAN.round()).all() and (out[10, 10] == 7).all()


# 6. VOC: the authors' VOC configs train PSPNet-50.
def test_voc_preset_is_pspnet50(config):
    s = train_settings(config, "voc", None, 0, 0)
    assert s["model"] == "pspnet50" and s["batch_size"] == 16 and s["crop"] == [321, 321]


# 7. Published splits: the authors' 1/8 list by family name, recorded in split.json.
def authors_tree(root, extra=6):
    """A Cityscapes-layout tree holding every image of the authors' 1/8 list (4x8 pixels) plus
    `extra` other train images and two val images."""
    lines = Path(list_file("cityscapes", "dars", 8)[1]).read_text().split("\n")
    pairs = [line.split() for line in lines if line.strip()]
    pairs += [(f"leftImg8bit/train/zurich/zurich_{i:06d}_000019_leftImg8bit.png",
               f"gtFine/train/zurich/zurich_{i:06d}_000019_gtFine_labelTrainIds.png") for i in range(extra)]
    pairs += [(f"leftImg8bit/val/lindau/lindau_{i:06d}_000019_leftImg8bit.png",
               f"gtFine/val/lindau/lindau_{i:06d}_000019_gtFine_labelTrainIds.png") for i in range(2)]
    train_ids = (np.arange(32) % 19).astype(np.uint8).reshape(4, 8)  # every class present
    for image, label in pairs:
        write_png(root / image, np.zeros((4, 8, 3), np.uint8), rgb=True)
        write_png(root / label, train_ids)
        write_png(root / label.replace("labelTrainIds", "labelIds"), train_ids_to_label_ids(train_ids))
    return root


@pytest.fixture(scope="module")
def authors_root(tmp_path_factory):
    return authors_tree(tmp_path_factory.mktemp("cs") / "city scapes")


def test_authors_list_is_selected_by_family_and_recorded(authors_root, tmp_path):
    family, path = list_file("cityscapes", "dars", 8)
    make_split(authors_root, 8, 0, tmp_path / "split", "cityscapes", family="dars")
    info = json.loads((tmp_path / "split" / "split.json").read_text())
    assert info["split_family"] == "dars" and info["num_labeled"] == 372 and info["warnings"] == []
    wanted = sorted(line.split()[0] for line in Path(path).read_text().splitlines() if line.strip())
    got = sorted(line.split()[0] for line in (tmp_path / "split" / "labeled.txt").read_text().splitlines())
    assert got == wanted
    # 1/16 has no authors' list: random, said in the record and as a warning.
    _, warnings = make_split(authors_root, 16, 0, tmp_path / "s16", "cityscapes", family="dars")
    info = json.loads((tmp_path / "s16" / "split.json").read_text())
    assert info["split_family"] == "random" and info["split_family_requested"] == "dars"
    assert "no 1/16 list" in warnings[0]


def snakemake_on(root, dataset, workdir, *args, weights=None, check=True):
    """Snakemake in `workdir` with config.yaml's `dataset` pointed at `root` and the weights
    folder ($DARS_WEIGHTS) at `weights` (default: an empty folder)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"][dataset]["root"] = str(root)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    if weights is None:
        (weights := workdir / "no weights").mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DARS_WEIGHTS=str(weights))
    proc = subprocess.run(SNAKEMAKE + ["--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=600, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def authors_weights(tmp_path_factory):
    """A weights folder holding a deep-stem resnet50_v2.pth (semseg's names and shapes)."""
    folder = tmp_path_factory.mktemp("weights")
    save_small(semseg_resnet50_state(), folder / "resnet50_v2.pth")
    return folder


def test_cityscapes_preset_plans_with_the_authors_family(authors_root, authors_weights, tmp_path):
    proc = snakemake_on(authors_root, "cityscapes", tmp_path, "-n", "-p", "results/cityscapes/split8/round2/miou.json",
                        weights=authors_weights)
    split_command = [line for line in proc.stdout.splitlines() if "python -m dars split" in line]
    assert len(split_command) == 1 and "--family dars" in split_command[0]


@pytest.mark.e2e
def test_the_cpu_check_preset_runs_round0_on_a_real_layout_tree(authors_root, tmp_path):
    """README "Use your own data": the CPU check reads the tree, the authors' list, trains a few
    steps and (asked for miou.json) evaluates, on the same family as the paper preset."""
    snakemake_on(authors_root, "cityscapes_check", tmp_path, "--cores", "1",
                 "results/cityscapes_check/split8/seed0/round0/miou.json")
    result = json.loads((tmp_path / "results/cityscapes_check/split8/seed0/round0/miou.json").read_text())
    assert result["split_family"] == "dars" and result["num_images"] == 2 and 0 <= result["miou"] <= 1


def test_other_runs_keep_their_settings(config):
    """The embedded settings do not carry the recipe knobs, so their fingerprints, Snakemake
    params and results are what they were."""
    s = train_settings(config, "synthetic_evidence", None, 0, 0)
    assert not {"scale_reference", "blur_kernel", "crop_pad"} & s.keys()
    settings = copy.deepcopy(s)
    aug, base = augment_settings(settings)
    assert base is None and "blur_kernel" not in aug


# Paper fidelity III (issue 20): the authors' starting weights, their VOC and DeepLabv2 recipes,
# their upsampling, and round-0 batch 16 for GTA5 and ScanNet.

# 8. The paper presets start from the authors' file; without it planning fails (also under -n).
def test_a_missing_authors_weights_file_fails_the_plan_naming_it_and_the_opt_out(authors_root, tmp_path):
    proc = snakemake_on(authors_root, "cityscapes", tmp_path, "-n", "results/cityscapes/split8/round2/miou.json",
                        check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "resnet50_v2.pth not found" in message and str(tmp_path / "no weights" / "resnet50_v2.pth") in message
    assert "DARS_WEIGHTS" in message and "drive.google.com" in message  # where it goes, where to get it
    assert "backbone_weights: torchvision" in message  # the opt-out


def test_a_deep_stem_file_in_the_weights_folder_plans_and_loads_275_of_275(authors_root, authors_weights, tmp_path,
                                                                           monkeypatch):
    snakemake_on(authors_root, "cityscapes", tmp_path, "-n", "results/cityscapes/split8/round2/miou.json",
                 weights=authors_weights)
    from dars.models.pspnet import load_backbone
    monkeypatch.setenv("DARS_WEIGHTS", str(authors_weights))
    report = load_backbone(build_model("pspnet50", 19), "resnet50_v2.pth", log=lambda m: None)
    assert report["layout"] == "semseg" and report["loaded"] == report["total"] == 275 and report["random"] == []


def test_a_torchvision_file_named_as_the_authors_is_refused_with_its_load_report(tmp_path, monkeypatch):
    from torchvision.models import resnet50

    from dars.models.pspnet import load_backbone
    save_small(resnet50(weights=None).state_dict(), tmp_path / "resnet50_v2.pth")
    monkeypatch.setenv("DARS_WEIGHTS", str(tmp_path))
    model = build_model("pspnet50", 19)
    before = model.backbone.layer4[0].conv1.weight.clone()
    with pytest.raises(Exception, match=r"authors' semseg layout, this one is torchvision(.|\n)*loaded 258 of 275"):
        load_backbone(model, "resnet50_v2.pth", log=lambda m: None)
    assert torch.equal(model.backbone.layer4[0].conv1.weight, before)  # nothing loaded


def test_the_torchvision_opt_out_is_recorded_as_a_departure(config, tmp_path):
    from dars.config import run_identity
    from dars.report import method_table
    assert "departures" not in run_identity(config, "cityscapes", 8, 0, "dars", 1)
    assert "departures" not in run_identity(config, "synthetic_evidence", 8, 0, "dars", 1)  # not a paper preset
    opted = copy.deepcopy(config)
    opted["datasets"]["cityscapes"]["train"]["backbone_weights"] = "torchvision"
    identity = run_identity(opted, "cityscapes", 8, 0, None, 0)
    assert identity["departures"] == ["backbone_weights: torchvision's ImageNet file, the authors start pspnet50 "
                                      "from resnet50_v2.pth"]
    names = ["a", "b"]
    record = dict(identity, split_source="random", protocol="whole", class_names=names, iou=[0.5, 0.5], miou=0.5)
    (tmp_path / "miou.json").write_text(json.dumps(record))
    spec = {"kind": "per_class", "corner": "method", "title": "Per-class IoU", "gains": [],
            "rows": {"round 0": [str(tmp_path / "miou.json")]}}
    method_table(spec, tmp_path / "t.csv", tmp_path / "t.md")
    caption = (tmp_path / "t.md").read_text()
    assert "The runs depart from the authors' recipe: backbone_weights: torchvision's" in caption


# 9. VOC: the authors' five numbers.
def test_voc_preset_resolves_to_the_authors_numbers(config, capsys):
    rounds = [train_settings(config, "voc", None if r == 0 else "dars", r, 0, split=7) for r in (0, 1, 2)]
    alphas = [alpha(config, "voc", 7, "dars", r) for r in (1, 2)]
    evaluate = config["datasets"]["voc"]["evaluate"]
    family, path = list_file("voc", config["datasets"]["voc"]["split_family"], 7)
    with capsys.disabled():
        print("\nVOC preset, resolved:")
        for s in rounds:
            print(f"  round {s['round']}: {s['epochs']} epochs, batch {s['batch_size']}, scale {s['scale_range']}, "
                  f"lr {s['base_lr']}, crop {s['crop']}, weights {s['backbone_weights']}")
        print(f"  alpha {alphas}; evaluate {evaluate}; split7 list: {family} {Path(path).name}")
    assert [s["epochs"] for s in rounds] == [50, 50, 50]  # theirs: 50, then 100 and 150 resumed from 50 and 100
    assert [s["batch_size"] for s in rounds] == [16, 8, 8]
    assert alphas == [0.4, 0.5]
    assert [s["scale_range"] for s in rounds] == [[0.5, 1.5], [0.5, 1.5], [0.5, 2.0]]
    assert evaluate["resize_long"] == 400 and evaluate["mode"] == "slide"
    assert family == "dars" and len(Path(path).read_text().split("\n")) == 1465  # 1,464 lines


def voc_tree(root, extra=5):
    """A VOC aug tree holding every image of the authors' 1,464 list (4x4 pixels), `extra`
    other train images and two val images."""
    listed = [line.split()[0] for line in Path(list_file("voc", "dars", 7)[1]).read_text().splitlines() if line]
    ids = [Path(image).stem for image in listed] + [f"2099_{i:06d}" for i in range(extra)]
    val = ["2098_000000", "2098_000001"]
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClassAug").mkdir()
    for iid in ids + val:
        cv2.imwrite(str(root / "JPEGImages" / f"{iid}.jpg"), np.zeros((4, 4, 3), np.uint8))
        label = (np.arange(16) % 21).astype(np.uint8).reshape(4, 4)
        cv2.imwrite(str(root / "SegmentationClassAug" / f"{iid}.png"), label)
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train_aug.txt").write_text("\n".join(ids) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")
    return root


def test_voc_split7_is_the_authors_1464_list(tmp_path):
    make_split(voc_tree(tmp_path / "VOC2012"), 7, 0, tmp_path / "split", "voc", layout="voc", family="dars")
    info = json.loads((tmp_path / "split" / "split.json").read_text())
    assert info["split_family"] == "dars" and info["num_labeled"] == 1464
    assert len((tmp_path / "split" / "unlabeled.txt").read_text().split()) == 5 * 2  # the other images


class InputSize(torch.nn.Module):
    """A stand-in network that records the size it is given."""

    def forward(self, x):
        self.seen = tuple(x.shape[-2:])
        return {"out": torch.zeros(x.shape[0], 3, *x.shape[-2:])}


def test_long_side_resize_for_teacher_and_evaluation_is_in_the_protocol():
    model = InputSize()
    settings = PredictSettings.of({"resize_long": 400, "flip": False})
    predictor = slide.Predictor(model, {}, torch.device("cpu"), 0, settings, None)
    probs = predictor.probs(np.zeros((375, 500, 3), np.uint8))
    assert model.seen == (300, 400) and probs.shape == (3, 375, 500)  # back at the image's size
    predictor.probs(np.zeros((500, 333, 3), np.uint8))
    assert model.seen == (400, 266)  # round(400 / 500 * 333) = round(266.4), as the authors' test.py
    assert predictor.protocol({(375, 500)}) == "whole image at long side 400"
    with pytest.raises(Exception, match="resize_long"):
        PredictSettings.of({"resize": [300, 400], "resize_long": 400})


# 10. align_corners=True: on an 8k+1 input, output pixel 8i is feature i exactly.
@pytest.mark.parametrize("name", ["pspnet50", "deeplabv2_r101", "deeplabv2_r101_authors"])
def test_upsampling_aligns_corners_on_a_361_input(name):
    torch.manual_seed(0)
    model = build_model(name, 5).eval()
    last = model.head if name == "pspnet50" else None
    seen = {}
    if last is not None:
        last.register_forward_hook(lambda m, i, o: seen.update(low=o))
    else:
        model.backbone.register_forward_hook(lambda m, i, o: seen.update(
            low=sum(branch(o[1]) for branch in model.aspp)))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 361, 361))["out"]
    low = seen["low"]
    assert low.shape[-2:] == (46, 46)
    assert torch.allclose(out[..., ::8, ::8], low, atol=1e-5)  # off by up to 3.4 px with align_corners=False
    if name == "pspnet50":  # the pyramid pooling branches too
        feats = {}
        model.ppm.stages[3].register_forward_hook(lambda m, i, o: feats.update(bin6=o))
        model.ppm.register_forward_hook(lambda m, i, o: feats.update(cat=o))
        with torch.no_grad():
            model(torch.randn(1, 3, 361, 361))
        want = F.interpolate(feats["bin6"], (46, 46), mode="bilinear", align_corners=True)
        assert torch.allclose(feats["cat"][:, -512:], want, atol=1e-6)


# 11. The authors' DeepLabv2: two branches summed, BN affine frozen, conv1 stride, ceil pool, groups.
def test_authors_deeplabv2_sums_the_dilation_6_and_12_branches_and_keeps_their_quirks(config):
    from torchvision.models import resnet101
    torch.manual_seed(0)
    model = build_model("deeplabv2_r101_authors", 19).eval()
    assert [b.dilation for b in model.aspp] == [(6, 6), (12, 12)]
    seen = {}
    model.backbone.register_forward_hook(lambda m, i, o: seen.update(c4=o[1]))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 97, 97))["out"]
        want = F.interpolate(model.aspp[0](seen["c4"]) + model.aspp[1](seen["c4"]), (97, 97), mode="bilinear",
                             align_corners=True)
    assert torch.allclose(out, want, atol=1e-6)
    b = model.backbone
    assert b.stem[3].ceil_mode and b.layer2[0].conv1.stride == (2, 2) and b.layer2[0].conv2.stride == (1, 1)
    norms = [m for m in b.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(p.requires_grad for m in norms for p in m.parameters())
    head = {id(p) for p in model.head_parameters()}
    assert all(id(p) in head for p in b.layer4.parameters() if p.requires_grad)  # layer4 at 10x (index_split 5)
    assert not any(id(p) in head for p in b.layer3.parameters())
    # The authors' ImageNet file (torchvision's ResNet-101) initialises every backbone tensor.
    report = load_backbone_state(model, randomized(resnet101(weights=None).state_dict()), "resnet101-5d3b4d8f.pth",
                                 log=lambda m: None)
    assert report["layout"] == "torchvision" and report["loaded"] == report["total"] and report["random"] == []
    # The preset: their DeepLabv2 recipe.
    r0, r1, r2 = (train_settings(config, "cityscapes_dlv2", None if r == 0 else "dars", r, 0, split=8)
                  for r in (0, 1, 2))
    assert r0["model"] == "deeplabv2_r101_authors" and r0["backbone_weights"] == "resnet101-5d3b4d8f.pth"
    assert r0["base_lr"] == 0.002 and [r0["batch_size"], r1["batch_size"]] == [16, 4]
    assert r0["scale_range"] == r1["scale_range"] == r2["scale_range"] == [0.25, 1.0]
    assert [alpha(config, "cityscapes_dlv2", 8, "dars", r) for r in (1, 2)] == [0.2, 0.45]


# 12. GTA5 -> Cityscapes and ScanNet follow the Cityscapes setup: batch 16 in round 0.
@pytest.mark.parametrize("dataset, split", [("gta5_cityscapes", 0), ("scannet", 8)])
def test_gta5_and_scannet_round0_batch_is_16(config, dataset, split):
    assert train_settings(config, dataset, None, 0, 0, split=split)["batch_size"] == 16
    assert train_settings(config, dataset, "dars", 1, 0, split=split)["batch_size"] == 8
