"""The embedded synthetic dataset: Cityscapes layout, consistent labels, determinism, long-tailed shares."""
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from dars.classes import CITYSCAPES_PIXEL_SHARE, CLASS_NAMES, LABELID_TO_TRAINID, NUM_CLASSES, TRAINID_TO_LABELID
from dars.data import synthetic
from dars.data.synthetic import TRAIN_CITIES, VAL_CITIES, generate, rare_plan, render
from dars.io import DarsError

SMALL = dict(num_train=24, num_val=8, height=64, width=128)
VOID_IDS = {0, 1, 4, 6, 9}
RARE_NAMES = ("truck", "bus", "train", "motorcycle", "rider")
IMAGE_RE = re.compile(r"(?P<city>[a-z]+)_(?P<seq>\d{6})_000019_leftImg8bit\.png")


def _tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "data"
    return root, generate(root, seed=3, **SMALL)


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    """The default dataset (240 + 48 images at 128x256), generated once for the share tests."""
    root = tmp_path_factory.mktemp("synthetic_default") / "data"
    return root, generate(root)


def test_layout_and_file_names(small):
    root, _ = small
    assert sorted(p.name for p in root.iterdir()) == ["gtFine", "leftImg8bit", "stats.json"]
    assert not list(root.parent.glob(".data.*"))  # no temporary directory left beside it
    for split, n, cities in (("train", SMALL["num_train"], TRAIN_CITIES), ("val", SMALL["num_val"], VAL_CITIES)):
        images = sorted((root / "leftImg8bit" / split).glob("*/*.png"))
        assert len(images) == n
        seqs = set()
        for path in images:
            m = IMAGE_RE.fullmatch(path.name)
            assert m and m["city"] == path.parent.name and m["city"] in cities, path
            seqs.add((m["city"], m["seq"]))
            stem = path.name[:-len("_leftImg8bit.png")]
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert img.shape == (SMALL["height"], SMALL["width"], 3) and img.dtype == np.uint8
            for suffix in ("labelIds", "labelTrainIds"):
                label = cv2.imread(str(root / "gtFine" / split / m["city"] / f"{stem}_gtFine_{suffix}.png"),
                                   cv2.IMREAD_UNCHANGED)
                assert label.shape == img.shape[:2] and label.dtype == np.uint8
        assert len(seqs) == n  # sequence numbers unique per city
        assert len(list((root / "gtFine" / split).glob("*/*.png"))) == 2 * n
    # images are spread over the cities round-robin
    assert {p.parent.name for p in (root / "leftImg8bit" / "val").glob("*/*.png")} == set(VAL_CITIES)


