import json

import cv2
import numpy as np
import pytest
import torch

from dars.classes import CITYSCAPES_CLASSES, CLASS_NAMES, PALETTE
from dars.inspect import inspect
from dars.io import DarsError, write_png
from dars.overlay import LOW_CONFIDENCE, render_overlay
from dars.shards import ShardWriter

H, W = 64, 96  # titles cover the top ~16 rows; checks look below them
IDS = ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000019"]


def image_rel(i):
    return f"leftImg8bit/train/{i.split('_')[0]}/{i}_leftImg8bit.png"


def gt_rel(i):
    return f"gtFine/train/{i.split('_')[0]}/{i}_gtFine_labelTrainIds.png"


@pytest.fixture
def root(tmp_path):
    """A three-image dataset tree; ground truth has an ignore (255) band at the bottom."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for i in IDS:
        write_png(root / image_rel(i), rng.integers(0, 256, (H, W, 3), dtype=np.uint8), rgb=True)
        gt = np.zeros((H, W), np.uint8)
        gt[:, W // 2:] = 13
        gt[50:] = 255
        write_png(root / gt_rel(i), gt)
    return root


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def make_shard(path, with_paths=True):
    with ShardWriter(path, 19) as w:
        for i in IDS[:2]:
            pred = np.full((H, W), 2, np.uint8)
            pred[:, :W // 4] = 8
            conf = np.full((H, W), 0.55, np.float16)
            conf[-16:] = 1.0  # a quarter of the pixels exactly 1.0
            w.add(i, pred, conf, image=image_rel(i) if with_paths else None,
                  label=gt_rel(i) if with_paths else None)
    return path


def test_image_list_and_split_json(tmp_path):
    lst = tmp_path / "labeled.txt"
    lst.write_text("".join(f"{image_rel(i)} {gt_rel(i)}\n" for i in IDS))
    s = inspect(lst)
    assert "3 pairs" in s and "aachen 2" in s and "bochum 1" in s and image_rel(IDS[0]) in s
    split = write_json(tmp_path / "split.json", {
        "dataset": "synth", "root": "data", "split": 3, "seed": 0, "source": "random", "source_file": None,
        "source_sha256": "ab" * 32, "num_labeled": 3, "num_unlabeled": 17,
        "labeled_class_images": [3] + [0] * 18, "missing_classes": list(CLASS_NAMES[1:])})
    s = inspect(split)
    assert "num_unlabeled: 17" in s and "random" in s and "bicycle" in s


def test_command_prints_the_summary(tmp_path, capsys):
    import argparse

    from dars import inspect as module
    (add_arguments, main), = module.COMMANDS.values()
    p = argparse.ArgumentParser()
    add_arguments(p)
    lst = tmp_path / "labeled.txt"
    lst.write_text("".join(f"{image_rel(i)} {gt_rel(i)}\n" for i in IDS + IDS[:1]))
    main(p.parse_args([str(lst)]))
    out = capsys.readouterr().out
    assert "4 pairs" in out and f"WARNING: 1 duplicated image ids, e.g. ['{IDS[0]}']" in out


def test_prior(tmp_path):
    shares = [0.5, 0.3, 0.15, 0.05] + [0.0] * 15
    p = write_json(tmp_path / "prior.json", {"source": "labeled", "class_names": list(CLASS_NAMES),
                                              "counts": [int(s * 1000) for s in shares], "shares": shares,
                                              "num_pixels": 1000, "void_pixels": 7})
    s = inspect(p)
    lines = s.splitlines()
    assert lines[3].startswith("road") and lines[4].startswith("sidewalk")  # sorted by share
    assert "50.00" in s and "largest/smallest share: 10.0" in s and "no labeled pixels" in s


def test_shard_summary(tmp_path):
    shard = make_shard(tmp_path / "shards" / "0")
    s = inspect(shard)
    assert "2 images" in s and f"{H}x{W} x2" in s and f"total pixels: {2 * H * W:,}" in s
    per_image = (2 * H * W * 3 + (shard / "index.json").stat().st_size) / 2
    assert f"{per_image:,.0f} per image" in s
    assert "exactly 1.0: 25.00 %" in s
    veg = [r for r in s.splitlines() if r.startswith("vegetation")][0]
    assert veg.split()[-1] == "25.00"
    bin5 = [r for r in s.splitlines() if r.startswith("[0.5, 0.6)")][0]
    assert bin5.split()[-1] == "75.00"
    # index.json and the directory of shards give the same numbers
    assert "2 images" in inspect(shard / "index.json")
    assert "2 images" in inspect(tmp_path / "shards")


def test_thresholds_and_pseudo_stats(tmp_path):
    classes = [{"n": 100 * (c + 1), "m": 10 * (c + 1), "tau": 0.9 - c * 0.01, "tau_bits": 1, "r": 0.1,
                "rho_num": 1, "rho_den": 2, "rho": 0.5, "overflow": c == 3} for c in range(19)]
    t = write_json(tmp_path / "thresholds.json", {"labeler": "dars", "alpha": 0.5, "num_pixels": 19000,
                                                    "classes": classes})
    s = inspect(t)
    assert "labeler: dars" in s and "alpha: 0.5" in s
    header = s.splitlines()[4]
    assert header.split()[:7] == ["class", "n", "m", "tau", "r", "rho", "overflow"] and "tau_bits" not in header
    assert "1,900" in s and "yes" in s
    ps = write_json(tmp_path / "pseudo_stats.json", {
        "labeler": "dars", "alpha": 0.5, "classes": classes, "pseudo_hist": [10] * 19, "coverage": 0.42,
        "kl_prior_pseudo": 0.0123, "kl_pseudo_prior": 0.0456, "precision": [0.8] * 19})
    s = inspect(ps)
    assert "kl_prior_pseudo: 0.0123" in s and "kl_pseudo_prior: 0.0456" in s and "coverage: 0.42" in s
    assert "pseudo_hist %" in s and "5.26" in s and "precision" in s
    st = write_json(tmp_path / "st" / "thresholds.json", {
        "labeler": "st", "alpha": 0.2, "num_classes": 19, "num_pixels": 100, "prior": None,
        "global": {"n": 20, "m": 20, "tau": 0.99987, "r": 20}, "classes": [{"m": 5, "r": 1}] * 19})
    s = inspect(st)
    assert "global.tau: 0.99987" in s and "global.n: 20" in s and s.splitlines()[-1].split() == ["bicycle", "5", "1"]


def test_pseudo_stats_with_nested_thresholds_and_gt(tmp_path):
    th = {"labeler": "dars", "alpha": 0.5, "num_classes": 19, "num_pixels": 1000, "prior": [1 / 19] * 19,
          "classes": [{"n": 7, "m": 9, "tau": 0.75, "tau_bits": 1, "r": 8, "rho_num": 7, "rho_den": 8,
                       "rho": 0.875, "overflow": False}] * 19}
    ps = write_json(tmp_path / "pseudo_stats.json", {
        "labeler": "dars", "alpha": 0.5, "num_images": 4, "num_pixels": 1000, "thresholds": th,
        "pseudo_counts": [2] + [1] * 18, "selected_pixels": 20, "coverage": 0.02, "prior": [1 / 19] * 19,
        "kl_prior_pseudo": 0.0123, "kl_pseudo_prior": 0.0456,
        "gt": {"images": 4, "tp": [1] * 19, "pseudo_on_gt": [2] * 19, "gt_pixels": [4] * 19,
               "precision": [0.5] * 19, "coverage": [0.25] * 19}})
    s = inspect(ps)
    assert "num_images: 4" in s and "coverage: 0.02" in s and "kl_pseudo_prior: 0.0456" in s
    header = [r for r in s.splitlines() if r.startswith("class")][0].split()
    assert header == ["class", "n", "m", "tau", "r", "rho", "overflow", "prior", "pseudo_counts",
                      "gt.precision", "gt.coverage", "pseudo_counts", "%"]
    road = [r for r in s.splitlines() if r.startswith("road")][0].split()
    assert road == ["road", "7", "9", "0.75", "8", "0.875", "no", "0.0526316", "2", "0.5", "0.25", "10.00"]


def test_pseudo_pngs_and_hist(tmp_path):
    d = tmp_path / "pseudo" / "0"
    for k, i in enumerate(IDS[:2]):
        lab = np.full((H, W), 255, np.uint8)
        lab[:H // 2] = k  # half labelled; class 0 in one image, class 1 in the other
        write_png(d / f"{i}.png", lab)
    s = inspect(tmp_path / "pseudo")
    assert "2 label map(s)" in s and "= 50.00 %" in s
    road = [r for r in s.splitlines() if r.startswith("road")][0]
    assert road.split()[-1] == "50.00"
    assert "= 50.00 %" in inspect(d / f"{IDS[0]}.png")
    h = np.zeros((19, 65536), np.int64)
    h[0, int(np.float16(1.0).view(np.uint16))] = 3
    h[0, int(np.float16(0.5).view(np.uint16))] = 1
    np.save(tmp_path / "0.npy", h)
    road = [r for r in inspect(tmp_path / "0.npy").splitlines() if r.startswith("road")][0]
    assert road.split() == ["road", "4", "0.875", "75.00"]


def test_checkpoint(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 19, 1))
    nparams = sum(p.numel() for p in model.parameters())
    # an optimizer state_dict in its documented shape (torch.optim takes seconds to import)
    opt_state = {"state": {}, "param_groups": [{"lr": 0.01, "params": list(range(len(model.state_dict())))}]}
    ckpt = {"model": model.state_dict(), "optimizer": opt_state, "model_name": "deeplabv3plus_r50",
            "num_classes": 19, "round": 1, "epoch": 3, "epochs": 40, "iteration": 1234,
            "settings": {"lr": 0.01, "crop_size": [256, 512]},
            "history": [{"epoch": 3, "iteration": 1234, "loss": 0.321, "loss_labeled": 0.2,
                         "loss_pseudo": 0.121, "lr": 0.009}]}
    torch.save(ckpt, tmp_path / "model.pt")
    s = inspect(tmp_path / "model.pt")
    assert "deeplabv3plus_r50" in s and "epoch 3/40" in s and "iteration 1,234" in s and "round 1" in s
    assert f"parameters: {nparams:,}" in s and "loss 0.321" in s and "crop_size: [256, 512]" in s
    assert "weights_only=True" in s


def test_miou_run_and_aggregate(tmp_path):
    run = write_json(tmp_path / "run" / "miou.json", {
        "dataset": "synth", "split": 3, "method": "dars", "seed": 0, "round": 1, "class_names": list(CLASS_NAMES),
        "iou": [0.6543] + [None] * 18, "acc": [0.7] + [None] * 18, "miou": 0.6543, "macc": 0.7, "allacc": 0.91})
    s = inspect(run)
    assert "mIoU 65.43 %" in s and "allAcc 91.00 %" in s
    assert [r for r in s.splitlines() if r.startswith("sidewalk")][0].split()[1:] == ["-", "-"]
    agg = write_json(tmp_path / "miou.json", {
        "dataset": "synth", "split": 3, "round": 1, "method": "dars", "seeds": [0, 1], "miou_mean": 0.5,
        "miou_std": 0.01, "iou_mean": [0.5] * 19, "per_seed": [{"seed": 0, "miou": 0.49, "file": "a"},
                                                               {"seed": 1, "miou": 0.51, "file": "b"}]})
    s = inspect(agg)
    assert "mIoU 50.00 +- 1.00 %" in s and "seed 1: 51.00 %" in s


def test_synthetic_stats(tmp_path):
    st = write_json(tmp_path / "stats.json", {"shares": [0.2] * 19, "target_shares": [0.1] * 19,
                                               "presence": [1.0] * 19, "void_share": 0.05})
    s = inspect(st)
    assert "void_share: 0.05" in s and "shares/target_shares" in s
    assert [r for r in s.splitlines() if r.startswith("road")][0].split()[-1] == "2"


def test_unknown_and_missing(tmp_path):
    (tmp_path / "notes.bin").write_bytes(b"x")
    with pytest.raises(DarsError, match="supported:.*model.pt"):
        inspect(tmp_path / "notes.bin")
    with pytest.raises(DarsError, match="supported"):
        inspect(write_json(tmp_path / "other.json", {"a": 1}))
    with pytest.raises(DarsError, match="no such file"):
        inspect(tmp_path / "absent.json")


def test_render_overlay(tmp_path):
    img = np.full((H, W, 3), 200, np.uint8)
    gt = np.full((H, W), 255, np.uint8)
    gt[:, :W // 2] = 0
    out = render_overlay(img, gt, np.full((H // 2, W // 2), 13, np.uint8), out_png=tmp_path / "o.png",
                         classes=CITYSCAPES_CLASSES)
    saved = cv2.cvtColor(cv2.imread(str(tmp_path / "o.png")), cv2.COLOR_BGR2RGB)
    assert saved.shape == (H, 3 * W, 3) and (saved == out).all()
    assert (saved[25:, W + W // 2:2 * W] == 0).all()  # ignore is black
    assert (saved[25:, 2 * W:] == PALETTE[13]).all()  # resized prediction


def test_overlay_of_pseudo_png(tmp_path, root):
    rnd = tmp_path / "results" / "dars" / "round1"
    pseudo = np.full((H, W), 255, np.uint8)
    pseudo[:H // 2] = 8
    write_png(rnd / "pseudo" / "0" / f"{IDS[1]}.png", pseudo)
    (rnd / "pseudo_labels.txt").write_text(
        "".join(f"{image_rel(i)} pseudo/0/{i}.png\n" for i in IDS[:2]))
    s = inspect(rnd / "pseudo" / "0" / f"{IDS[1]}.png", overlay=tmp_path / "o.png", root=root)
    assert image_rel(IDS[1]) in s and "= 50.00 %" in s
    o = cv2.cvtColor(cv2.imread(str(tmp_path / "o.png")), cv2.COLOR_BGR2RGB)
    assert o.shape == (H, 3 * W, 3)
    image = cv2.cvtColor(cv2.imread(str(root / image_rel(IDS[1]))), cv2.COLOR_BGR2RGB)
    assert (o[20:, :W] == image[20:]).all()
    assert (o[50:, W:2 * W] == 0).all()  # ground-truth ignore band
    assert (o[32:, 2 * W:] == 0).all() and (o[20:32, 2 * W:] == PALETTE[8]).all()


def test_overlay_of_shard_image_darkens_low_confidence(tmp_path, root):
    shard = make_shard(tmp_path / "shards" / "0")
    s = inspect(shard / IDS[1], overlay=tmp_path / "o.png", root=root)
    assert IDS[1] in s and "below 0.9: 75.00 %" in s
    o = cv2.cvtColor(cv2.imread(str(tmp_path / "o.png")), cv2.COLOR_BGR2RGB)
    assert o.shape == (H, 3 * W, 3)
    assert (o[-16:, 2 * W + 40:] == PALETTE[2]).all()  # confidence 1.0: full colour
    assert (o[20:-16, 2 * W + 40:] == (PALETTE[2] * 0.35).astype(np.uint8)).all()  # 0.55 < LOW_CONFIDENCE
    assert (o[20:50, W + W // 2:2 * W] == PALETTE[13]).all() and (o[50:, W:2 * W] == 0).all()
    assert LOW_CONFIDENCE > 0.55


def test_overlay_finds_root_from_split_json_and_handles_missing_gt(tmp_path, root):
    seed = tmp_path / "results" / "synth" / "split3" / "seed0"
    write_json(seed / "split" / "split.json", {"root": str(root)})
    shard = make_shard(seed / "round0" / "shards" / "0")
    (root / gt_rel(IDS[0])).unlink()
    s = inspect(shard, overlay=tmp_path / "o.png")
    assert "ground truth (missing)" in s
    o = cv2.imread(str(tmp_path / "o.png"))
    assert o.shape == (H, 3 * W, 3) and (o[20:, W:2 * W] == 0).all()
    no_paths = make_shard(tmp_path / "bare", with_paths=False)
    with pytest.raises(DarsError, match="no image path"):
        inspect(no_paths, overlay=tmp_path / "p.png", root=root)


def test_checkpoint_falls_back_when_safe_loading_refuses(tmp_path):
    import argparse
    ckpt = {"model": {"w": torch.zeros(2, 3)}, "model_name": "m", "num_classes": 19, "round": 0,
            "epoch": 1, "epochs": 1, "iteration": 5, "settings": argparse.Namespace(lr=0.5), "history": []}
    torch.save(ckpt, tmp_path / "model.pt")
    s = inspect(tmp_path / "model.pt")
    assert "weights_only=False" in s and "lr: 0.5" in s and "parameters: 6" in s
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DarsError, match="not a readable"):
        inspect(tmp_path / "bad.pt")
