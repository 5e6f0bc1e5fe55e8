"""Readers of the real dataset layouts, on tiny fixture trees written in those layouts."""
import cv2
import numpy as np
import pytest
from PIL import Image

from dars import classes
from dars.data import labelmaps, layouts
from dars.data.layouts import image_id
from dars.io import DarsError, read_label, write_png

H, W = 16, 24
# Cityscapes labelId -> trainId, written out from datasets.md (not taken from dars.classes).
CS_MAP = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
          25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def expect(mapping, source):
    """Pixel-by-pixel expectation: every id not in `mapping` is ignore."""
    return np.array([[mapping.get(int(v), 255) for v in row] for row in source], dtype=np.uint8)


def random_image(rng, h=H, w=W):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def save_palette_png(path, ids):
    """Ids as palette indices, the way GTA5 and VOC's SegmentationClass store them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode="P")
    img.putpalette(classes.voc_palette().ravel().tolist())
    img.save(path)


def check_never_overwrites(name, root, pairs, **options):
    """A rerun writes nothing; a changed label survives a rerun; a deleted one comes back."""
    assert layouts.prepare(name, root, **options) == 0
    kept, gone = root / pairs[0][1], root / pairs[-1][1]
    write_png(kept, np.full((H, W), 3, np.uint8))
    before = read_label(gone)
    gone.unlink()
    assert layouts.prepare(name, root, **options) == 1
    assert (read_label(kept) == 3).all()
    assert (read_label(gone) == before).all()


def check_labels(name, root, pairs):
    for _, lab in pairs:
        labelmaps.check_train_ids(root / lab, read_label(root / lab), layouts.class_set(name).num_classes)


def check_path_rules(name, root, pairs):
    """The registry's path rules agree with find_pairs: image -> label, image id -> image, root -> layout."""
    assert layouts.recognise(root) == name
    for image, label in pairs:
        assert layouts.label_path(name, image) == label
        assert layouts.images_with_id(name, root, image_id(image)) == [image]
        assert layouts.layout(name).image_id(image) == image_id(image)  # the layout's rule names its images
    assert layouts.images_with_id(name, root, "no_such_image") == []


# ---- Cityscapes ------------------------------------------------------------------------------

