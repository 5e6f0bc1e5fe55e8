"""The export stage: Cityscapes-format predictions that the official evaluator (cityscapesscripts)
scores exactly as `evaluate` does, a test export named and sized for the benchmark server, and
the Snakemake rule."""
import json
import math
import shlex
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import snakemake, tiny_config, write_cityscapes_tree
from PIL import Image

from dars.__main__ import main
from dars.classes import CITYSCAPES_CLASSES, LABELID_TO_TRAINID, NUM_CLASSES, TRAINID_TO_LABELID, train_ids_to_label_ids
from dars.data.splits import make_split
from dars.evaluate import evaluate_stage
from dars.export import export_stage
from dars.io import DarsError, read_label, write_png
from dars.train import train

# 5 epochs on the fixture: a model right on some classes and wrong on others (not a constant map).
SETTINGS = {
    "model": "lite", "num_classes": 19, "seed": 0, "round": 0, "mode": "pretrain", "epochs": 5,
    "batch_size": 4, "crop": [32, 64], "resize": None, "scale_range": [0.75, 1.25], "base_lr": 0.05,
    "head_lr_mult": 10, "momentum": 0.9, "weight_decay": 1e-4, "poly_power": 0.9, "aux_weight": 0.4,
    "rotate": 0, "blur": False, "flip": True, "checkpoint_every": 100, "workers": 0,
}
ABSENT = 16  # "train": taken out of the val labels and never predicted, so its IoU is NaN for both
IMAGE_SUFFIX = "_leftImg8bit.png"


def _drop_class_from_val(root, train_id):
    """Make `train_id` void in the val labels (both id spaces), as a class a val set may lack."""
    for trainids in sorted((root / "gtFine/val").glob("*/*_gtFine_labelTrainIds.png")):
        label = read_label(trainids)
        label[label == train_id] = 255
        write_png(trainids, label)
        write_png(str(trainids).replace("labelTrainIds", "labelIds"), train_ids_to_label_ids(label))


@pytest.fixture(scope="module")
def tree_and_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    root = write_cityscapes_tree(tmp / "cityscapes", num_val=3, num_test=3)
    _drop_class_from_val(root, ABSENT)
    make_split(root, 1, 0, tmp / "split", "tiny")
    train(SETTINGS, tmp / "trained.pt", root, tmp / "split/labeled.txt", threads=1, log=lambda m: None)
    ckpt = torch.load(tmp / "trained.pt", weights_only=False)
    ckpt["model"]["classifier.bias"][ABSENT] = -1e4  # never the argmax
    torch.save(ckpt, tmp / "model.pt")
    return root, tmp / "model.pt"


def _official_pixel_scores(root, results, tmp_path, monkeypatch):
    """cityscapesscripts' pixel-level evaluation, run by its own main() without arguments as a
    user runs it: ground truth from its search pattern below CITYSCAPES_DATASET, each
    prediction found by getPrediction below CITYSCAPES_RESULTS, scores read back from the JSON
    it writes. Instance-level scores are off: they need instanceIds files, and the 2.3 code
    fails there on numpy >= 2.4."""
    monkeypatch.setenv("CITYSCAPES_DATASET", str(root))
    monkeypatch.setenv("CITYSCAPES_RESULTS", str(results))
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev  # pip install -e ".[test]"
    args = ev.args  # module-level, read from the environment at its first import: set ours
    exported = tmp_path / "cityscapes_eval" / "result.json"
    for key, value in {"cityscapesPath": str(root), "predictionPath": None, "predictionWalk": None,
                       "groundTruthSearch": str(root / "gtFine/val/*/*_gtFine_labelIds.png"),
                       "evalInstLevelScore": False, "evalPixelAccuracy": False, "JSONOutput": True,
                       "exportFile": str(exported), "quiet": True}.items():
        monkeypatch.setattr(args, key, value)
    monkeypatch.setattr("sys.argv", ["csEvalPixelLevelSemanticLabeling"])
    ev.main()
    return json.loads(exported.read_text()), ev


