import json

import cv2
import numpy as np
import pytest
import torch
from helpers import write_cityscapes_tree

from dars.data.cityscapes import find_pairs, prepare
from dars.data.layouts import image_id
from dars.data.lists import read_ids, read_list, read_pseudo_list, write_list
from dars.data.splits import make_split
from dars.data.transforms import MEAN, augment, normalize_batch, to_tensors
from dars.io import DarsError, read_image, read_label
from dars.prior import prior_stage


def test_find_pairs_and_ids(tiny_cityscapes):
    pairs = find_pairs(tiny_cityscapes, "train")
    assert len(pairs) == 8
    img, lab = pairs[0]
    assert img.startswith("leftImg8bit/train/") and lab.endswith("_gtFine_labelTrainIds.png")
    assert image_id(img) == "aachen_000000_000019"


def test_list_formats(tmp_path):
    """One reader per format: pair lists (comments and blank lines skipped), pseudo_labels.txt
    (labels beside the list), id lists; write_list is read_list's inverse."""
    pairs = [("leftImg8bit/train/a/a_000000_000019_leftImg8bit.png", "gtFine/train/a/a_000000_000019_x.png"),
             ("images/00001.png", "labels_trainIds/00001.png")]
    write_list(tmp_path / "l.txt", pairs)
    assert (tmp_path / "l.txt").read_text() == "".join(f"{i} {lab}\n" for i, lab in pairs)
    (tmp_path / "c.txt").write_text("# a comment\n\n" + (tmp_path / "l.txt").read_text())
    assert read_list(tmp_path / "l.txt") == read_list(tmp_path / "c.txt") == pairs
    (tmp_path / "run/pseudo/0").mkdir(parents=True)
    write_list(tmp_path / "run/pseudo_labels.txt", [(pairs[1][0], "pseudo/0/00001.png")])
    assert read_pseudo_list(tmp_path / "run/pseudo_labels.txt") == [(pairs[1][0], tmp_path / "run/pseudo/0/00001.png")]
    (tmp_path / "bad.txt").write_text("one two three\n")
    with pytest.raises(DarsError, match="bad.txt:1: expected"):
        read_list(tmp_path / "bad.txt")
    with pytest.raises(DarsError, match="list file not found"):
        read_pseudo_list(tmp_path / "missing.txt")
    (tmp_path / "ids.txt").write_text("00002\n# skipped\n\n/JPEGImages/2007_000032.jpg /SegmentationClassAug/x.png\n")
    assert read_ids(tmp_path / "ids.txt") == ["00002", "2007_000032"]
    assert [image_id(i) for i, _ in pairs] == ["a_000000_000019", "00001"]
    assert image_id("scannet_frames_25k/scene0000_00/color/000100.jpg") == "scene0000_00_000100"


def test_missing_root_and_missing_trainids(tmp_path):
    with pytest.raises(DarsError, match="leftImg8bit"):
        find_pairs(tmp_path / "nope", "train")
    root = write_cityscapes_tree(tmp_path / "cs", trainids=False)
    with pytest.raises(DarsError, match="prepare cityscapes"):
        find_pairs(root, "train")
    assert prepare(root) == 10
    assert prepare(root) == 0  # never rewrites existing files
    pairs = find_pairs(root, "train")
    lab = read_label(root / pairs[0][1])
    assert set(np.unique(lab)) <= set(range(19)) | {255}


def test_random_split_is_seeded_and_nested(tiny_cityscapes, tmp_path):
    make_split(tiny_cityscapes, 4, 3, tmp_path / "s4", "tiny")
    make_split(tiny_cityscapes, 8, 3, tmp_path / "s8", "tiny")
    make_split(tiny_cityscapes, 8, 3, tmp_path / "s8b", "tiny")
    l4 = read_list(tmp_path / "s4/labeled.txt")
    l8 = read_list(tmp_path / "s8/labeled.txt")
    assert len(l4) == 2 and len(l8) == 1
    assert set(l8) <= set(l4)
    assert (tmp_path / "s8/labeled.txt").read_bytes() == (tmp_path / "s8b/labeled.txt").read_bytes()
    unl = read_list(tmp_path / "s8/unlabeled.txt")
    assert len(unl) == 7 and not set(unl) & set(l8)
    info = json.loads((tmp_path / "s8/split.json").read_text())
    assert info["source"] == "random" and info["num_labeled"] == 1
    assert len(info["labeled_class_images"]) == 19


def test_imported_split(tiny_cityscapes, tmp_path):
    pairs = find_pairs(tiny_cityscapes, "train")[:3]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{i} {lab}\n" for i, lab in pairs))
    make_split(tiny_cityscapes, 8, 0, tmp_path / "imp", "tiny", list_file=lst)
    info = json.loads((tmp_path / "imp/split.json").read_text())
    assert info["source"] == "imported" and info["num_labeled"] == 3 and info["source_sha256"]
    bad = tmp_path / "bad.txt"
    bad.write_text("leftImg8bit/train/x/y_leftImg8bit.png gtFine/train/x/y.png\n")
    with pytest.raises(DarsError, match="bad.txt"):
        make_split(tiny_cityscapes, 8, 0, tmp_path / "bad", "tiny", list_file=bad)