def write_cityscapes(root, rng):
    sources = {}
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        for i in range(2):
            stem = f"{city}_{i:06d}_000019"
            ids = rng.integers(0, 34, size=(H, W)).astype(np.uint8)
            ids[0, :3] = (26, 0, 7)
            write_png(root / f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", random_image(rng), rgb=True)
            write_png(root / f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", ids)
            sources[f"gtFine/{split}/{city}/{stem}_gtFine_labelTrainIds.png"] = ids
    return sources


def test_cityscapes_through_registry(tmp_path):
    root = tmp_path / "cs"
    sources = write_cityscapes(root, np.random.default_rng(0))
    with pytest.raises(DarsError, match="prepare cityscapes"):
        layouts.find_pairs("cityscapes", root, "train")
    assert layouts.prepare("cityscapes", root) == 4
    pairs = layouts.find_pairs("cityscapes", root, "train")
    assert [image_id(i) for i, _ in pairs] == ["aachen_000000_000019", "aachen_000001_000019"]
    for _, lab in pairs + layouts.find_pairs("cityscapes", root, "val"):
        got = read_label(root / lab)
        assert (got == expect(CS_MAP, sources[lab])).all()
        assert tuple(got[0, :3]) == (13, 255, 0)
    check_labels("cityscapes", root, pairs)
    check_path_rules("cityscapes", root, pairs + layouts.find_pairs("cityscapes", root, "val"))
    check_never_overwrites("cityscapes", root, pairs)


# ---- GTA5 ------------------------------------------------------------------------------------

def write_gta5(root, rng, n=3):
    sources = {}
    for i in range(1, n + 1):
        ids = rng.integers(0, 34, size=(H, W)).astype(np.uint8)
        ids[0, :2] = (26, 0)
        write_png(root / f"images/{i:05d}.png", random_image(rng), rgb=True)
        save_palette_png(root / f"labels/{i:05d}.png", ids)
        sources[f"labels_trainIds/{i:05d}.png"] = ids
    return sources


def test_gta5_prepare_and_pairs(tmp_path):
    root = tmp_path / "gta5"
    sources = write_gta5(root, np.random.default_rng(1))
    assert cv2.imread(str(root / "labels/00001.png"), cv2.IMREAD_UNCHANGED).ndim == 3  # really palette
    with pytest.raises(DarsError, match="python -m dars prepare gta5"):
        layouts.find_pairs("gta5", root, "train")
    assert layouts.prepare("gta5", root) == 3
    pairs = layouts.find_pairs("gta5", root, "train")
    assert pairs == [(f"images/{i:05d}.png", f"labels_trainIds/{i:05d}.png") for i in (1, 2, 3)]
    assert [image_id(i) for i, _ in pairs] == ["00001", "00002", "00003"]
    for _, lab in pairs:
        got = read_label(root / lab)
        assert (got == expect(CS_MAP, sources[lab])).all() and tuple(got[0, :2]) == (13, 255)
    assert layouts.class_set("gta5").names == classes.CLASS_NAMES
    check_path_rules("gta5", root, pairs)
    check_never_overwrites("gta5", root, pairs)


def test_gta5_splits_and_errors(tmp_path):
    root = tmp_path / "gta5"
    write_gta5(root, np.random.default_rng(2))
    layouts.prepare("gta5", root)
    with pytest.raises(DarsError, match="source domain"):
        layouts.find_pairs("gta5", root, "val")
    (root / "val.txt").write_text("00002\nimages/00003.png\n")
    assert [i for i, _ in layouts.find_pairs("gta5", root, "val")] == ["images/00002.png", "images/00003.png"]

    # A label of the wrong size and a missing label: both named, the good frame still written.
    write_png(root / "images/00004.png", random_image(np.random.default_rng(3)), rgb=True)
    save_palette_png(root / "labels/00004.png", np.zeros((H + 2, W), np.uint8))
    write_png(root / "images/00005.png", random_image(np.random.default_rng(4)), rgb=True)
    write_png(root / "images/00006.png", random_image(np.random.default_rng(5)), rgb=True)
    save_palette_png(root / "labels/00006.png", np.full((H, W), 24, np.uint8))
    with pytest.raises(DarsError, match=r"(?s)00004\.png: label is 24x18 but images/00004\.png is 24x16"
                                        r".*00005\.png: label missing"):
        layouts.prepare("gta5", root)
    assert (read_label(root / "labels_trainIds/00006.png") == 11).all()
    with pytest.raises(DarsError, match=r"1 images have no label in \S+/labels \(e\.g\. images/00005\.png\)"):
        layouts.find_pairs("gta5", root, "train")
    # Listing the usable frames in train.txt is the way out.
    (root / "train.txt").write_text("00001\n00002\n00006\n")
    assert layouts.prepare("gta5", root) == 0
    assert len(layouts.find_pairs("gta5", root, "train")) == 3


# ---- ScanNet ---------------------------------------------------------------------------------

TSV_ROWS = [  # raw id, nyu40id ("" = no NYU40 class)
    (1, "1"), (2, "5"), (3, "39"), (40, "13"), (7, ""), (1000, "36"), (5, "24"),
]
# raw -> nyu40 -> train id, by hand: wall 0, chair 4, other furniture 19, NYU40 13 (pillow) is
# not a benchmark class, 7 has no NYU40 class, bathtub 18, refrigerator 14; 0 and 77 are unknown.
SCANNET_MAP = {1: 0, 2: 4, 3: 19, 1000: 18, 5: 14}
RAW_IDS = np.array([0, 1, 2, 3, 40, 7, 1000, 5, 77], dtype=np.uint16)
# NYU40 id -> train id, by hand from the benchmark's class list (ScanNet's 2D evaluation script):
# floor stays floor, bed stays bed; 0 (unannotated) and the 20 other NYU40 classes are ignored.
NYU40_MAP = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7, 9: 8, 10: 9, 11: 10, 12: 11, 14: 12, 16: 13,
             24: 14, 28: 15, 33: 16, 34: 17, 36: 18, 39: 19}
SCENES = {"train": ["scene0000_00", "scene0002_01"], "val": ["scene0001_00"]}


def write_tsv(path, rows=TSV_ROWS, header=("id", "raw_category", "category", "count", "nyu40id", "nyu40class")):
    lines = ["\t".join(header)] + [f"{raw}\tthing{raw}\tthing\t5\t{nyu}\tx" for raw, nyu in rows]
    path.write_text("\n".join(lines) + "\n")


def scannet_label(rng, label_space):
    """A raw label: 16-bit, ids from RAW_IDS (77, 40, 1000 in the corner); an NYU40 one: 8-bit, every id 0..40."""
    if label_space == "raw":
        ids = RAW_IDS[rng.integers(0, RAW_IDS.size, size=(H, W))]
        ids[0, :3] = (77, 40, 1000)
        return ids
    ids = rng.integers(0, 41, size=(H, W)).astype(np.uint8)
    ids[0, :4] = (2, 4, 13, 0)  # floor, bed, pillow (not a benchmark class), unannotated
    return ids


def write_scannet(root, rng, label_space="raw"):
    """A stand-in scannet_frames_25k tree; its labels in `label_space`."""
    sources = {}
    root.mkdir(parents=True)
    for split, scenes in SCENES.items():
        (root / f"scannetv2_{split}.txt").write_text("".join(s + "\n" for s in scenes))
        for k, scene in enumerate(scenes):
            big = k == 0  # the first scene of each split has colour frames larger than its labels
            for frame in ("000000", "000100"):
                ids = scannet_label(rng, label_space)
                d = root / "scannet_frames_25k" / scene
                d.joinpath("color").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(d / f"color/{frame}.jpg"), random_image(rng, *((2 * H, 2 * W) if big else (H, W))))
                d.joinpath("label").mkdir(exist_ok=True)
                cv2.imwrite(str(d / f"label/{frame}.png"), ids)
                sources[f"scannet_frames_25k/{scene}/label20/{frame}.png"] = ids
    write_tsv(root / "scannetv2-labels.combined.tsv")
    return sources