def test_official_evaluator_on_the_val_export_equals_evaluate(tree_and_model, tmp_path, monkeypatch):
    root, ckpt = tree_and_model
    ours = evaluate_stage(ckpt, root, tmp_path / "miou.json", threads=1)
    out = tmp_path / "export" / "val"
    record = export_stage(ckpt, root, "val", out, threads=1)
    assert record["num_images"] == 3 and record["format"] == "labelIds"
    assert record["protocol"] == ours["protocol"] and record["split"] == "val"

    official, ev = _official_pixel_scores(root, out / "labelIds", tmp_path, monkeypatch)
    assert np.array(official["confMatrix"]).sum() == 3 * 32 * 64  # every pixel of the 3 val images
    saved = json.loads((tmp_path / "miou.json").read_text())
    assert ours["iou"][ABSENT] is None and saved["iou"][ABSENT] is None
    for train_id in range(NUM_CLASSES):
        theirs = official["classScores"][ev.id2label[int(TRAINID_TO_LABELID[train_id])].name]
        mine = saved["iou"][train_id]
        if mine is None:
            assert math.isnan(theirs), train_id
        else:
            assert abs(theirs - mine) <= 1e-9, (train_id, theirs, mine)
    assert abs(official["averageScoreClasses"] - saved["miou"]) <= 1e-9
    # The pixels themselves: their confusion (labelIds) on our classes is ours (trainIds).
    theirs = np.array(official["confMatrix"])[np.ix_(TRAINID_TO_LABELID, TRAINID_TO_LABELID)]
    assert (theirs == np.array(saved["confusion"])).all()
    assert 0 < saved["miou"] < 1 and sum(v == 0 for v in saved["iou"]) < NUM_CLASSES - 1


def test_test_export_is_named_and_sized_for_the_benchmark_server(tree_and_model, tmp_path):
    root, ckpt = tree_and_model
    out = tmp_path / "export" / "test"
    settings = json.dumps({"resize": None, "flip": True, "mode": "whole"})
    assert main(["export", "--ckpt", str(ckpt), "--root", str(root), "--split", "test", "--settings", settings,
                 "--layout", "cityscapes", "--threads", "1", "--out", str(out)]) == 0
    images = sorted((root / "leftImg8bit/test").glob(f"*/*{IMAGE_SUFFIX}"))
    predictions = sorted((out / "labelIds").rglob("*.png"))
    assert len(images) == len(predictions) == 3 and {p.parent.name for p in images} == {"berlin", "bielefeld"}
    for image in images:
        stem, city = image.name[: -len(IMAGE_SUFFIX)], image.parent.name
        pred = out / "labelIds" / city / f"{stem}_pred_labelIds.png"
        # The evaluator's (and server's) pattern finds exactly this file below labelIds/.
        assert [p for p in predictions if fnmatch(p.name, f"{stem}*.png")] == [pred]
        with Image.open(image) as img, Image.open(pred) as p:
            assert p.size == img.size and p.mode == "L"
            label_ids = np.array(p)
        assert set(np.unique(label_ids).tolist()) <= set(TRAINID_TO_LABELID.tolist())  # no void, no trainIds
        with Image.open(out / "color" / city / f"{stem}_pred_color.png") as c:
            assert c.mode == "RGB" and (np.array(c) == CITYSCAPES_CLASSES.colorize(LABELID_TO_TRAINID[label_ids])).all()
    record = json.loads((out / "export.json").read_text())
    assert record["split"] == "test" and record["num_images"] == 3 and record["format"] == "labelIds"
    assert record["checkpoint"] == str(ckpt) and record["protocol"] == "whole image at 32x64 (native), flip"
    assert [image for image, _ in record["predictions"]] == [str(p.relative_to(root)) for p in images]
    assert sorted(p.name for p in out.parent.iterdir()) == ["test"]  # no temporary sibling left