def test_split_refuses_what_would_train_on_nothing_or_on_bad_ids(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cs", num_train=8)
    empty = tmp_path / "empty.txt"
    empty.write_text("# no pairs\n")
    with pytest.raises(DarsError, match="empty.txt: the imported split list is empty"):
        make_split(root, 8, 0, tmp_path / "e", "tiny", list_file=empty)
    with pytest.raises(DarsError, match="split=1000: 1/1000 of the 8 train images"):
        make_split(root, 1000, 0, tmp_path / "big", "tiny")
    _, lab = find_pairs(root, "train")[0]
    y = read_label(root / lab)
    y[5, 5] = 50  # a labelId where a trainId belongs
    cv2.imwrite(str(root / lab), y)
    with pytest.raises(DarsError, match=f"{lab}: label id 50 is neither a class"):
        make_split(root, 1, 0, tmp_path / "ids", "tiny")
    assert not (tmp_path / "e").exists() and not (tmp_path / "big").exists() and not (tmp_path / "ids").exists()


def test_prior_counts_labeled_pixels(tiny_cityscapes, tmp_path):
    make_split(tiny_cityscapes, 4, 0, tmp_path / "s", "tiny")
    prior_stage(tiny_cityscapes, tmp_path / "s/labeled.txt", tmp_path / "prior.json")
    prior = json.loads((tmp_path / "prior.json").read_text())
    expected = np.zeros(19, np.int64)
    void = 0
    for _, lab in read_list(tmp_path / "s/labeled.txt"):
        y = read_label(tiny_cityscapes / lab)
        expected += np.bincount(y[y != 255], minlength=19)
        void += int((y == 255).sum())
    assert prior["counts"] == expected.tolist() and prior["void_pixels"] == void
    assert abs(sum(prior["shares"]) - 1) < 1e-9


def test_augment_shapes_and_ignore_padding():
    rng = np.random.default_rng(0)
    image = np.full((20, 40, 3), 100, np.uint8)
    label = np.zeros((20, 40), np.uint8)
    img, lab = augment(image, label, rng, crop=(32, 48), scale_range=(0.5, 0.6))
    assert img.shape == (32, 48, 3) and lab.shape == (32, 48)
    assert (lab == 255).any() and set(np.unique(lab)) <= {0, 255}
    a = augment(image, label, np.random.default_rng(5), crop=(16, 16), scale_range=(0.5, 2))
    b = augment(image, label, np.random.default_rng(5), crop=(16, 16), scale_range=(0.5, 2))
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


def _sequential_augment(image, label, rng, crop, scale_range, rotate=10.0, blur=True, flip=True):
    """The paper's chain step by step on whole arrays (scale, rotate, blur, flip, pad, crop),
    drawing the same random numbers in the same order: the reference for the fused warp."""
    s = rng.uniform(*scale_range)
    h, w = image.shape[:2]
    nh, nw = max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
    mean = tuple(float(v) for v in MEAN)
    if rotate and rng.random() < 0.5:
        m = cv2.getRotationMatrix2D((nw / 2, nh / 2), rng.uniform(-rotate, rotate), 1.0)
        image = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=mean)
        label = cv2.warpAffine(label, m, (nw, nh), flags=cv2.INTER_NEAREST, borderValue=255)
    if blur and rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.1, 2.0))
    if flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    ch, cw = crop
    pad_h, pad_w = max(ch - nh, 0), max(cw - nw, 0)
    image = cv2.copyMakeBorder(np.ascontiguousarray(image), 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=mean)
    label = cv2.copyMakeBorder(np.ascontiguousarray(label), 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=255)
    y = int(rng.integers(0, label.shape[0] - ch + 1))
    x = int(rng.integers(0, label.shape[1] - cw + 1))
    return image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]


def test_fused_augment_matches_the_sequential_chain(tiny_cityscapes):
    """One warp per array equals scale -> rotate -> blur -> flip -> pad -> crop up to resampling:
    images within a few grey levels, labels equal except on class borders (nearest neighbour
    at the image's pixel centres vs cv2.resize's convention). A wrong flip, rotation sign,
    offset or padding side would fail by far."""
    image = read_image(next(tiny_cityscapes.glob("leftImg8bit/train/*/*.png")))
    label = read_label(next(tiny_cityscapes.glob("gtFine/train/*/*labelTrainIds.png")))
    image = cv2.resize(image, (256, 128), interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, (256, 128), interpolation=cv2.INTER_NEAREST)
    for seed in range(16):
        kw = dict(crop=(96, 144), scale_range=(0.5, 2.0))
        ref_img, ref_lab = _sequential_augment(image, label, np.random.default_rng(seed), **kw)
        img, lab = augment(image, label, np.random.default_rng(seed), **kw)
        assert img.shape == ref_img.shape and lab.shape == ref_lab.shape and img.dtype == np.uint8
        assert (lab == ref_lab).mean() > 0.95, seed
        assert np.abs(img.astype(int) - ref_img.astype(int)).mean() < 4, seed


def test_normalize_batch_is_to_tensors_bitwise():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    x = normalize_batch(torch.from_numpy(images))
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x.contiguous(), torch.stack([to_tensors(im) for im in images]))


def test_pairs_of_different_sizes_are_a_clear_error(tmp_path):
    from dars.data.dataset import SegmentationPairs
    from dars.io import write_png
    write_png(tmp_path / "a.png", np.zeros((8, 12, 3), np.uint8), rgb=True)
    write_png(tmp_path / "a_label.png", np.zeros((8, 10), np.uint8))
    pairs = SegmentationPairs([(tmp_path / "a.png", tmp_path / "a_label.png")],
                              augment_args=dict(crop=(4, 4), scale_range=(1, 1)))
    with pytest.raises(DarsError, match="a_label.png: label is 8x10 but its image"):
        pairs[0]
