"""The paper presets follow the authors' recipe (method.md §3, README "Paper fidelity"): one test
per point where our code used to depart from theirs, each written so the old behaviour fails."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from snakemake.utils import validate
from test_backbone_init import DEEP_STEM_RANDOM, randomized, semseg_resnet50_state

from dars import slide
from dars.classes import train_ids_to_label_ids
from dars.config import train_settings
from dars.data.dataset import SegmentationPairs
from dars.data.published import list_file
from dars.data.splits import make_split
from dars.data.transforms import MEAN, augment, augment_settings
from dars.io import write_png
from dars.models import build_model
from dars.models.backbone_init import load_backbone_state

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


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


# 5. Blur: a fixed 5x5 Gaussian (OpenCV's default sigma); crops padded half on each side.
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


def snakemake_on(root, dataset, workdir, *args):
    """Snakemake in `workdir` with config.yaml's `dataset` pointed at `root`."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"][dataset]["root"] = str(root)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(SNAKEMAKE + ["--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_cityscapes_preset_plans_with_the_authors_family(authors_root, tmp_path):
    proc = snakemake_on(authors_root, "cityscapes", tmp_path, "-n", "-p", "results/cityscapes/split8/round2/miou.json")
    split_command = [line for line in proc.stdout.splitlines() if "python -m dars split" in line]
    assert len(split_command) == 1 and "--family dars" in split_command[0]


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
