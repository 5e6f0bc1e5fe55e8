"""Never a silently wrong result (issue 14): one case per numbered defect, each failing on the code
before the fix. Cases other files already cover are referenced there, not repeated:
  2. spaces and non-ASCII characters in the root and every path: tests/test_paths.py
  3. a truncated checkpoint is named, with the rerun:
     tests/test_io.py::test_a_truncated_checkpoint_is_named_with_the_fix
  4. typos under datasets.<name>.train / .evaluate are refused by name:
     tests/test_workflow.py::test_typo_in_an_override_section_is_refused_by_name
  5. an empty imported list and split > #train refused at split, a bad id in a labeled label
     named: tests/test_data.py::test_split_refuses_what_would_train_on_nothing_or_on_bad_ids,
     tests/test_workflow.py::test_a_failed_stage_shows_its_own_message_on_the_console
  6. umask 022 gives 0644 files (and 0755 folders): tests/test_io.py; two identical trainings
     give byte-identical model.pt: tests/test_train.py::test_identical_runs_write_byte_identical_checkpoints
"""
import errno
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from helpers import REPO, TRAIN_SETTINGS, snakemake, tiny_config, write_cityscapes_tree

from dars import checkpoint, pseudo
from dars.__main__ import main
from dars.checkpoint import save_checkpoint
from dars.data.digests import list_digest, manifest_path
from dars.data.layouts import find_pairs
from dars.data.splits import make_split
from dars.evaluate import evaluate_stage
from dars.infer import infer_stage
from dars.io import DarsError, read_label, write_json, write_png
from dars.manifest import stale_directories
from dars.prior import prior_stage
from dars.train import train

SHARDS = 2


class Interrupt(Exception):
    pass


def interrupt_after_first_epoch(message):
    """A log that stops training once the first epoch's state is in work/last.pt (as a kill would)."""
    if message.startswith('{"epoch": 1'):
        raise Interrupt


def quiet(message):
    pass


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


# 1. Resume trains on the data the run has now, or starts afresh and says what changed.

