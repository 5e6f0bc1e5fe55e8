"""Figures, overlays and inspect summaries name and colour classes by the class set of the dataset's
layout, not Cityscapes': a VOC panel shows VOC colours and a legend of VOC's 21 classes, and a VOC
label holding class 20 (tvmonitor) is no error for inspect."""
import cv2
import numpy as np
import pytest

from dars import figures
from dars.inspect import inspect
from dars.io import write_json, write_png

H, W = 64, 96  # overlay titles cover the top ~16 rows; checks look below them
VOC_IDS = ["2007_000032", "2007_000039"]
# PASCAL VOC's colour map (RGB), written out here rather than taken from dars.classes.
AEROPLANE, TVMONITOR = 1, 20
AEROPLANE_RGB, TVMONITOR_RGB = (128, 0, 0), (0, 64, 128)
VOC_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
             "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
             "tvmonitor")


def rgb_colours(png):
    rgb = cv2.cvtColor(cv2.imread(str(png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return {tuple(int(v) for v in c) for c in np.unique(rgb.reshape(-1, 3), axis=0)}


@pytest.fixture
def voc(tmp_path):
    """A VOC 2012 aug tree whose labels hold aeroplane above, tvmonitor below and a boundary (255)
    line, and a round's pseudo labels of it (pseudo/0/<id>.png, pseudo_labels.txt) whose
    split.json names the tree and its layout, as the pipeline writes them."""
    root = tmp_path / "VOC2012"
    rng = np.random.default_rng(0)
    label = np.full((H, W), AEROPLANE, np.uint8)
    label[H // 2:] = TVMONITOR
    label[H // 2 - 1] = 255
    for iid in VOC_IDS:
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"JPEGImages/{iid}.jpg"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        write_png(root / f"SegmentationClassAug/{iid}.png", label)
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train_aug.txt").write_text("\n".join(VOC_IDS) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text(VOC_IDS[0] + "\n")
    run = tmp_path / "results" / "voc" / "seed0"
    write_json(run / "split" / "split.json", {"root": str(root), "layout": "voc"})
    for iid in VOC_IDS:
        write_png(run / "round1" / "pseudo" / "0" / f"{iid}.png", np.full((H, W), TVMONITOR, np.uint8))
    (run / "round1" / "pseudo_labels.txt").write_text(
        "".join(f"JPEGImages/{iid}.jpg pseudo/0/{iid}.png\n" for iid in VOC_IDS))
    return {"root": root, "run": run / "round1"}


def test_a_voc_panel_has_voc_colours_and_a_legend_of_voc_classes(voc, tmp_path, monkeypatch):
    drawn = []
    put_text = cv2.putText

    def record(image, text, *args, **kwargs):
        drawn.append(text)
        return put_text(image, text, *args, **kwargs)
    monkeypatch.setattr(cv2, "putText", record)
    spec = {"kind": "panels", "root": str(voc["root"]), "layout": "voc", "panel_width": W,
            "runs": {"ST r1": str(voc["run"] / "pseudo_labels.txt")}, "images": VOC_IDS[:1]}
    out = figures.write_figure(spec, tmp_path / "panels.png")
    top, left = 30 + figures.GAP, 26 + 2 * figures.GAP + W  # below the titles, right of the image
    gt_panel = out[top:top + H, left:left + W]
    assert tuple(gt_panel[0, 0]) == AEROPLANE_RGB and tuple(gt_panel[-1, 0]) == TVMONITOR_RGB
    legend = drawn[drawn.index("background"):]  # after the column titles and the row's image id
    assert legend == [*VOC_NAMES, "ignore"]
    assert "road" not in drawn  # no Cityscapes class
    voc_palette = {AEROPLANE_RGB, TVMONITOR_RGB, (0, 0, 0), (128, 128, 0), (192, 128, 128)}  # ... bird, person
    assert voc_palette <= rgb_colours(tmp_path / "panels.png")


def test_an_overlay_of_voc_pseudo_labels_has_voc_colours(voc, tmp_path):
    summary = inspect(voc["run"] / "pseudo" / "0" / f"{VOC_IDS[0]}.png", overlay=tmp_path / "o.png")
    assert "WARNING" not in summary and "tvmonitor" in summary
    overlay = cv2.cvtColor(cv2.imread(str(tmp_path / "o.png")), cv2.COLOR_BGR2RGB)
    ground_truth, pseudo = overlay[:, W:2 * W], overlay[:, 2 * W:]
    assert tuple(ground_truth[H // 2 - 4, W // 2]) == AEROPLANE_RGB  # below the title box
    assert tuple(pseudo[-1, -1]) == TVMONITOR_RGB


def test_inspect_of_a_voc_label_names_voc_classes_without_a_warning(voc):
    label = voc["root"] / f"SegmentationClassAug/{VOC_IDS[0]}.png"
    summary = inspect(label)
    assert "WARNING" not in summary
    rows = {line.split()[0]: line.split()[1] for line in summary.splitlines()[3:]}
    assert rows["aeroplane"] == f"{(H // 2 - 1) * W:,}" and rows["tvmonitor"] == f"{H // 2 * W:,}"
    assert "road" not in rows
