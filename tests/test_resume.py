"""Training survives being killed: `python -m dars train` killed with -9 midway, or stopped with
SIGTERM (what Slurm sends before a time limit or on preemption), resumes from work/last.pt on
a rerun and ends with exactly the weights of an uninterrupted run."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, TRAIN_SETTINGS, write_cityscapes_tree

from dars.data.splits import make_split

STEPS_PER_EPOCH = 8   # 16 labeled images, batch size 2
RUN = dict(TRAIN_SETTINGS, epochs=5, checkpoint_every=1)  # 40 steps, a checkpoint after each


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    root = write_cityscapes_tree(base / "cityscapes", num_train=32)
    make_split(root, 2, 0, base / "split", "tiny")
    return root, base / "split/labeled.txt"


def start(data, work, out):
    root, labeled = data
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "dars", "train", "--settings", json.dumps(RUN), "--root", str(root),
         "--labeled", str(labeled), "--work-dir", str(work), "--threads", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def wait_for_mid_epoch_checkpoint(proc, last, min_step=3, timeout=120):
    """Poll work/last.pt until it holds a mid-epoch state at step >= min_step; return that step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended (rc {proc.returncode}) before a mid-epoch checkpoint was seen:\n"
                        + proc.stdout.read()[-2000:])
        if last.is_file():
            try:
                step = torch.load(last, map_location="cpu", weights_only=False)["iteration"]
            except (FileNotFoundError, EOFError, RuntimeError):
                step = None  # replaced or removed while reading
            if step is not None and step >= min_step and step % STEPS_PER_EPOCH:
                return step
        time.sleep(0.01)
    pytest.fail("no mid-epoch checkpoint within the timeout")


def assert_same_training(a_path, b_path):
    a = torch.load(a_path, map_location="cpu", weights_only=False)
    b = torch.load(b_path, map_location="cpu", weights_only=False)
    assert a["iteration"] == b["iteration"] == 5 * STEPS_PER_EPOCH
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["history"] == b["history"]
    # and the same bytes: the next round records the teacher's sha256
    assert hashlib.sha256(Path(a_path).read_bytes()).digest() == hashlib.sha256(Path(b_path).read_bytes()).digest()


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    rc, out = finish(start(data, base / "work", base / "model.pt"))
    assert rc == 0, out[-3000:]
    assert "resuming" not in out
    return base / "model.pt"


def interrupt_midway(data, work, out, sig):
    """Start a training run, send `sig` after a mid-epoch checkpoint; (rc, log, saved step)."""
    proc = start(data, work, out)
    seen = wait_for_mid_epoch_checkpoint(proc, work / "last.pt")
    proc.send_signal(sig)
    rc, log = finish(proc)
    assert not out.exists()
    saved = torch.load(work / "last.pt", map_location="cpu", weights_only=False)["iteration"]
    assert seen <= saved < 5 * STEPS_PER_EPOCH
    return rc, log, saved


def test_kill_9_midway_then_rerun_resumes_to_identical_weights(data, reference, tmp_path):
    work, out = tmp_path / "work", tmp_path / "model.pt"
    rc, _, saved = interrupt_midway(data, work, out, signal.SIGKILL)
    assert rc == -signal.SIGKILL

    rc, log = finish(start(data, work, out))
    assert rc == 0, log[-3000:]
    assert f"resuming from {work / 'last.pt'} at step {saved}/40" in log
    assert_same_training(reference, out)
    assert not (work / "last.pt").exists()


def test_sigterm_saves_exits_nonzero_and_rerun_resumes_to_identical_weights(data, reference, tmp_path):
    work, out = tmp_path / "work", tmp_path / "model.pt"
    rc, log, saved = interrupt_midway(data, work, out, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, log[-3000:]
    assert f"signal {int(signal.SIGTERM)}: saved {work / 'last.pt'} at step {saved}" in log

    rc, log = finish(start(data, work, out))
    assert rc == 0, log[-3000:]
    assert f"resuming from {work / 'last.pt'} at step {saved}/40" in log
    assert_same_training(reference, out)