def check_scannet_pairs(root, sources, mapping):
    train = layouts.find_pairs("scannet", root, "train")
    val = layouts.find_pairs("scannet", root, "val")
    assert len(train) == 4 and len(val) == 2
    for img, lab in train + val:
        got = read_label(root / lab)
        assert (got == expect(mapping, sources[lab])).all()
        image = cv2.imread(str(root / img))
        assert image.shape[:2] == got.shape  # the pipeline needs equal sizes
        assert ("color_resized" in img) != img.startswith("scannet_frames_25k/scene0002_01/")
    return train, val


def test_scannet_raw_labels_go_through_the_table(tmp_path):
    root = tmp_path / "scannet"
    sources = write_scannet(root, np.random.default_rng(6), "raw")
    assert cv2.imread(str(root / "scannet_frames_25k/scene0000_00/label/000000.png"),
                      cv2.IMREAD_UNCHANGED).dtype == np.uint16
    with pytest.raises(DarsError, match="python -m dars prepare scannet"):
        layouts.find_pairs("scannet", root, "train")
    assert layouts.prepare("scannet", root, label_space="raw") == 6
    train, val = check_scannet_pairs(root, sources, SCANNET_MAP)
    for _, lab in train + val:
        assert tuple(read_label(root / lab)[0, :3]) == (255, 255, 18)
    ids = [image_id(i) for i, _ in train + val]
    assert len(set(ids)) == 6 and "scene0000_00_000100" in ids
    check_labels("scannet", root, train)
    assert layouts.class_set("scannet").num_classes == 20
    check_path_rules("scannet", root, train + val)
    check_never_overwrites("scannet", root, train, label_space="raw")


