"""Atomic writes leave outputs as a plain write would: mode from the umask, reproducible bytes."""
import hashlib
import os
import stat

import pytest
import torch

from dars.checkpoint import save_checkpoint
from dars.io import atomic_dir, write_json


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_json_and_checkpoint_files_follow_the_umask(tmp_path, umask):
    write_json(tmp_path / "out/miou.json", {"miou": 0.5})
    save_checkpoint(tmp_path / "out/model.pt", {"w": torch.zeros(3)})
    # tempfile's 0600 would leave colleagues on a shared cluster unable to read results.
    assert mode(tmp_path / "out/miou.json") == 0o666 & ~umask
    assert mode(tmp_path / "out/model.pt") == 0o666 & ~umask
    assert mode(tmp_path / "out") == 0o777 & ~umask
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["miou.json", "model.pt"]  # no temporaries


def test_directory_output_follows_the_umask(tmp_path, umask):
    with atomic_dir(tmp_path / "shards/0") as tmp:
        write_json(tmp / "stats.json", {})
    assert mode(tmp_path / "shards/0") == 0o777 & ~umask
    assert mode(tmp_path / "shards/0/stats.json") == 0o666 & ~umask
    assert [p.name for p in (tmp_path / "shards").iterdir()] == ["0"]


def test_identical_checkpoints_are_byte_identical(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "iteration": 7, "rng": torch.get_rng_state()}
    save_checkpoint(tmp_path / "a/model.pt", state)
    save_checkpoint(tmp_path / "b/last.pt", state)
    digest = [hashlib.sha256((tmp_path / p).read_bytes()).hexdigest() for p in ("a/model.pt", "b/last.pt")]
    assert digest[0] == digest[1]
    loaded = torch.load(tmp_path / "b/last.pt", weights_only=False)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["iteration"] == 7


def test_a_truncated_checkpoint_is_named_with_the_fix(tmp_path):
    from dars.io import DarsError
    from dars.models import build_model
    from dars.slide import load_model
    path = tmp_path / "round0/model.pt"
    save_checkpoint(path, {"model": build_model("lite", 19).state_dict(), "model_name": "lite", "num_classes": 19})
    load_model(path, "cpu")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DarsError, match=r"round0/model.pt: not a readable checkpoint .* --forcerun"):
        load_model(path, "cpu")