def test_a_failed_export_leaves_the_previous_directory_and_no_temporary(tree_and_model, tmp_path, monkeypatch):
    root, ckpt = tree_and_model
    out = tmp_path / "export" / "test"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("previous export")
    calls = []

    def fail_on_the_third_file(path, array, rgb=False):
        calls.append(path)
        if len(calls) == 3:
            raise DarsError(f"{path}: disk full")
        write_png(path, array, rgb)

    monkeypatch.setattr("dars.data.cityscapes.write_png", fail_on_the_third_file)  # the layout writes its format
    with pytest.raises(DarsError, match="disk full"):
        export_stage(ckpt, root, "test", out, threads=1)
    assert [p.name for p in out.parent.iterdir()] == ["test"] and [p.name for p in out.iterdir()] == ["old.txt"]


def test_a_layout_without_a_test_split_is_named_with_its_root(tree_and_model, tmp_path):
    _, ckpt = tree_and_model
    gta5 = tmp_path / "gta5"
    for folder in ("images", "labels"):
        (gta5 / folder).mkdir(parents=True)
    with pytest.raises(DarsError, match=r"gta5.*'test'|'test'.*gta5") as error:
        export_stage(ckpt, gta5, "test", tmp_path / "out", layout="gta5", threads=1)
    assert str(gta5) in str(error.value)
    no_test = write_cityscapes_tree(tmp_path / "cityscapes", num_train=1, num_val=1)
    with pytest.raises(DarsError, match="leftImg8bit/test"):
        export_stage(ckpt, no_test, "test", tmp_path / "out", threads=1)
    assert not (tmp_path / "out").exists()


def _shell_command(output, program):
    """The one shell command of `program` that `snakemake -n -p` printed, split as the shell would."""
    lines = [line for line in output.splitlines() if program in line]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_the_export_rule_plans_with_every_path_quoted(tmp_path):
    workdir = tmp_path / "mes données ü"
    root = write_cityscapes_tree(workdir / "jeu de données é" / "cityscapes", num_test=2)
    name = "cités ü"
    config = tiny_config(dataset=name, seeds=[0], rounds=1, split=4, default_method="dars",
                         compare_methods=["dars"])
    config["datasets"][name] = {"root": str(root), "layout": "cityscapes"}
    run = f"results/{name}/split4/seed0"
    proc = snakemake(workdir, "-n", "-p", f"{run}/dars/round1/export/test", config=config)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    words = _shell_command(proc.stdout + proc.stderr, "python -m dars export")
    flags = dict(zip(words[4::2], words[5::2]))
    assert flags["--ckpt"] == f"{run}/dars/round1/model.pt" and flags["--root"] == str(root)
    assert flags["--split"] == "test" and flags["--out"] == f"{run}/dars/round1/export/test"
    assert flags["--layout"] == "cityscapes" and json.loads(flags["--settings"])["mode"] == "whole"
    assert flags[">"] == f"logs/{name}/split4/seed0/dars/round1/export_test.log" and words[-1] == "2>&1"
    # round 0's val export plans too; a split other than val and test is no target.
    assert snakemake(workdir, "-n", f"{run}/round0/export/val").returncode == 0
    proc = snakemake(workdir, "-n", f"{run}/round0/export/train")
    assert proc.returncode != 0 and "MissingRuleException" in proc.stdout + proc.stderr


def test_export_paths_in_the_rule_file_are_quoted():
    rule = (Path(__file__).resolve().parents[1] / "workflow/rules/export.smk").read_text()
    shell = rule[rule.index("shell:"):]
    for field in ("input.model", "params.root", "params.settings", "params.layout", "output", "log",
                  "wildcards.export_split"):
        assert f"{{{field}:q}}" in shell, field