def test_scannet_nyu40_labels_keep_their_classes(tmp_path):
    """The scannet_frames_25k download holds NYU40 ids: they map straight to the 20 train ids
    (the old code sent them through the raw-id table: floor became chair, bed became table)."""
    root = tmp_path / "scannet"
    sources = write_scannet(root, np.random.default_rng(8), "nyu40")
    assert layouts.prepare("scannet", root) == 6  # nyu40 is the default
    train, val = check_scannet_pairs(root, sources, NYU40_MAP)
    for _, lab in train + val:
        floor, bed, pillow, unannotated = read_label(root / lab)[0, :4]
        assert (floor, bed, pillow, unannotated) == (1, 3, 255, 255)
        assert layouts.class_set("scannet").names[floor] == "floor"
        assert layouts.class_set("scannet").names[bed] == "bed"
    for nyu40, train_id in NYU40_MAP.items():  # class by class, over the whole table
        assert classes.SCANNET_NYU40_IDS[train_id] == nyu40
    check_labels("scannet", root, train)
    check_path_rules("scannet", root, train + val)
    check_never_overwrites("scannet", root, train)


@pytest.mark.parametrize("actual, declared, found", [("raw", "nyu40", "16-bit PNG, largest id 1000"),
                                                      ("nyu40", "raw", "8-bit PNG, largest id 40")])
def test_scannet_label_space_contradiction_writes_nothing(tmp_path, actual, declared, found):
    root = tmp_path / "scannet"
    write_scannet(root, np.random.default_rng(9), actual)
    if actual == "nyu40":  # every NYU40 id up to 40 in the first label, so the largest id is known
        cv2.imwrite(str(root / "scannet_frames_25k/scene0000_00/label/000000.png"),
                    np.arange(H * W).reshape(H, W).clip(0, 40).astype(np.uint8))
    with pytest.raises(DarsError, match=f"label/000000.png: {found}, which means {actual} ids, but "
                                        f"label_space is '{declared}'.*label_space: {actual}"):
        layouts.prepare("scannet", root, label_space=declared)
    assert not list(root.glob("scannet_frames_25k/*/label20")) and not list(root.glob("**/color_resized"))
    assert not (root / "scannet_frames_25k/label20.json").exists()


def test_scannet_one_contradicting_label_among_many_is_named(tmp_path):
    """A label past the sample that contradicts the space is named; the others are written."""
    root = tmp_path / "scannet"
    write_scannet(root, np.random.default_rng(10), "nyu40")
    bad = root / "scannet_frames_25k/scene0002_01/label/000100.png"
    cv2.imwrite(str(bad), np.full((H, W), 1000, np.uint16))
    from dars.data import scannet
    scannet_sample = scannet.SAMPLE
    try:
        scannet.SAMPLE = 1  # the first label only: the bad one is found while writing
        with pytest.raises(DarsError, match="(?s)wrote 5 labels: 1 problems.*scene0002_01/label/000100.png: 16-bit"):
            layouts.prepare("scannet", root)
    finally:
        scannet.SAMPLE = scannet_sample


def test_scannet_labels_from_before_the_record_are_refused(tmp_path):
    """label20/ written by the old prepare (NYU40 read as raw ids) has no label20.json: refused."""
    root = tmp_path / "scannet"
    write_scannet(root, np.random.default_rng(11), "nyu40")
    layouts.prepare("scannet", root)
    (root / "scannet_frames_25k/label20.json").unlink()
    with pytest.raises(DarsError, match="without label20.json: made by a dars version.*rm -r"):
        layouts.find_pairs("scannet", root, "train")
    with pytest.raises(DarsError, match="without label20.json"):
        layouts.prepare("scannet", root)


def test_scannet_declared_space_is_checked_at_plan_time(tmp_path):
    from dars.config import check_prepared
    root = tmp_path / "scannet"
    write_scannet(root, np.random.default_rng(12), "raw")
    config = {"datasets": {"scannet": {"root": str(root), "layout": "scannet", "label_space": "raw"}}}
    with pytest.raises(DarsError, match=f"prepare scannet {root} --label-space raw`"):
        check_prepared(config, "scannet")
    layouts.prepare("scannet", root, label_space="raw")
    check_prepared(config, "scannet")
    config["datasets"]["scannet"]["label_space"] = "nyu40"
    with pytest.raises(DarsError, match="prepared from raw ids but the dataset declares label_space 'nyu40'"):
        check_prepared(config, "scannet")