@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A split, a round-0 teacher, its shards and confidence histograms, as the pipeline makes them."""
    base = tmp_path_factory.mktemp("teacher")
    root = write_cityscapes_tree(base / "cityscapes", num_train=12, num_val=2)
    make_split(root, 2, 0, base / "split", "tiny")
    train(TRAIN_SETTINGS, base / "round0.pt", root, base / "split/labeled.txt", log=quiet)
    prior_stage(root, base / "split/labeled.txt", base / "prior.json")
    for k in range(SHARDS):
        infer_stage(base / "round0.pt", root, base / "split/unlabeled.txt", base / f"shards/{k}", SHARDS, k)
        pseudo.stats_stage(base / f"shards/{k}", base / f"hist/{k}.npy")
    return base, root


def pseudo_labels(base, root, round_dir, alpha):
    """Round 1's thresholds, pseudo labels and pseudo_labels.txt at `alpha` (what Snakemake remakes
    after schedule.alpha changes: same paths, same list text, other labels)."""
    pseudo.thresholds_stage([base / f"hist/{k}.npy" for k in range(SHARDS)], round_dir / "thresholds.json",
                            "dars", alpha, base / "prior.json")
    dirs = [round_dir / f"pseudo/{k}" for k in range(SHARDS)]
    for k, d in enumerate(dirs):
        pseudo.label_stage(base / f"shards/{k}", round_dir / "thresholds.json", d, 0, 1, root)
    pseudo.merge_stage(round_dir / "thresholds.json", dirs, round_dir / "pseudo_stats.json",
                       round_dir / "pseudo_labels.txt", base / "prior.json", root)
    return round_dir / "pseudo_labels.txt"


@pytest.mark.e2e  # over 30 s
def test_resume_after_a_changed_alpha_starts_afresh(teacher, tmp_path):
    base, root = teacher
    student = dict(TRAIN_SETTINGS, round=1, mode="pseudo", epochs=2)
    split, work, out = base / "split", tmp_path / "work", tmp_path / "model.pt"

    def run(pseudo_list, work_dir, log):
        train(student, out, root, split / "labeled.txt", split / "unlabeled.txt", pseudo_list,
              init_ckpt=base / "round0.pt", work_dir=work_dir, log=log)

    listed = pseudo_labels(base, root, tmp_path / "round1", 0.4)
    text, old_labels = listed.read_text(), sorted(p.read_bytes() for p in listed.parent.rglob("*.png"))
    with pytest.raises(Interrupt):
        run(listed, work, interrupt_after_first_epoch)
    assert (work / "last.pt").is_file()

    assert pseudo_labels(base, root, tmp_path / "round1", 0.6) == listed
    assert listed.read_text() == text  # the same list ...
    assert sorted(p.read_bytes() for p in listed.parent.rglob("*.png")) != old_labels  # ... of other labels
    messages = []
    run(listed, work, messages.append)
    assert not any(m.startswith("resuming") for m in messages), messages
    assert f"ignoring {work / 'last.pt'}: its pseudo labels changed since it was saved; starting afresh" in messages

    fresh = weights(out)  # equals a run that never saw the alpha-0.4 labels
    out.unlink()
    run(listed, tmp_path / "clean", quiet)
    assert all(torch.equal(fresh[k], v) for k, v in weights(out).items())


def test_round0_resume_after_an_edited_labeled_label_starts_afresh(tmp_path):
    """The same list, one label fixed: the split stage reruns (its inputs changed) and records
    the new content, and the trainer does not resume on the old labels."""
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8)
    make_split(root, 2, 0, tmp_path / "split", "tiny")
    labeled = tmp_path / "split/labeled.txt"
    with pytest.raises(Interrupt):
        train(TRAIN_SETTINGS, tmp_path / "model.pt", root, labeled, work_dir=tmp_path / "work",
              log=interrupt_after_first_epoch)
    text = labeled.read_text()
    label = root / text.split()[1]
    y = read_label(label)
    y[y == 255] = 3  # a fixed label: the same size in pixels, new content
    cv2.imwrite(str(label), y)
    make_split(root, 2, 0, tmp_path / "split", "tiny")
    assert labeled.read_text() == text
    messages = []
    train(TRAIN_SETTINGS, tmp_path / "model.pt", root, labeled, work_dir=tmp_path / "work", log=messages.append)
    assert not any(m.startswith("resuming") for m in messages), messages
    assert any("its labeled list changed since it was saved" in m for m in messages), messages


def test_list_digest_is_exact_with_or_without_a_manifest(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8)
    make_split(root, 2, 0, tmp_path / "split", "tiny")
    labeled = tmp_path / "split/labeled.txt"
    recorded = list_digest(labeled, root)
    by_hand = tmp_path / "mine/labeled.txt"  # the same list made by hand: no manifest beside it
    by_hand.parent.mkdir()
    shutil.copy(labeled, by_hand)
    assert not manifest_path(by_hand).exists() and list_digest(by_hand, root) == recorded
    label = root / labeled.read_text().split()[1]
    label.write_bytes(label.read_bytes() + b"\0")  # a changed file: its size no longer matches its record
    assert list_digest(labeled, root) == list_digest(by_hand, root) != recorded


# 3. Stale inputs rerun what depends on them; corrupt shards are named with the rule that rebuilds them.

@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """Round 0 and its evaluation on a real (not generated) Cityscapes-layout tree."""
    workdir = tmp_path_factory.mktemp("real")
    root = write_cityscapes_tree(workdir / "cityscapes", num_train=8, num_val=2)
    config = tiny_config(seeds=[0])
    config["datasets"]["real"] = {"root": str(root), "layout": "cityscapes"}  # the tiny train settings
    target = "results/real/split4/seed0/round0/miou.json"
    proc = snakemake(workdir, "--cores", "2", target, config=config, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return workdir, root, target


def planned_rules(workdir, target):
    proc = snakemake(workdir, "-n", target)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    return {rule for rule in ("split", "pretrain", "evaluate") if f"rule {rule}:" in out}, out


def rewrite_label(path):
    y = read_label(path)
    y[0, 0] = 1 if y[0, 0] != 1 else 2
    cv2.imwrite(str(path), y)


@pytest.mark.e2e
def test_an_edited_label_after_a_run_reruns_what_read_it(real_run):
    workdir, root, target = real_run
    assert planned_rules(workdir, target)[0] == set()  # nothing to be done
    rewrite_label(root / find_pairs("cityscapes", root, "val")[0][1])
    assert planned_rules(workdir, target)[0] == {"evaluate"}  # a val label: evaluation only
    rewrite_label(root / find_pairs("cityscapes", root, "train")[-1][1])
    rules, out = planned_rules(workdir, target)
    assert rules == {"split", "pretrain", "evaluate"}, out[-3000:]  # a train label: the split and all after it


def test_a_rewritten_shard_is_named_with_the_rule_that_rebuilds_it(teacher, tmp_path):
    base, _ = teacher
    shard = tmp_path / "shards/0"
    shutil.copytree(base / "shards/0", shard)
    pred = np.fromfile(shard / "pred.u8", np.uint8)
    pred[7] = (pred[7] + 1) % 19  # in range: only the digest can tell
    pred.tofile(shard / "pred.u8")
    with pytest.raises(DarsError, match=rf"{re.escape(str(shard))}: image \S+: its pred.u8/conf.f16 bytes differ "
                                        rf".* corrupt: rebuild it .*`snakemake --forcerun {re.escape(str(shard))}`"):
        pseudo.stats_stage(shard, tmp_path / "hist.npy")
    assert not (tmp_path / "hist.npy").exists()


# 5. Labels are checked where they are first read or written, naming the file.

def tree_with_a_bad_val_label(tmp_path, index):
    """A tiny tree whose val label `index` holds the id 50 (not a train id); its path."""
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8, num_val=2)
    label = root / find_pairs("cityscapes", root, "val")[index][1]
    y = read_label(label)
    y[3, 3] = 50
    cv2.imwrite(str(label), y)
    return root, label


def test_a_bad_val_label_is_named_at_the_split_before_any_training(tmp_path):
    root, label = tree_with_a_bad_val_label(tmp_path, 1)
    with pytest.raises(DarsError, match=f"{re.escape(str(label))}: label id 50 is neither a class"):
        make_split(root, 4, 0, tmp_path / "split", "tiny")
    assert not (tmp_path / "split").exists()


def test_a_val_label_edited_after_the_split_is_named_by_evaluate(teacher, tmp_path):
    base, _ = teacher
    root, label = tree_with_a_bad_val_label(tmp_path, 0)
    with pytest.raises(DarsError, match=f"{re.escape(str(label))}: holds ids \\[50\\]"):
        evaluate_stage(base / "round0.pt", root, tmp_path / "miou.json")
    assert not (tmp_path / "miou.json").exists()


def test_a_labeled_set_under_the_minimum_is_refused_with_the_numbers(tmp_path, capsys):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8)
    with pytest.raises(DarsError, match=r"split=8: 1/8 of the 8 train images .* is 1 labeled images, fewer than "
                                        r"the minimum of 2 \(datasets.tiny.min_labeled\); use a split of at most 5"):
        make_split(root, 8, 0, tmp_path / "s8", "tiny", min_labeled=2)
    one = tmp_path / "one.txt"
    one.write_text("{} {}\n".format(*find_pairs("cityscapes", root, "train")[0]))
    with pytest.raises(DarsError, match=f"{re.escape(str(one))}: lists 1 labeled images, fewer than the minimum of 2"):
        make_split(root, 8, 0, tmp_path / "imp", "tiny", list_file=one, min_labeled=2)
    # The split stage's default is 2.
    assert main(["split", "--root", str(root), "--dataset", "tiny", "--split", "8", "--seed", "0",
                 "--out-dir", str(tmp_path / "cli")]) == 2
    assert "fewer than the minimum of 2" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("s8", "imp", "cli"))


def test_min_labeled_reaches_the_split_stage_only_when_set(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8)
    config = tiny_config()
    config["datasets"]["real"] = {"root": str(root), "layout": "cityscapes"}
    target = "results/real/split4/seed0/split/split.json"
    proc = snakemake(tmp_path, "-n", "-p", target, config=config)
    assert proc.returncode == 0 and "--min-labeled" not in proc.stdout  # the default keeps existing params
    config["datasets"]["real"]["min_labeled"] = 3
    proc = snakemake(tmp_path, "-n", "-p", target, config=config)
    assert proc.returncode == 0 and "--min-labeled 3" in proc.stdout, proc.stdout[-2000:]


def test_pseudo_label_ids_are_checked_as_they_are_written(teacher, tmp_path, monkeypatch):
    base, root = teacher
    pseudo.thresholds_stage([base / f"hist/{k}.npy" for k in range(SHARDS)], tmp_path / "thresholds.json",
                            "dars", 0.4, base / "prior.json")
    monkeypatch.setattr(pseudo, "label_image", lambda *a, **k: np.full(a[1].shape, 50, np.uint8))
    where = re.escape(str(tmp_path / "pseudo/0"))
    with pytest.raises(DarsError, match=rf"{where}/\S+\.png .*pseudo label id 50 is outside 0..18"):
        pseudo.label_stage(base / "shards/0", tmp_path / "thresholds.json", tmp_path / "pseudo/0", 0, 1, root)
    assert not (tmp_path / "pseudo").exists() or not any((tmp_path / "pseudo").iterdir())


# 6. A full disk names the file and the free space.

def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_names_the_file_and_the_free_space(tmp_path, monkeypatch):
    monkeypatch.setattr("pathlib.Path.write_text", full_disk)
    out = re.escape(str(tmp_path / "out"))
    with pytest.raises(DarsError, match=rf"{out}/miou.json: could not write it \(No space left on device\); "
                                        r"[\d.]+ GiB free there"):
        write_json(tmp_path / "out/miou.json", {"miou": 0.5})
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DarsError, match=rf"{out}/model.pt: could not write it .* GiB free there"):
        save_checkpoint(tmp_path / "out/model.pt", {"w": torch.zeros(3)})
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file left behind


# Issue 21: what is missing is noticed, and long stages say how far they are.

def drop_val_city_images(root):
    """A val city whose leftImg8bit/ folder is gone while its gtFine/ labels stay."""
    shutil.rmtree(root / "leftImg8bit/val/frankfurt")
    (root / "leftImg8bit/val").mkdir(exist_ok=True)


def test_labels_without_images_are_an_error_naming_count_example_and_folder(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8, num_val=2)
    for img in sorted((root / "leftImg8bit/train/bochum").glob("*.png")):  # 4 of the 8 train images
        img.unlink()
    with pytest.raises(DarsError, match=r"\(split train\): 4 labels have no image in \S+/leftImg8bit/train "
                                        r"\(e\.g\. gtFine/train/bochum/\S+_gtFine_labelTrainIds\.png\)"):
        find_pairs("cityscapes", root, "train")
    label = root / find_pairs("cityscapes", root, "val")[0][1]
    for lab in label.parent.glob(label.name.replace("labelTrainIds", "*")):
        lab.unlink()  # and an image without its label
    with pytest.raises(DarsError, match=r"\(split val\): 1 images have no label in \S+/gtFine/val \(e\.g\. "):
        find_pairs("cityscapes", root, "val")


def test_gta5_and_voc_pair_both_ways(tmp_path):
    gta = tmp_path / "gta5"
    for i in (1, 2, 3):
        write_png(gta / f"images/{i:05d}.png", np.zeros((4, 4, 3), np.uint8), rgb=True)
        write_png(gta / f"labels_trainIds/{i:05d}.png", np.zeros((4, 4), np.uint8))
    write_png(gta / "labels_trainIds/00009.png", np.zeros((4, 4), np.uint8))  # a label without its image
    with pytest.raises(DarsError, match=r"1 labels have no image in \S+/images \(e\.g\. labels_trainIds/00009\.png\)"):
        find_pairs("gta5", gta, "train")
    voc = tmp_path / "voc"
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/val.txt").write_text("a\nb\nc\n")
    for iid in "abc":
        write_png(voc / f"SegmentationClassAug/{iid}.png", np.zeros((4, 4), np.uint8))
    (voc / "JPEGImages").mkdir()
    cv2.imwrite(str(voc / "JPEGImages/a.jpg"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DarsError, match=r"2 labels have no image in \S+/JPEGImages \(e\.g\. SegmentationClassAug/b"):
        find_pairs("voc", voc, "val")


def test_an_incomplete_val_set_stops_the_split_before_any_training(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8, num_val=2)
    drop_val_city_images(root)
    with pytest.raises(DarsError, match=r"the val set cannot be evaluated in full: .*2 labels have no image in "
                                        r"\S+/leftImg8bit/val .*allow_unpaired: true"):
        make_split(root, 4, 0, tmp_path / "split", "tiny")
    assert not (tmp_path / "split").exists()


def test_allow_unpaired_warns_and_miou_records_listed_and_scored(teacher, tmp_path):
    base, _ = teacher
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8, num_val=4)
    label = root / find_pairs("cityscapes", root, "val")[0][1]
    for lab in label.parent.glob(label.name.replace("labelTrainIds", "*")):
        lab.unlink()  # one val image loses its label
    make_split(root, 4, 0, tmp_path / "split", "tiny", allow_unpaired=True)
    info = json.loads((tmp_path / "split/split.json").read_text())
    assert info["allow_unpaired"] and info["num_val"] == 3
    assert any("1 images have no label" in w for w in info["warnings"]), info["warnings"]
    result = evaluate_stage(base / "round0.pt", root, tmp_path / "miou.json", split_json=tmp_path / "split/split.json")
    assert result["num_val_listed"] == result["num_val_scored"] == result["num_images"] == 3
    assert any("1 images have no label" in w for w in result["warnings"])
    with pytest.raises(DarsError, match="1 images have no label"):  # without the key, evaluate refuses
        evaluate_stage(base / "round0.pt", root, tmp_path / "miou2.json")


def real_tree_config(root, **dataset):
    config = tiny_config(seeds=[0])
    config["datasets"]["real"] = {"root": str(root), "layout": "cityscapes", **dataset}
    return config


def test_an_incomplete_val_set_fails_the_plan_cleanly(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8, num_val=2)
    drop_val_city_images(root)
    proc = snakemake(tmp_path, "-n", "results/real/split4/seed0/round0/miou.json", config=real_tree_config(root))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "2 labels have no image in" in out, out[-2000:]
    assert "InputFunctionException" not in out and "Traceback" not in out


def test_cityscapes_check_preset_fails_on_an_incomplete_val_set(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=16, num_val=2)
    drop_val_city_images(root)
    config = tiny_config(seeds=[0])
    config["datasets"]["cityscapes_check"]["root"] = str(root)
    proc = snakemake(tmp_path, "-n", "results/cityscapes_check/split8/seed0/round0/model.pt", config=config)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "2 labels have no image in" in out, out[-2000:]


def test_a_wrong_root_in_a_configfile_is_not_blamed_on_config_yaml(tmp_path):
    mine = tmp_path / "my.yaml"
    mine.write_text(f"datasets: {{real: {{root: {tmp_path}, layout: cityscapes}}}}\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    proc = snakemake(tmp_path, "-n", "results/real/split4/seed0/split/split.json", "--configfile", str(mine))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "has no leftImg8bit/ folder" in out, out[-2000:]
    assert "in config.yaml" not in out and "(config.yaml or --configfile)" in out


def test_split_0_refusal_says_it_means_domain_adaptation(tmp_path):
    proc = snakemake(tmp_path, "-n", config=tiny_config(split=0))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "split0 means no labeled target image (domain adaptation)" in out, out[-2000:]
    with pytest.raises(DarsError, match=r"split 0 means domain adaptation"):
        make_split(tmp_path, 0, 0, tmp_path / "s", "tiny")


def test_the_split_hint_accounts_for_min_labeled(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=16)
    with pytest.raises(DarsError, match=r"use a split of at most (\d+)") as hint:
        make_split(root, 1000, 0, tmp_path / "s", "tiny", min_labeled=2)
    largest = int(re.search(r"at most (\d+)", str(hint.value)).group(1))
    make_split(root, largest, 0, tmp_path / "ok", "tiny", min_labeled=2)  # the hint's split is accepted
    with pytest.raises(DarsError, match="fewer than the minimum of 2"):
        make_split(root, largest + 1, 0, tmp_path / "over", "tiny", min_labeled=2)


def test_a_step_limited_model_records_its_real_epochs(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8)
    make_split(root, 2, 0, tmp_path / "split", "tiny")  # 4 labeled, batch 2: 2 steps an epoch
    train(dict(TRAIN_SETTINGS, steps=3), tmp_path / "model.pt", root, tmp_path / "split/labeled.txt", log=quiet)
    ck = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=False)
    assert ck["iteration"] == 3 and ck["epochs"] == 1.5


def test_a_truncated_shard_names_the_commands_that_rebuild_it(teacher, tmp_path):
    base, _ = teacher
    shard = tmp_path / "shards/0"
    shutil.copytree(base / "shards/0", shard)
    with open(shard / "conf.f16", "r+b") as f:
        f.truncate(10)
    where = re.escape(str(shard))
    with pytest.raises(DarsError, match=rf"the shard is truncated: rebuild it and everything made from it: "
                                        rf"`snakemake --forcerun {where}`"):
        pseudo.stats_stage(shard, tmp_path / "hist.npy")


def test_a_deleted_pseudo_label_is_caught_at_plan_time_and_by_its_consumer(teacher, tmp_path):
    base, root = teacher
    round_dir = tmp_path / "results/tiny/split2/seed0/dars/round1"
    pseudo_labels(base, root, round_dir, 0.4)
    victim = next((round_dir / "pseudo/0").glob("*.png"))
    victim.unlink()
    proc = snakemake(tmp_path, "-n", config=tiny_config())
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert f"{round_dir.relative_to(tmp_path)}/pseudo/0: {victim.name}, listed in its stats.json, is missing" \
        in out, out[-2000:]
    stale = f"{round_dir.relative_to(tmp_path)}/pseudo/0"
    assert f"`snakemake --forcerun {stale}`" in out
    # The command it gives passes the check (that directory is being rebuilt). Not `rm -r` then
    # `snakemake`: Snakemake does not rerun the jobs after a deleted intermediate.
    proc = snakemake(tmp_path, "-n", "--forcerun", stale, config=tiny_config())
    assert "no longer match their manifests" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    dirs = [round_dir / f"pseudo/{k}" for k in range(SHARDS)]
    with pytest.raises(DarsError, match=rf"{re.escape(victim.name)}: pseudo label missing; .* --forcerun "):
        pseudo.merge_stage(round_dir / "thresholds.json", dirs, tmp_path / "s.json", tmp_path / "l.txt")
    other = next((round_dir / "pseudo/1").glob("*.png"))
    y = read_label(other)
    y[0, 0] = 255 - y[0, 0] if y[0, 0] != 255 else 0
    cv2.imwrite(str(other), y)  # edited in place: the consumer's sha256 check names it
    assert stale_directories(tmp_path / "results")[-1][0].endswith("pseudo/1")
    shutil.rmtree(round_dir / "pseudo/0")
    with pytest.raises(DarsError, match=rf"{re.escape(other.name)}: pseudo label differs from the one its label"):
        pseudo.merge_stage(round_dir / "thresholds.json", dirs[1:], tmp_path / "s.json", tmp_path / "l.txt")


def test_a_full_disk_while_torch_writes_a_checkpoint_is_named(tmp_path, monkeypatch):
    real_open = open

    class FillsUp:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(checkpoint, "open", lambda *a, **k: FillsUp(real_open(*a, **k)), raising=False)
    with pytest.raises(DarsError, match=rf"{re.escape(str(tmp_path))}/model.pt: could not write it \(No space left "
                                        r"on device\); [\d.]+ GiB free there"):
        save_checkpoint(tmp_path / "model.pt", {"w": torch.zeros(100000)})
    assert list(tmp_path.iterdir()) == []


STAGE_PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO evaluate: evaluate progress 2/2 images \(100%\), "
                            r"[\d.e+]+ images/s, elapsed \S+, ETA 0s$", re.M)


def test_a_stage_log_has_timestamped_progress_with_rate_and_eta(teacher, tmp_path):
    base, root = teacher
    log = tmp_path / "evaluate.log"
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "dars", "evaluate", "--ckpt", str(base / "round0.pt"),
                               "--root", str(root), "--threads", "1", "--out", str(tmp_path / "miou.json")],
                              stdout=subprocess.PIPE, stderr=f, text=True, cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, log.read_text()
    assert proc.stdout.startswith("mIoU ")  # the result alone on stdout
    assert STAGE_PROGRESS.search(log.read_text()), log.read_text()
