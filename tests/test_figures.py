"""Supplementary figures (dars/figures.py): PNGs of plausible size with the expected colours,
reproducible bytes, clear errors, CLI."""
import argparse
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers import write_cityscapes_tree

from dars import figures
from dars.classes import IGNORE, NUM_CLASSES, PALETTE
from dars.data.cityscapes import find_pairs
from dars.data.layouts import image_id
from dars.io import DarsError, read_label, write_json, write_png
from dars.specs import figure_inputs

ROAD, CAR = 0, 13


def colours(png):
    """Set of RGB colours in a PNG file."""
    rgb = cv2.cvtColor(cv2.imread(str(png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return {tuple(int(v) for v in c) for c in np.unique(rgb.reshape(-1, 3), axis=0)}


@pytest.fixture
def data(tmp_path):
    """A tiny dataset whose first train image has road on its lower half, plus two pseudo-label
    runs: one in the pipeline's layout (pseudo/<shard>/ + pseudo_labels.txt), one flat dir."""
    root = write_cityscapes_tree(tmp_path / "data", num_train=3, num_val=2, height=32, width=64)
    pairs = find_pairs(root, "train")
    gt = read_label(root / pairs[0][1])
    gt[16:] = ROAD
    write_png(root / pairs[0][1], gt)
    st = tmp_path / "st" / "round1"
    lines = []
    for k, (image_rel, label_rel) in enumerate(pairs):
        pseudo = np.full((32, 64), IGNORE, np.uint8)
        pseudo[24:] = CAR  # a colour the ground truth of image 0 lacks in its lower half
        write_png(st / "pseudo" / str(k % 2) / f"{image_id(image_rel)}.png", pseudo)
        write_png(tmp_path / "flat" / f"{image_id(image_rel)}.png", read_label(root / label_rel))
        lines.append(f"{image_rel} pseudo/{k % 2}/{image_id(image_rel)}.png")
    (st / "pseudo_labels.txt").write_text("\n".join(lines) + "\n")
    return {"root": root, "pairs": pairs, "st": st, "flat": tmp_path / "flat"}


def test_panels_layout_colours_and_bytes(data, tmp_path):
    runs = {"ST r1": str(data["st"] / "pseudo"), "GT copy": str(data["flat"])}
    ids = [image_id(data["pairs"][0][0]), image_id(data["pairs"][2][0])]
    out = figures.panels_figure(data["root"], runs, tmp_path / "p.png", images=ids, panel_width=64, legend=False)
    # 2 rows of 32 px panels under a title strip; 4 columns (image, gt, 2 runs) of 64 px
    assert out.shape[1] == 26 + 4 * (64 + figures.GAP) and out.shape[0] == 30 + 2 * (32 + figures.GAP)
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "p.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(written, out)
    gt_panel = out[30 + figures.GAP:30 + figures.GAP + 32, 26 + 2 * figures.GAP + 64:26 + 2 * figures.GAP + 128]
    assert tuple(gt_panel[-1, 0]) == tuple(PALETTE[ROAD])  # road on the lower half of image 0
    assert tuple(gt_panel[0, 0]) == (0, 0, 0)  # ignore (top rows) in black
    st_panel = out[30 + figures.GAP:30 + figures.GAP + 32, 26 + 3 * figures.GAP + 128:26 + 3 * figures.GAP + 192]
    assert tuple(st_panel[-1, 0]) == tuple(PALETTE[CAR]) and tuple(st_panel[0, 0]) == (0, 0, 0)
    again = figures.panels_figure(data["root"], runs, tmp_path / "q.png", images=ids, panel_width=64, legend=False)
    assert np.array_equal(again, out)
    assert (tmp_path / "p.png").read_bytes() == (tmp_path / "q.png").read_bytes()
    # With the legend every class colour (and ignore's black) appears, in the list's first images.
    figures.panels_figure(data["root"], {"ST r1": str(data["st"])}, tmp_path / "l.png",
                          pseudo_list=str(data["st"] / "pseudo_labels.txt"), num_images=2)
    assert {tuple(int(v) for v in c) for c in PALETTE} <= colours(tmp_path / "l.png")


def test_panels_errors(data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    iid = image_id(data["pairs"][0][0])
    with pytest.raises(DarsError, match=f"no pseudo label for image {iid}"):
        figures.panels_figure(data["root"], {"x": str(empty)}, tmp_path / "e.png", images=[iid])
    with pytest.raises(DarsError, match="matches 0 images"):
        figures.panels_figure(data["root"], {"x": str(data["flat"])}, tmp_path / "e.png", images=["nowhere_1"])
    assert not (tmp_path / "e.png").exists()


def test_panels_of_another_layout(tmp_path):
    """Images and their ground truth come from the layout registry: a GTA5 tree, whatever its paths."""
    root = tmp_path / "gta5"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(1, 4):
        write_png(root / f"images/{i:05d}.png", rng.integers(0, 256, (16, 32, 3), dtype=np.uint8), rgb=True)
        write_png(root / f"labels_trainIds/{i:05d}.png", np.full((16, 32), CAR, np.uint8))
        write_png(tmp_path / f"run/pseudo/0/{i:05d}.png", np.full((16, 32), ROAD, np.uint8))
        lines.append(f"images/{i:05d}.png pseudo/0/{i:05d}.png")
    (tmp_path / "run/pseudo_labels.txt").write_text("\n".join(lines) + "\n")
    runs = {"ST": str(tmp_path / "run/pseudo_labels.txt")}
    out = figures.panels_figure(root, runs, tmp_path / "g.png", pseudo_list=runs["ST"], num_images=2,
                                panel_width=32, legend=False, layout="gta5")
    assert out.shape[0] == 30 + 2 * (16 + figures.GAP)
    by_id = figures.panels_figure(root, runs, tmp_path / "h.png", images=["00001", "00002"], panel_width=32,
                                  legend=False, layout="gta5")
    assert np.array_equal(by_id, out)
    gt_panel = out[30 + figures.GAP:30 + figures.GAP + 16, 26 + 2 * figures.GAP + 32:26 + 2 * figures.GAP + 64]
    assert {tuple(int(v) for v in c) for c in gt_panel.reshape(-1, 3)} == {tuple(int(v) for v in PALETTE[CAR])}
    with pytest.raises(DarsError, match="matches 0 images of the gta5 layout"):
        figures.panels_figure(root, runs, tmp_path / "x.png", images=["99999"], layout="gta5")


def test_predictions(data, tmp_path):
    torch = pytest.importorskip("torch")
    from dars.models import build_model
    torch.manual_seed(0)
    model = build_model("lite", NUM_CLASSES)
    torch.save({"model": model.state_dict(), "model_name": "lite", "num_classes": NUM_CLASSES},
               tmp_path / "model.pt")
    out = figures.predictions_figure(data["root"], {"round 0": str(tmp_path / "model.pt")}, tmp_path / "pr.png",
                                     num_images=1, panel_width=64, legend=False)
    assert out.shape == (30 + 32 + figures.GAP, 26 + 3 * (64 + figures.GAP), 3)
    pred = out[30 + figures.GAP:, 26 + 3 * figures.GAP + 128:26 + 3 * figures.GAP + 192].reshape(-1, 3)
    assert {tuple(int(v) for v in c) for c in pred} <= {tuple(int(v) for v in c) for c in PALETTE}
    gt = read_label(data["root"] / find_pairs(data["root"], "val")[0][1])
    gt_colours = {tuple(int(v) for v in PALETTE[c]) for c in np.unique(gt) if c != IGNORE}
    assert gt_colours <= colours(tmp_path / "pr.png")
    with pytest.raises(DarsError, match="checkpoint not found"):
        figures.predictions_figure(data["root"], {"x": str(tmp_path / "none.pt")}, tmp_path / "pr2.png")


def stats_file(path, counts, gt_pixels):
    write_json(path, {"labeler": "dars", "alpha": 0.5, "pseudo_counts": counts,
                      "gt": {"gt_pixels": gt_pixels, "kl_true_pseudo": 0.01}})
    return str(path)


def test_class_distribution(tmp_path):
    n = NUM_CLASSES
    prior = tmp_path / "prior.json"
    write_json(prior, {"counts": list(range(1, n + 1)), "shares": [], "class_names": None})
    truth = [10] * n
    runs = {"ST": stats_file(tmp_path / "st.json", [100] + [0] * (n - 1), truth),
            "DARS": [stats_file(tmp_path / f"d{s}.json", [5 + s] * n, truth) for s in range(2)]}
    series = figures.class_distribution_figure(str(prior), runs, tmp_path / "d.png")
    assert list(series) == ["prior (labeled)", "true (unlabeled)", "ST", "DARS"]
    assert np.allclose(series["true (unlabeled)"], 1 / n) and np.allclose(series["DARS"], 1 / n)
    assert series["ST"][0] == 1.0
    img = cv2.imread(str(tmp_path / "d.png"))
    assert 500 < img.shape[0] < 600 and 8 * figures.DPI <= img.shape[1] <= 16 * figures.DPI
    found = colours(tmp_path / "d.png")
    assert {(127, 127, 127), (0, 0, 0), (31, 119, 180), (255, 127, 14)} <= found  # prior, truth, ST, DARS
    figures.class_distribution_figure(str(prior), runs, tmp_path / "d2.png")
    assert (tmp_path / "d.png").read_bytes() == (tmp_path / "d2.png").read_bytes()
    with pytest.raises(DarsError, match="has 3 classes"):
        figures.class_distribution_figure(str(prior), {"x": stats_file(tmp_path / "x.json", [1, 2, 3], [1, 1, 1])},
                                          tmp_path / "x.png")
    with pytest.raises(DarsError, match="not a pseudo_stats.json"):
        figures.class_distribution_figure(str(prior), {"x": str(prior)}, tmp_path / "x.png")


def miou_file(path, seed, iou, method="dars"):
    present = [v for v in iou if v is not None]
    write_json(path, {"dataset": "synthetic", "split": 8, "seed": seed, "round": 1, "method": method,
                      "iou": iou, "miou": sum(present) / len(present)})
    return str(path)


def test_iou_bars(tmp_path):
    n = NUM_CLASSES
    runs = {m: [miou_file(tmp_path / f"{m}{s}.json", s, [0.5 + 0.1 * s] * (n - 1) + [None], m) for s in range(3)]
            for m in ("st", "dars")}
    prior = tmp_path / "prior_td.json"
    write_json(prior, {"counts": [100] * (n - 2) + [1, 0]})  # class 17 is a tail class, 18 absent
    series, errors = figures.iou_bars_figure(runs, tmp_path / "b.png", val_prior=str(prior))
    assert series["dars"][0] == pytest.approx(60.0) and errors["dars"][0] == pytest.approx(10.0)
    assert np.isnan(series["dars"][n - 1]) and series["dars"][n] == pytest.approx(60.0)  # last = mIoU
    img = cv2.imread(str(tmp_path / "b.png"))
    assert img.shape[0] > 400 and img.shape[1] >= 8 * figures.DPI
    assert {(255, 242, 204), (31, 119, 180), (255, 127, 14)} <= colours(tmp_path / "b.png")  # tail shading
    figures.iou_bars_figure(runs, tmp_path / "c.png")
    assert (255, 242, 204) not in colours(tmp_path / "c.png")  # no val prior: no tail marks
    with pytest.raises(DarsError, match="min_seeds is 4"):
        figures.iou_bars_figure(runs, tmp_path / "x.png", min_seeds=4)


def test_cli_and_inputs(data, tmp_path):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="stage")
    for name, (add_arguments, main) in figures.COMMANDS.items():
        add_arguments(sub.add_parser(name))
        sub.choices[name].set_defaults(handler=main)
    spec = {"kind": "panels", "root": str(data["root"]), "runs": {"ST": str(data["st"] / "pseudo_labels.txt")},
            "pseudo_list": str(data["st"] / "pseudo_labels.txt"), "num_images": 1, "panel_width": 64}
    args = p.parse_args(["paper-figure", "--spec", json.dumps(spec), "--out", str(tmp_path / "f.png")])
    args.handler(args)
    assert cv2.imread(str(tmp_path / "f.png")).shape[1] == 26 + 3 * (64 + figures.GAP)
    assert figure_inputs(spec) == [str(data["st"] / "pseudo_labels.txt")]  # listed once, as the spec says
    args = p.parse_args(["paper-figure", "--spec", '{"kind": "pie"}', "--out", str(tmp_path / "g.png")])
    with pytest.raises(DarsError, match="'kind' must be"):
        args.handler(args)
    args = p.parse_args(["paper-figure", "--spec", '{"kind": "panels", "root": "x"}', "--out", "g.png"])
    with pytest.raises(DarsError, match="missing 'runs'"):
        args.handler(args)


def test_no_matplotlib_on_import():
    code = "import sys, dars.figures, dars.tables; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
