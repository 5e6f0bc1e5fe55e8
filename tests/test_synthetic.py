"""The embedded synthetic datasets: city (Cityscapes layout, long-tailed shares) and game (GTA5 layout, shifted)."""
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from dars.classes import (
    CITYSCAPES_PIXEL_SHARE,
    CLASS_NAMES,
    LABELID_TO_TRAINID,
    NUM_CLASSES,
    TRAINID_TO_LABELID,
    train_ids_to_label_ids,
)
from dars.io import DarsError
from dars.synthetic import TRAIN_CITIES, VAL_CITIES, generate, rare_plan, render
from dars.synthetic import dataset as synthetic

SMALL = dict(num_train=24, num_val=8, height=64, width=128)
VOID_IDS = {0, 1, 4, 6, 9}
RARE_NAMES = ("truck", "bus", "train", "motorcycle", "rider")
IMAGE_RE = re.compile(r"(?P<city>[a-z]+)_(?P<seq>\d{6})_000019_leftImg8bit\.png")


def _tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _content_digest(root):
    """One hash of a tree's file names, decoded PNG pixels and other files' bytes (independent of the PNG coder)."""
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            data = cv2.imread(str(p), cv2.IMREAD_UNCHANGED).tobytes() if p.suffix == ".png" else p.read_bytes()
            h.update(str(p.relative_to(root)).encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


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


# --- The city domain is frozen ------------------------------------------------------------------------------------

# Recorded from the generator before the game domain existed: existing datasets and results depend on the city
# output staying identical for the same arguments.
CITY_TINY = dict(seed=5, num_train=4, num_val=2, height=32, width=64)
CITY_TINY_DIGEST = "205e71ede350e3ee75c5267f043f87101245287519652fceca95430ec604123a"


def test_city_output_unchanged(tmp_path):
    generate(tmp_path / "data", **CITY_TINY)
    assert _content_digest(tmp_path / "data") == CITY_TINY_DIGEST
    generate(tmp_path / "explicit", **CITY_TINY, domain="city")
    assert _tree_digest(tmp_path / "explicit") == _tree_digest(tmp_path / "data")


# --- The game domain: GTA5 layout, a shifted appearance and class shares ------------------------------------------

GAME_SMALL = dict(num_train=24, num_val=0, height=64, width=128)
GAME_NAME_RE = re.compile(r"\d{5}\.png")
VALID_LABEL_IDS = {0} | set(TRAINID_TO_LABELID.tolist())  # void is written as 0 (unlabeled)


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    root = tmp_path_factory.mktemp("game") / "data"
    return root, generate(root, seed=3, domain="game", **GAME_SMALL)


def _class_stats(images_and_labels):
    """Train-id pixel shares (19), per-class mean RGB (19 x 3) and presence over (RGB, labelIds) pairs."""
    counts, colour = np.zeros(256), np.zeros((256, 3))
    for img, label_ids in images_and_labels:
        t = LABELID_TO_TRAINID[label_ids].ravel()
        counts += np.bincount(t, minlength=256)
        for c in range(3):
            colour[:, c] += np.bincount(t, weights=img[..., c].ravel(), minlength=256)
    n = counts[:NUM_CLASSES]
    return n / n.sum(), colour[:NUM_CLASSES] / np.maximum(n, 1)[:, None], n > 0


def _game_files(root):
    for path in sorted((root / "images").iterdir()):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        yield img, cv2.imread(str(root / "labels" / path.name), cv2.IMREAD_UNCHANGED)


def test_game_gta5_layout(game):
    root, stats = game
    assert sorted(p.name for p in root.iterdir()) == ["images", "labels", "stats.json"]  # no val split
    names = [f"{i:05d}.png" for i in range(1, GAME_SMALL["num_train"] + 1)]
    assert sorted(p.name for p in (root / "images").iterdir()) == names
    assert sorted(p.name for p in (root / "labels").iterdir()) == names
    assert all(GAME_NAME_RE.fullmatch(n) for n in names)
    for img, label in _game_files(root):
        assert img.shape == (GAME_SMALL["height"], GAME_SMALL["width"], 3) and img.dtype == np.uint8
        assert label.shape == img.shape[:2] and label.dtype == np.uint8
        ids = set(np.unique(label).tolist())
        assert ids <= VALID_LABEL_IDS, ids  # Cityscapes labelIds: each maps to a train id, or 0 to ignore
        assert (LABELID_TO_TRAINID[label][label != 0] < NUM_CLASSES).all()
    assert stats["domain"] == "game" and stats["layout"] == "gta5" and stats["num_images"] == 24
    assert stats["missing_classes"] == []


def test_game_deterministic_and_matches_render(game, tmp_path):
    root, stats = game
    assert generate(tmp_path / "again", seed=3, domain="game", **GAME_SMALL) == stats
    assert _tree_digest(tmp_path / "again") == _tree_digest(root)
    generate(tmp_path / "other", seed=4, domain="game", **GAME_SMALL)
    assert _tree_digest(tmp_path / "other") != _tree_digest(root)
    i = 6
    img, lab = render(3, 0, i, 64, 128, rare_plan(3, 0, 24, "game")[i], "game")
    saved = cv2.imread(str(root / "images" / f"{i + 1:05d}.png"))
    np.testing.assert_array_equal(cv2.cvtColor(saved, cv2.COLOR_BGR2RGB), img)
    np.testing.assert_array_equal(cv2.imread(str(root / "labels" / f"{i + 1:05d}.png"), cv2.IMREAD_UNCHANGED),
                                  train_ids_to_label_ids(LABELID_TO_TRAINID[lab]))
    # its own random stream: the same seed does not give the city scene in other colours
    city_lab = render(3, 0, i, 64, 128, rare_plan(3, 0, 24)[i])[1]
    assert (LABELID_TO_TRAINID[city_lab] == LABELID_TO_TRAINID[lab]).mean() < 0.8


def test_game_stats_match_files(game):
    root, stats = game
    assert json.loads((root / "stats.json").read_text()) == stats
    share, colour, present = _class_stats(_game_files(root))
    np.testing.assert_allclose(stats["train_share"], share, atol=1e-6)
    np.testing.assert_allclose(stats["ratio_to_cityscapes"], share / CITYSCAPES_PIXEL_SHARE, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(stats["mean_colour_rgb"])[present], colour[present], atol=0.01)
    assert stats["class_names"] == list(CLASS_NAMES)


def test_game_differs_from_city(game):
    """The domain shift: per-class appearance and class shares, against a city set of the same size and seed."""
    root, _ = game
    g_share, g_colour, g_present = _class_stats(_game_files(root))
    city = (render(3, 0, i, 64, 128, rare) for i, rare in enumerate(rare_plan(3, 0, GAME_SMALL["num_train"])))
    c_share, c_colour, c_present = _class_stats(city)
    assert (g_present & c_present).all()  # the same 19 classes in both
    dist = dict(zip(CLASS_NAMES, np.linalg.norm(g_colour - c_colour, axis=1)))
    assert np.median(list(dist.values())) > 40, dist  # mean RGB distance; about 60 at this size
    assert sum(d > 20 for d in dist.values()) >= 14, dist
    for name in ("road", "sidewalk", "building", "vegetation", "terrain", "sky", "car"):
        assert dist[name] > 25, (name, dist[name])
    ratio = dict(zip(CLASS_NAMES, g_share / c_share))
    for name, low in (("sky", 1.5), ("car", 1.15)):  # more sky and vehicles ...
        assert ratio[name] > low, (name, ratio[name])
    for name, high in (("sidewalk", 0.6), ("pole", 0.7), ("traffic sign", 0.6), ("person", 0.5),
                       ("vegetation", 0.8), ("bicycle", 0.5)):  # ... fewer poles, signs, people, trees
        assert ratio[name] < high, (name, ratio[name])
    assert np.abs(g_share - c_share).sum() > 0.2
    # warmer light: red over blue of the whole image
    g_rgb = np.average(g_colour, axis=0, weights=g_share)
    c_rgb = np.average(c_colour, axis=0, weights=c_share)
    assert g_rgb[0] - g_rgb[2] > c_rgb[0] - c_rgb[2] + 10, (g_rgb, c_rgb)


def test_game_rare_plan():
    plan = rare_plan(0, 0, 40, "game")
    count = {label: sum(label in p for p in plan) for label in (27, 28, 31, 32)}
    assert count == {27: 12, 28: 12, 31: 2, 32: 8}  # truck 0.3, bus 0.3, train 0.05, motorcycle 0.2 of 40
    assert plan != rare_plan(0, 0, 40)


def test_domain_arguments(tmp_path):
    with pytest.raises(DarsError, match="domain"):
        generate(tmp_path / "data", domain="gta", **SMALL)
    with pytest.raises(DarsError, match="num_val"):  # the city domain needs a val split, the game domain not
        generate(tmp_path / "data", **{**SMALL, "num_val": 0})
    assert not (tmp_path / "data").exists()