def test_scannet_frames_without_label_or_image_are_errors(tmp_path):
    root = tmp_path / "scannet"
    write_scannet(root, np.random.default_rng(13), "nyu40")
    layouts.prepare("scannet", root)
    (root / "scannet_frames_25k/scene0001_00/color/000100.jpg").unlink()
    with pytest.raises(DarsError, match="1 labels without a color frame in split 'val', e.g. .*label/000100.png"):
        layouts.find_pairs("scannet", root, "val")
    (root / "scannet_frames_25k/scene0000_00/label/000000.png").unlink()
    with pytest.raises(DarsError, match="1 color frames without a label in split 'train'"):
        layouts.find_pairs("scannet", root, "train")


def test_label_space_is_refused_for_layouts_with_one_id_space(tmp_path):
    root = tmp_path / "gta5"
    write_gta5(root, np.random.default_rng(14))
    with pytest.raises(DarsError, match="--label-space: the gta5 layout ships labels in one id space"):
        layouts.prepare("gta5", root, label_space="raw")


def test_scannet_errors(tmp_path):
    root = tmp_path / "scannet"
    write_scannet(root, np.random.default_rng(7))
    tsv = root / "scannetv2-labels.combined.tsv"
    tsv.unlink()
    with pytest.raises(DarsError, match="scannetv2-labels.combined.tsv: ScanNet label table missing"):
        layouts.prepare("scannet", root, label_space="raw")
    write_tsv(tsv, header=("id", "raw_category", "category", "count", "nyu40", "nyu40class"))
    with pytest.raises(DarsError, match="no column nyu40id"):
        layouts.prepare("scannet", root, label_space="raw")
    assert not list(root.glob("scannet_frames_25k/*/label20"))
    (root / "scannetv2_val.txt").unlink()
    with pytest.raises(DarsError, match="scannetv2_val.txt: ScanNet scene list"):
        layouts.find_pairs("scannet", root, "val")


# ---- VOC -------------------------------------------------------------------------------------

VOC_IDS = ["2007_000032", "2007_000039", "2008_000002"]


def write_voc(root, rng, train_list="train_aug.txt"):
    labels = {}
    for iid in VOC_IDS:
        lab = rng.integers(0, 21, size=(H, W)).astype(np.uint8)
        lab[0, :2] = (255, 20)  # boundary pixels stay ignore
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"JPEGImages/{iid}.jpg"), random_image(rng))
        write_png(root / f"SegmentationClassAug/{iid}.png", lab)
        labels[f"SegmentationClassAug/{iid}.png"] = lab
    lists = root / "ImageSets/Segmentation"
    lists.mkdir(parents=True)
    (lists / train_list).write_text(f"/JPEGImages/{VOC_IDS[0]}.jpg /SegmentationClassAug/{VOC_IDS[0]}.png\n"
                                    f"{VOC_IDS[1]}\n")
    (lists / "val.txt").write_text(f"{VOC_IDS[2]}\n")
    return labels


@pytest.mark.parametrize("train_list", ["train_aug.txt", "train.txt"])
def test_voc_pairs(tmp_path, train_list):
    root = tmp_path / "VOC2012"
    labels = write_voc(root, np.random.default_rng(8), train_list)
    assert layouts.prepare("voc", root) == 0
    train = layouts.find_pairs("voc", root, "train")
    assert train == [(f"JPEGImages/{i}.jpg", f"SegmentationClassAug/{i}.png") for i in VOC_IDS[:2]]
    assert [image_id(i) for i, _ in train] == VOC_IDS[:2]
    for _, lab in train + layouts.find_pairs("voc", root, "val"):
        got = read_label(root / lab)
        assert (got == labels[lab]).all() and tuple(got[0, :2]) == (255, 20)
    assert layouts.class_set("voc").num_classes == 21
    assert tuple(layouts.class_set("voc").palette[15]) == (192, 128, 128)  # person
    check_path_rules("voc", root, train)


