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
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
from conftest import write_cityscapes_tree
from test_train import SETTINGS
from test_workflow import snakemake, tiny_config

from dars import pseudo
from dars.__main__ import main
from dars.checkpoint import save_checkpoint
from dars.data.layouts import find_pairs
from dars.data.splits import make_split
from dars.evaluate import evaluate_stage
from dars.infer import infer_stage
from dars.io import DarsError, read_label, write_json
from dars.manifest import list_digest, manifest_path
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
    train(SETTINGS, base / "round0.pt", root, base / "split/labeled.txt", log=quiet)
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


def test_resume_after_a_changed_alpha_starts_afresh(teacher, tmp_path):
    base, root = teacher
    student = dict(SETTINGS, round=1, mode="pseudo", epochs=2)
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
        train(SETTINGS, tmp_path / "model.pt", root, labeled, work_dir=tmp_path / "work",
              log=interrupt_after_first_epoch)
    text = labeled.read_text()
    label = root / text.split()[1]
    y = read_label(label)
    y[y == 255] = 3  # a fixed label: the same size in pixels, new content
    cv2.imwrite(str(label), y)
    make_split(root, 2, 0, tmp_path / "split", "tiny")
    assert labeled.read_text() == text
    messages = []
    train(SETTINGS, tmp_path / "model.pt", root, labeled, work_dir=tmp_path / "work", log=messages.append)
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
                                        rf".* infer rule: snakemake --forcerun {re.escape(str(shard))}"):
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
                                        r"the minimum of 2 \(datasets.tiny.min_labeled\); use a split of at most 4"):
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