def test_label_ids_and_train_ids_consistent(small):
    root, _ = small
    for path in sorted((root / "gtFine").rglob("*_gtFine_labelIds.png")):
        label_ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        train_ids = cv2.imread(str(path).replace("_labelIds", "_labelTrainIds"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(train_ids, LABELID_TO_TRAINID[label_ids])
        ids = set(np.unique(label_ids).tolist())
        assert ids <= VOID_IDS | set(TRAINID_TO_LABELID.tolist()), ids
        assert (train_ids[train_ids != 255] < NUM_CLASSES).all()
        assert (label_ids[-1] == 1).all()  # the ego vehicle covers the bottom row


def test_deterministic_and_seed_dependent(small, tmp_path):
    root, stats = small
    again = generate(tmp_path / "again", seed=3, **SMALL)
    assert again == stats
    assert _tree_digest(tmp_path / "again") == _tree_digest(root)
    generate(tmp_path / "other", seed=4, **SMALL)
    assert _tree_digest(tmp_path / "other") != _tree_digest(root)
    # each image has its own generator: it does not depend on how many images come before or after it
    i = 20  # the 21st train image: round-robin over 18 cities puts it in the 3rd city, sequence number 1
    img, lab = render(3, 0, i, 64, 128, rare_plan(3, 0, SMALL["num_train"])[i])
    stem = f"{TRAIN_CITIES[2]}_000001_000019"
    saved = cv2.imread(str(root / "leftImg8bit" / "train" / TRAIN_CITIES[2] / f"{stem}_leftImg8bit.png"))
    np.testing.assert_array_equal(cv2.cvtColor(saved, cv2.COLOR_BGR2RGB), img)
    np.testing.assert_array_equal(cv2.imread(str(root / "gtFine" / "train" / TRAIN_CITIES[2] /
                                                 f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED), lab)


def test_stats_json_matches_files(small):
    root, stats = small
    assert json.loads((root / "stats.json").read_text()) == stats
    for key, value in SMALL.items():
        assert stats[key] == value
    assert stats["seed"] == 3 and stats["class_names"] == list(CLASS_NAMES)
    counts = np.zeros(256, np.int64)
    presence = {"train": np.zeros(NUM_CLASSES, int), "val": np.zeros(NUM_CLASSES, int)}
    for split in presence:
        for path in (root / "gtFine" / split).glob("*/*_labelTrainIds.png"):
            hist = np.bincount(cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ravel(), minlength=256)
            presence[split] += hist[:NUM_CLASSES] > 0
            if split == "train":
                counts += hist
    share = counts[:NUM_CLASSES] / counts[:NUM_CLASSES].sum()
    np.testing.assert_allclose(stats["train_share"], share, atol=1e-6)
    np.testing.assert_allclose(stats["target_share"], CITYSCAPES_PIXEL_SHARE)
    np.testing.assert_allclose(stats["ratio"], share / CITYSCAPES_PIXEL_SHARE, rtol=1e-3)
    assert stats["void_share"] == pytest.approx(counts[255] / counts.sum(), abs=1e-6)
    assert stats["train_image_presence"] == presence["train"].tolist()
    assert stats["val_image_presence"] == presence["val"].tolist()
    assert stats["val_missing_classes"] == [CLASS_NAMES[c] for c in range(NUM_CLASSES) if presence["val"][c] == 0]
    ratio = np.asarray(stats["ratio"])
    assert stats["within_factor_1_5"] == bool(((ratio >= 1 / 1.5) & (ratio <= 1.5)).all())


def test_default_shares_follow_cityscapes(default):
    _, stats = default
    ratio = np.asarray(stats["ratio"])
    assert stats["within_factor_1_5"], dict(zip(CLASS_NAMES, ratio.round(2)))
    assert ((ratio > 1 / 1.5) & (ratio < 1.5)).all()
    assert 200 < stats["largest_smallest_share"] < 700  # Cityscapes: 386
    assert 0.07 < stats["void_share"] < 0.13  # Cityscapes: 0.116
    assert stats["val_missing_classes"] == [] and min(stats["val_image_presence"]) > 0


def test_default_presence_long_tail(default):
    _, stats = default
    n = stats["num_train"]
    presence = dict(zip(CLASS_NAMES, np.asarray(stats["train_image_presence"]) / n))
    share = dict(zip(CLASS_NAMES, stats["train_share"]))
    for name in RARE_NAMES:  # a random 1/8 labeled subset (30 images) almost surely contains each
        assert presence[name] >= 0.12, (name, presence[name])
    for name in ("truck", "bus", "train", "motorcycle"):  # rare ...
        assert presence[name] <= 0.25, (name, presence[name])
    for name in ("pole", "traffic sign", "traffic light", "person", "bicycle", "car", "vegetation"):  # ... frequent
        assert presence[name] >= 0.5, (name, presence[name])
    # ... but large where present: more pixels per image containing them than the small frequent classes
    per_image = {c: share[c] / presence[c] for c in CLASS_NAMES}
    for big in ("truck", "bus", "train"):
        for small_class in ("traffic light", "traffic sign", "bicycle"):
            assert per_image[big] > per_image[small_class], (big, small_class)


@pytest.mark.parametrize("seed", [1, 2])
def test_shares_within_factor_for_other_seeds(seed):
    """Shares over a default-size train set (rendered in memory, no files) for other seeds."""
    counts = np.zeros(256, np.int64)
    for i, rare in enumerate(rare_plan(seed, 0, 240)):
        counts += np.bincount(LABELID_TO_TRAINID[render(seed, 0, i, 128, 256, rare)[1]].ravel(), minlength=256)
    ratio = counts[:NUM_CLASSES] / counts[:NUM_CLASSES].sum() / CITYSCAPES_PIXEL_SHARE
    assert ((ratio > 1 / 1.5) & (ratio < 1.5)).all(), dict(zip(CLASS_NAMES, ratio.round(2)))


def test_thin_classes_at_least_3_px_wide():
    """Unoccluded horizontal runs of poles and traffic lights are >= 3 px at 128x256."""
    background = {7, 8, 11, 12, 13, 21, 22, 23}
    narrow = total = 0
    for i, rare in enumerate(rare_plan(0, 0, 40)):
        lab = render(0, 0, i, 128, 256, rare)[1]
        for lid in (17, 19):
            for y, row in enumerate(lab == lid):
                edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
                for a, b in zip(edges[::2], edges[1::2]):
                    if 0 < a and b < lab.shape[1] and lab[y, a - 1] in background and lab[y, b] in background:
                        total += 1
                        narrow += b - a < 3
    assert total > 500 and narrow <= 0.01 * total


@pytest.mark.parametrize("index", [0, 1])
def test_scene_geometry_scales_with_resolution(index):
    """Sizes are relative to the image: the same scene at 64x128 / 256x512 matches the 128x256 labels."""
    ref = render(0, 0, index, 128, 256)[1]
    for h, w in ((64, 128), (256, 512)):
        img, lab = render(0, 0, index, h, w)
        assert img.shape == (h, w, 3) and lab.shape == (h, w)
        small, big = (lab, ref) if h < 128 else (ref, lab)
        agree = (cv2.resize(big, small.shape[::-1], interpolation=cv2.INTER_NEAREST) == small).mean()
        assert agree > 0.93, (h, w, agree)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_train=0), "num_train"), (dict(num_val=-2), "num_val"), (dict(height=31), "height"),
    (dict(width=63), "width"), (dict(seed=-1), "seed"), (dict(num_train=2.5), "num_train"),
    (dict(num_val=True), "num_val")])
def test_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(DarsError, match=name):
        generate(tmp_path / "data", **{**SMALL, **kwargs})
    assert not (tmp_path / "data").exists()


def test_failure_leaves_no_partial_tree(tmp_path, monkeypatch):
    root = tmp_path / "data"
    generate(root, seed=0, num_train=2, num_val=1, height=32, width=64)
    before = _tree_digest(root)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("boom")
        return render(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render", failing)
    with pytest.raises(RuntimeError):
        generate(root, seed=1, num_train=4, num_val=2, height=32, width=64)
    assert _tree_digest(root) == before  # the old complete tree is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