def test_voc_exports_palette_indices_and_other_layouts_train_ids(tmp_path):
    from dars.classes import voc_palette
    from dars.data.layouts import class_set, layout
    ids = np.arange(21, dtype=np.uint8).repeat(3).reshape(7, 9)
    fmt, write = layout("voc").EXPORT
    pred = write(tmp_path, "JPEGImages/2007_000032.jpg", ids, class_set("voc"))
    assert (fmt, pred) == ("index", "index/2007_000032.png")
    with Image.open(tmp_path / pred) as img:  # indices as VOC's SegmentationClass stores them
        assert img.mode == "P" and (np.array(img) == ids).all()
        assert img.getpalette()[: 21 * 3] == voc_palette(21).ravel().tolist()
    fmt, write = layout("gta5").EXPORT
    pred = write(tmp_path, "images/00001.png", ids, class_set("gta5"))
    assert (fmt, pred) == ("trainIds", "trainIds/00001.png")
    assert (read_label(tmp_path / pred) == ids).all() and (tmp_path / "color/00001.png").is_file()


def _scannet_tree(root, rng):
    """A stand-in scannet_frames_25k tree: 1296x968 colour frames, 640x480 NYU40 labels."""
    root.mkdir()
    for split, scene in (("train", "scene0000_00"), ("val", "scene0001_00")):
        (root / f"scannetv2_{split}.txt").write_text(scene + "\n")
        for frame in ("000000", "000100"):
            d = root / "scannet_frames_25k" / scene
            write_png(d / f"label/{frame}.png", rng.integers(0, 41, size=(480, 640)).astype(np.uint8))
            (d / "color").mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, size=(968, 1296, 3), dtype=np.uint8)).save(d / f"color/{frame}.jpg")
    return root


def test_scannet_export_holds_nyu40_ids_at_the_benchmark_size(tmp_path):
    """ScanNet's 2D benchmark compares NYU40 ids at 640x480, by the ground truth's file name."""
    from dars.classes import SCANNET_NYU40_IDS
    from dars.data.layouts import class_set, prepare
    from dars.models import build_model
    root = _scannet_tree(tmp_path / "scannet", np.random.default_rng(0))
    prepare("scannet", root)
    torch.manual_seed(0)
    ckpt = tmp_path / "scannet.pt"
    torch.save({"model_name": "lite", "num_classes": 20, "model": build_model("lite", 20).state_dict()}, ckpt)
    record = export_stage(ckpt, root, "val", tmp_path / "out", "scannet", threads=1)
    assert record["format"] == "nyu40" and record["num_images"] == 2
    miou = evaluate_stage(ckpt, root, tmp_path / "miou.json", threads=1, layout="scannet")
    assert miou["scored_at"] == [[480, 640]]
    for frame in ("000000", "000100"):
        pred = read_label(tmp_path / f"out/nyu40/scene0001_00_{frame}.png")
        assert pred.shape == (480, 640)
        assert set(np.unique(pred)) <= set(SCANNET_NYU40_IDS.tolist())
        colour = np.array(Image.open(tmp_path / f"out/color/scene0001_00_{frame}.png").convert("RGB"))
        nyu40_of_colour = {tuple(c): SCANNET_NYU40_IDS[i] for i, c in enumerate(class_set("scannet").palette)}
        assert all(nyu40_of_colour[tuple(colour[y, x])] == pred[y, x]
                   for y in range(0, 480, 37) for x in range(0, 640, 41))


def test_a_checkpoint_of_another_class_set_is_refused(tree_and_model, tmp_path):
    from dars.models import build_model
    root, _ = tree_and_model
    voc = tmp_path / "voc.pt"  # a 21-class (VOC) model: its ids are no Cityscapes trainIds
    torch.save({"model_name": "lite", "num_classes": 21, "model": build_model("lite", 21).state_dict()}, voc)
    with pytest.raises(DarsError, match="predicts 21 classes but the cityscapes layout has 19"):
        export_stage(voc, root, "test", tmp_path / "out", threads=1)
    assert not (tmp_path / "out").exists()
