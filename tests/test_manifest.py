"""What a run depends on, recorded cheaply: label digests (dars.data.digests), the plan's dataset
listing (dars.inputs) and directory outputs against their manifests (dars.manifest)."""
import json
import os

import pytest
from helpers import tiny_config, write_cityscapes_tree

from dars.data.digests import file_record, list_digest, manifest_path, read_records, write_manifest
from dars.data.lists import read_list
from dars.inputs import dataset_files, has_val_labels, input_files
from dars.io import DarsError
from dars.manifest import check_directory_outputs, directory_problem, forcerun_targets, stale_directories

# Label digests.


@pytest.fixture
def listed(tmp_path):
    """A Cityscapes tree and a list of its first four train pairs, without a manifest."""
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=4, num_val=0)
    pairs = sorted((p.relative_to(root).as_posix(), p.relative_to(root).as_posix()
                    .replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit.png", "_gtFine_labelTrainIds.png"))
                   for p in (root / "leftImg8bit/train").rglob("*.png"))
    list_file = tmp_path / "labeled.txt"
    list_file.write_text("".join(f"{image} {label}\n" for image, label in pairs))
    return root, list_file


def test_a_manifest_records_what_the_digest_would_hash(listed):
    root, list_file = listed
    by_hashing = list_digest(list_file, root)
    write_manifest(list_file, {label: file_record(root / label) for _, label in read_list(list_file)})
    assert manifest_path(list_file) == list_file.with_name("labeled.manifest.json")
    assert len(read_records(list_file)) == 4 and list_digest(list_file, root) == by_hashing
    assert list_digest(list_file) != by_hashing  # without a root: the list's bytes only


def test_a_label_whose_size_left_its_record_is_hashed_again(listed):
    root, list_file = listed
    write_manifest(list_file, {label: file_record(root / label) for _, label in read_list(list_file)})
    recorded = list_digest(list_file, root)
    label = root / read_list(list_file)[2][1]
    label.write_bytes(label.read_bytes() + b"\0")
    changed = list_digest(list_file, root)
    manifest_path(list_file).unlink()
    assert changed != recorded and changed == list_digest(list_file, root)


def test_an_unreadable_manifest_counts_as_none(listed):
    root, list_file = listed
    manifest_path(list_file).write_text("{not json")
    assert read_records(list_file) == {}
    manifest_path(list_file).write_text(json.dumps({"format": "other/2", "files": {"x": {}}}))
    assert read_records(list_file) == {}


def test_a_missing_list_or_label_is_named(listed, tmp_path):
    root, list_file = listed
    with pytest.raises(DarsError, match="nothing.txt: list file not found"):
        list_digest(tmp_path / "nothing.txt", root)
    missing = root / read_list(list_file)[0][1]
    missing.unlink()
    with pytest.raises(DarsError, match=f"{missing}: label listed in {list_file} not found"):
        list_digest(list_file, root)


# The plan's dataset listing.


def test_a_real_dataset_lists_its_images_and_labels_and_a_generated_one_nothing(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=4, num_val=2)
    config = tiny_config()
    config["datasets"]["real"] = {"root": str(root), "layout": "cityscapes"}
    train = input_files(config, "real")
    assert len(train) == 8 and all(os.path.isfile(f) for f in train)
    assert sum("labelTrainIds" in f for f in train) == 4 and sum("leftImg8bit/train" in f for f in train) == 4
    assert len(input_files(config, "real", "val")) == 4
    assert input_files(config, "synthetic") == []  # the synthesize rule is its input
    assert has_val_labels(config, "real") and has_val_labels(config, "synthetic")
    assert not has_val_labels(config, "synthetic_game")  # a generated GTA5 stand-in has no val split


def test_a_split_the_layout_lacks_lists_nothing_but_train_must_exist(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=2, num_val=0)
    assert dataset_files("cityscapes", str(root), "val") == ()
    (root / "leftImg8bit/train").rename(root / "leftImg8bit/elsewhere")
    with pytest.raises(DarsError):
        dataset_files("cityscapes", str(root), "train")


# Directory outputs against their manifests.


def pseudo_dir(tmp_path, sizes=(3, 5)):
    """A pseudo-label directory results/.../pseudo/0 with its stats.json."""
    directory = tmp_path / "results/ds/split2/seed0/dars/round1/pseudo/0"
    directory.mkdir(parents=True)
    for i, size in enumerate(sizes):
        (directory / f"im{i}.png").write_bytes(b"x" * size)
    stats = {"images": [{"id": f"im{i}", "size": size} for i, size in enumerate(sizes)]}
    (directory / "stats.json").write_text(json.dumps(stats))
    return directory


def test_a_directory_matching_its_manifest_is_fine(tmp_path):
    directory = pseudo_dir(tmp_path)
    assert directory_problem(directory) is None and stale_directories(tmp_path / "results") == []
    check_directory_outputs(tmp_path / "results")


@pytest.mark.parametrize("damage, problem", [
    (lambda d: (d / "im1.png").unlink(), "im1.png, listed in its stats.json, is missing"),
    (lambda d: (d / "im0.png").write_bytes(b"xx"), "im0.png is 2 bytes, its stats.json says 3"),
    (lambda d: os.utime(d / "im0.png", (os.stat(d / "stats.json").st_mtime + 5,) * 2),
     "im0.png was modified after its stats.json was written"),
    (lambda d: (d / "stats.json").write_text("{"), "its manifest stats.json is unreadable"),
])
def test_a_damaged_directory_output_is_named_with_what_is_wrong(tmp_path, damage, problem):
    directory = pseudo_dir(tmp_path)
    damage(directory)
    assert problem in directory_problem(directory)
    assert [d for d, _ in stale_directories(tmp_path / "results")] == [str(directory)]
    with pytest.raises(DarsError, match="1 directory outputs no longer match their manifests") as error:
        check_directory_outputs(tmp_path / "results")
    assert str(directory) in str(error.value) and "snakemake" in str(error.value)
    check_directory_outputs(tmp_path / "results", rebuilding=[str(directory) + "/"])  # being rebuilt


def test_forcerun_targets_are_read_from_the_command_line():
    argv = ["--cores", "2", "-R", "a/pseudo/0", "b/shards/1", "-n", "--forcerun=c", "target", "--forcerun", "d"]
    assert forcerun_targets(argv) == ["a/pseudo/0", "b/shards/1", "c", "d"]