def test_voc_rejects_colour_and_out_of_range_labels(tmp_path):
    root = tmp_path / "VOC2012"
    write_voc(root, np.random.default_rng(9))
    save_palette_png(root / f"SegmentationClassAug/{VOC_IDS[0]}.png", np.ones((H, W), np.uint8))
    with pytest.raises(DarsError, match=f"{VOC_IDS[0]}.png: a colour/palette label.*SegmentationClassAug"):
        layouts.find_pairs("voc", root, "train")
    write_png(root / f"SegmentationClassAug/{VOC_IDS[0]}.png", np.full((H, W), 30, np.uint8))
    with pytest.raises(DarsError, match=r"2007_000032.png: holds ids \[30\] outside the 21 train ids"):
        layouts.find_pairs("voc", root, "train")
    (root / "SegmentationClassAug").rename(root / "SegmentationClass")
    with pytest.raises(DarsError, match="use the SegmentationClassAug index PNGs"):
        layouts.find_pairs("voc", root, "train")


# ---- Registry, class sets, roots -------------------------------------------------------------

@pytest.mark.parametrize("name, folder", [("cityscapes", "leftImg8bit"), ("gta5", "images/"),
                                          ("scannet", "scannet_frames_25k"), ("voc", "JPEGImages")])
def test_missing_and_wrong_roots(tmp_path, name, folder):
    with pytest.raises(DarsError, match=f"nope: {name} dataset root does not exist.*{folder}"):
        layouts.find_pairs(name, tmp_path / "nope", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DarsError, match=f"empty: .*{folder}"):
        layouts.prepare(name, tmp_path / "empty")


PROTOCOL = ("TREE", "CLASSES", "check_root", "find_pairs", "label_path", "images_with_id", "image_id", "prepare",
            "find_images", "check_label_space", "EXPORT")


def test_every_layout_module_has_the_same_names():
    for name, module in layouts.LAYOUTS.items():
        assert [n for n in PROTOCOL if not hasattr(module, n)] == [], name
        assert all(callable(getattr(module, n)) for n in PROTOCOL[2:7]), name
        assert isinstance(module.TREE, str) and module.CLASSES is layouts.class_set(name)
    # None where a layout has no such step: VOC ships train ids, only Cityscapes lists test images,
    # only ScanNet ships labels in two id spaces.
    assert [n for n, m in layouts.LAYOUTS.items() if m.prepare is None] == ["voc"]
    assert [n for n, m in layouts.LAYOUTS.items() if m.find_images is not None] == ["cityscapes"]
    assert [n for n, m in layouts.LAYOUTS.items() if m.check_label_space is not None] == ["scannet"]
    assert {n: m.EXPORT[0] for n, m in layouts.LAYOUTS.items()} == {
        "cityscapes": "labelIds", "gta5": "trainIds", "scannet": "nyu40", "voc": "index"}


def test_unknown_layout_and_class_sets(tmp_path):
    for call in (lambda: layouts.find_pairs("kitti", tmp_path, "train"), lambda: layouts.prepare("kitti", tmp_path),
                 lambda: layouts.class_set("kitti"), lambda: layouts.label_path("kitti", "a.png")):
        with pytest.raises(DarsError, match="unknown dataset layout 'kitti'; known layouts: cityscapes, gta5"):
            call()
    assert {lay.CLASSES.name for lay in layouts.LAYOUTS.values()} == set(layouts.LAYOUTS)
    for name, size in (("cityscapes", 19), ("gta5", 19), ("scannet", 20), ("voc", 21)):
        cs = layouts.class_set(name)
        assert cs.num_classes == size and cs.palette.shape == (size, 3) and len(set(cs.names)) == size
    assert layouts.class_set("cityscapes").names == classes.CLASS_NAMES and classes.NUM_CLASSES == 19
    assert (layouts.class_set("cityscapes").colorize(np.array([[0, 255]], np.uint8))
            == [[classes.PALETTE[0], (0, 0, 0)]]).all()
    assert classes.SCANNET_NYU40_IDS[classes.SCANNET_CLASS_NAMES.index("toilet")] == 33
