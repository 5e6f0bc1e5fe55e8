"""Checkpoints (dars/checkpoint.py): what is saved reads back, equal payloads give equal bytes however
their objects were made, a damaged file is named with the command that rebuilds it, nothing
half-written is left, and the resume fingerprint says which of its parts changed."""
import hashlib
import pickle
from types import SimpleNamespace

import pytest
import torch
from helpers import TRAIN_SETTINGS

from dars.checkpoint import fingerprint, fingerprint_changes, read_checkpoint, save_checkpoint
from dars.io import DarsError
from dars.settings import TrainSettings


def payload(name, history):
    g = torch.Generator().manual_seed(0)
    return {"model": {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "bn.num_batches_tracked": torch.tensor(7)},
            "model_name": name, "iteration": 12, "epoch": 1.5, "history": history, "rng": torch.get_rng_state(),
            "complete": False}


def test_a_saved_checkpoint_reads_back_equal(tmp_path):
    saved = payload("lite", [{"epoch": 1, "loss": 0.5}])
    save_checkpoint(tmp_path / "out/model.pt", saved)
    read = read_checkpoint(tmp_path / "out/model.pt")
    assert read.keys() == saved.keys()
    assert all(torch.equal(read["model"][k], v) for k, v in saved["model"].items())
    assert torch.equal(read["rng"], saved["rng"])
    assert {k: read[k] for k in ("model_name", "iteration", "epoch", "history", "complete")} == {
        k: saved[k] for k in ("model_name", "iteration", "epoch", "history", "complete")}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.pt"]  # no temporary left


def test_equal_payloads_give_identical_bytes_however_their_objects_were_made(tmp_path):
    """A resumed run's state holds unpickled (not interned) strings and its own containers, a fresh
    run's the interned literals, shared where the code shares them; pickle memoises by identity,
    so without canonical() the two files would differ."""
    entry = {"epoch": 1, "loss": 0.5}
    fresh = payload("lite", [entry, entry])  # one dict object listed twice
    resumed = pickle.loads(pickle.dumps(payload("lite", [{"epoch": 1, "loss": 0.5}, {"epoch": 1, "loss": 0.5}])))
    resumed["model_name"] = "".join(["li", "te"])  # equal, not the same object
    assert resumed["model_name"] is not fresh["model_name"]
    save_checkpoint(tmp_path / "a/model.pt", fresh)
    save_checkpoint(tmp_path / "b/last.pt", resumed)
    assert (tmp_path / "a/model.pt").read_bytes() == (tmp_path / "b/last.pt").read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_checkpoint_is_named_with_the_fix(tmp_path, damage):
    path = tmp_path / "seed0/round0/model.pt"
    save_checkpoint(path, payload("lite", []))
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a zip file" * 50, "empty": b""}[damage])
    with pytest.raises(DarsError) as e:
        read_checkpoint(path)
    message = str(e.value)
    assert message.startswith(f"{path}: not a readable checkpoint (")
    assert "damaged or truncated" in message and f"snakemake --forcerun {path}" in message


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(DarsError, match=f"^{tmp_path / 'model.pt'}: checkpoint not found$"):
        read_checkpoint(tmp_path / "model.pt")


def test_a_payload_that_cannot_be_saved_leaves_nothing(tmp_path):
    save_checkpoint(tmp_path / "model.pt", payload("lite", []))
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError)):  # a local function cannot be pickled
        save_checkpoint(tmp_path / "model.pt", dict(payload("lite", []), log=lambda m: None))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    assert (tmp_path / "model.pt").read_bytes() == before  # the old file is untouched


def test_the_fingerprint_has_the_settings_digest_and_the_teachers_bytes(tmp_path):
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"weights of round 0")
    settings = TrainSettings.of(TRAIN_SETTINGS)
    data = SimpleNamespace(init_ckpt=str(teacher), labeled_list=None, pseudo_list=None, unlabeled_list=None)
    parts = fingerprint(settings, data)
    assert parts == {"settings": settings.digest(), "teacher": hashlib.sha256(b"weights of round 0").hexdigest()}
    teacher.write_bytes(b"weights of another round 0")
    changed = fingerprint(TrainSettings.of(dict(TRAIN_SETTINGS, epochs=4)), data)
    assert fingerprint_changes(parts, changed) == "its settings, teacher changed since it was saved"
    assert fingerprint(settings, SimpleNamespace(**dict(vars(data), init_ckpt=None))) == {
        "settings": settings.digest()}


@pytest.mark.parametrize("saved, current, words", [
    ({"settings": "a", "teacher": "t"}, {"settings": "a", "teacher": "u"}, "its teacher changed since it was saved"),
    ({"settings": "a"}, {"settings": "b", "pseudo labels": "p"},
     "its settings, pseudo labels changed since it was saved"),
    ({"settings": "a", "unlabeled list": "x"}, {"settings": "a"}, "its unlabeled list changed since it was saved"),
    ("0123abcd", {"settings": "a"}, "it predates per-part fingerprints (settings, teacher, data)"),
])
def test_fingerprint_changes_say_which_parts_differ(saved, current, words):
    assert fingerprint_changes(saved, current) == words
