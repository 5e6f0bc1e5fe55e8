"""The trainer's GPU-oriented paths, checked on CPU: option resolution, loader workers,
bf16 autocast + channels_last, and `torchrun` DDP (gloo) with synchronised BatchNorm.

World 2 equals world 1 mathematically: the global batch is split into equal contiguous slices,
BatchNorm statistics cover the global batch and the loss is normalised by the global count of
labeled pixels. In float32 the two still drift apart visibly (measured: up to 16% on single
gradient tensors after one step), not from a bug but because a float32 rounding difference
of 1e-7 flips a ReLU whose input sits at ~1e-6, and on the tiny 4x6 context maps of these
32x48 crops one flipped element carries a large share of a layer's gradient. In float64 the
same flips would need inputs within ~1e-15 of zero, so the comparison runs in float64 (a
launcher sets the default dtype; the trainer's code path is the same) with dropout off
(each rank draws its own masks): measured agreement 4e-15, asserted at 1e-9."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import REPO, TRAIN_SETTINGS, write_cityscapes_tree

from dars.data.dataset import SegmentationPairs
from dars.data.splits import make_split
from dars.io import DarsError
from dars.runtime import resolve_amp, resolve_channels_last, resolve_workers
from dars.slide import load_model
from dars.train import StepBatches, train

# Test-only knobs around `python -m dars`: float64, no dropout, pid files, slower steps.
LAUNCHER = """
import os, sys, time
from pathlib import Path
import torch
if os.environ.get("T_NO_DROPOUT"):
    torch.nn.Dropout2d.forward = lambda self, x: x
if os.environ.get("T_FLOAT64"):
    torch.set_default_dtype(torch.float64)
    from dars.data.dataset import SegmentationPairs
    get = SegmentationPairs.__getitem__
    SegmentationPairs.__getitem__ = lambda self, i: (lambda x, y: (x.double(), y))(*get(self, i))
if os.environ.get("T_STEP_SLEEP"):
    step = torch.optim.SGD.step
    def slow_step(self, *a, **k):
        time.sleep(float(os.environ["T_STEP_SLEEP"]))
        return step(self, *a, **k)
    torch.optim.SGD.step = slow_step
if os.environ.get("T_PID_DIR"):
    Path(os.environ["T_PID_DIR"], "rank" + os.environ.get("RANK", "0")).write_text(str(os.getpid()))
from dars.__main__ import main
sys.exit(main(sys.argv[1:]))
"""

STEPS_PER_EPOCH = 2  # 8 labeled images, global batch 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    root = write_cityscapes_tree(base / "cityscapes", num_train=16)
    make_split(root, 2, 0, base / "split", "tiny")
    launcher = base / "launch.py"
    launcher.write_text(LAUNCHER)
    teacher = base / "teacher.pt"
    train(dict(TRAIN_SETTINGS, batch_size=4, epochs=1), teacher, root, base / "split/labeled.txt", threads=1,
          log=lambda m: None)
    return {"root": root, "split": base / "split", "launcher": launcher, "teacher": teacher}


def command(data, settings, out, ranks=None, work=None, init=None):
    prefix = [sys.executable]
    if ranks:
        prefix += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    split = data["split"]
    cmd = prefix + [str(data["launcher"]), "train", "--settings", json.dumps(settings), "--root", str(data["root"]),
                    "--labeled", str(split / "labeled.txt"), "--unlabeled", str(split / "unlabeled.txt"),
                    "--threads", str(ranks or 1), "--out", str(out)]
    cmd += ["--work-dir", str(work)] if work else []
    return cmd + (["--init", str(init)] if init else [])


def environment(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    env.pop("WORLD_SIZE", None)
    return env


def run(cmd, env, timeout=120):
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return proc.returncode, proc.stdout


def test_option_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_amp("auto", cpu) is None and resolve_amp(None, cpu) is None
    assert resolve_amp("off", cpu) is None and resolve_amp(False, cpu) is None  # YAML's bare off
    assert resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_channels_last("auto", cpu) is False and resolve_channels_last("auto", cuda) is True
    assert resolve_channels_last(False, cuda) is False
    assert resolve_workers("auto", 8, cpu) == 0 and resolve_workers(None, 8, cuda) == 7
    assert resolve_workers("auto", None, cuda) == 0 and resolve_workers(3, 1, cpu) == 3
    for bad in ((resolve_amp, "fp8"), (resolve_channels_last, "yes"), (resolve_workers, -1)):
        with pytest.raises(DarsError):
            bad[0](bad[1], *((8,) if bad[0] is resolve_workers else ()), cpu)


def test_rank_slices_make_up_the_global_batches():
    full = list(StepBatches([10, 7], [0, 1], 1, 3, 4, 0, 9))
    halves = [list(StepBatches([10, 7], [0, 1], 1, 3, 4, 0, 9, rank, 2)) for rank in range(2)]
    for step, batch in enumerate(full):
        for stream in range(2):
            assert [i for i in batch if i[0] == stream] == \
                [i for r in range(2) for i in halves[r][step] if i[0] == stream]
    assert list(StepBatches([10, 7], [0, 1], 1, 3, 4, 5, 9)) == full[5:]  # resuming at step 5


def test_batch_must_divide_over_ranks(data, monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(DarsError, match="batch_size 3"):
        train(dict(TRAIN_SETTINGS, batch_size=3), tmp_path / "m.pt", data["root"], data["split"] / "labeled.txt")


def test_loader_workers_do_not_change_results(data, tmp_path):
    student = dict(TRAIN_SETTINGS, round=1, mode="supervised", epochs=1, batch_size=4)
    outs = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}.pt"
        train(dict(student, workers=workers), out, data["root"], data["split"] / "labeled.txt",
              unlabeled_list=data["split"] / "unlabeled.txt", init_ckpt=data["teacher"], threads=1,
              log=lambda m: None)
        outs.append(torch.load(out, weights_only=False))
    for k in outs[0]["model"]:
        assert torch.equal(outs[0]["model"][k], outs[1]["model"][k]), k
    assert outs[0]["history"] == outs[1]["history"]


def test_bf16_autocast_and_channels_last_on_cpu(data, tmp_path):
    messages = []
    settings = dict(TRAIN_SETTINGS, batch_size=4, epochs=1, amp="bf16", channels_last=True)
    train(settings, tmp_path / "bf16.pt", data["root"], data["split"] / "labeled.txt", threads=1,
          log=messages.append)
    assert any("amp torch.bfloat16, channels_last True" in m for m in messages)
    model, meta = load_model(tmp_path / "bf16.pt", "cpu")  # loads into a plain float32 model
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(torch.tensor(h["loss_labeled"])) for h in meta["history"])
    fp32 = torch.load(data["teacher"], weights_only=False)["model"]
    assert not torch.equal(fp32["classifier.weight"], model.state_dict()["classifier.weight"])


@pytest.mark.e2e  # over 30 s
def test_compiled_training_matches_eager_and_saves_plain_weights(data, tmp_path):
    """torch.compile (inductor, ~1 min on these cores) computes the same steps up to float
    rounding, and the checkpoint loads into a plain model: same keys, close values."""
    messages = []
    settings = dict(TRAIN_SETTINGS, batch_size=4, epochs=1, compile=True)
    train(settings, tmp_path / "compiled.pt", data["root"], data["split"] / "labeled.txt", threads=1,
          log=messages.append)
    assert any("compile True" in m for m in messages)
    compiled, eager = (torch.load(p, weights_only=False) for p in (tmp_path / "compiled.pt", data["teacher"]))
    assert compiled["model"].keys() == eager["model"].keys()
    for k, v in eager["model"].items():
        assert torch.allclose(compiled["model"][k].double(), v.double(), rtol=1e-3, atol=1e-4), k
    assert compiled["fingerprint"] == eager["fingerprint"]  # either may resume the other
    assert compiled["history"][0]["loss_labeled"] == pytest.approx(eager["history"][0]["loss_labeled"], rel=1e-4)


def test_two_ranks_equal_one_rank(data, tmp_path, monkeypatch):
    """A supervised round (two forward passes per step, teacher weights and optimizer state)
    under torchrun with 2 ranks vs one process, in float64 without dropout (module docstring)."""
    settings = dict(TRAIN_SETTINGS, round=1, mode="supervised", epochs=2, batch_size=4)
    rc, log2 = run(command(data, settings, tmp_path / "two.pt", ranks=2, init=data["teacher"]),
                   environment(T_FLOAT64="1", T_NO_DROPOUT="1"))
    assert rc == 0, log2[-3000:]
    assert log2.count('{"epoch": 2') == 1 and "world 2" in log2  # rank 0 alone logs
    # World 1 in this process (the launcher's patches, undone afterwards): saves a launch.
    monkeypatch.setattr(torch.nn.Dropout2d, "forward", lambda self, x: x)
    get = SegmentationPairs.__getitem__
    monkeypatch.setattr(SegmentationPairs, "__getitem__", lambda self, i: (lambda x, y: (x.double(), y))(*get(self, i)))
    torch.set_default_dtype(torch.float64)
    try:
        train(settings, tmp_path / "one.pt", data["root"], data["split"] / "labeled.txt",
              data["split"] / "unlabeled.txt", init_ckpt=data["teacher"], threads=1, log=lambda m: None)
    finally:
        torch.set_default_dtype(torch.float32)
    one = torch.load(tmp_path / "one.pt", weights_only=False)
    two = torch.load(tmp_path / "two.pt", weights_only=False)
    assert not [k for k in two["model"] if k.startswith("module.")]
    assert two["complete"] and two["iteration"] == 2 * STEPS_PER_EPOCH
    for k, a in one["model"].items():
        b = two["model"][k]
        assert a.shape == b.shape and a.dtype == b.dtype == (torch.int64 if "num_batches" in k else torch.float64)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12 * max(1.0, float(a.abs().max()))), k
    for h1, h2 in zip(one["history"], two["history"], strict=True):
        assert h1["iteration"] == h2["iteration"] and h1["lr"] == h2["lr"]
        assert abs(h1["loss_labeled"] - h2["loss_labeled"]) < 1e-9 and abs(h1["loss_pseudo"] - h2["loss_pseudo"]) < 1e-9
    load_model(tmp_path / "two.pt", "cpu")  # loads into a plain single-process model


@pytest.mark.e2e  # over 30 s
def test_sigterm_to_one_rank_stops_both_and_rerun_resumes_exactly(data, tmp_path):
    """SIGTERM to rank 1 only: both ranks stop after the same step, rank 0 saves work/last.pt,
    and a rerun (all ranks load it, each its own RNG state) ends with exactly the weights of an
    uninterrupted 2-rank run (float32, dropout on)."""
    settings = dict(TRAIN_SETTINGS, epochs=5, batch_size=4, checkpoint_every=1)
    total = 5 * STEPS_PER_EPOCH
    rc, log = run(command(data, settings, tmp_path / "ref.pt", ranks=2), environment())
    assert rc == 0, log[-3000:]

    work, out, pids = tmp_path / "work", tmp_path / "model.pt", tmp_path / "pids"
    pids.mkdir()
    proc = subprocess.Popen(command(data, settings, out, ranks=2, work=work),
                            env=environment(T_PID_DIR=str(pids), T_STEP_SLEEP="0.15"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, seen = time.time() + 90, None
    while seen is None and time.time() < deadline and proc.poll() is None:
        try:
            step = torch.load(work / "last.pt", weights_only=False)["iteration"]
            seen = step if 2 <= step < total - 3 else None
        except (FileNotFoundError, EOFError, RuntimeError):
            pass  # not written yet, or replaced while reading
        time.sleep(0.02)
    assert seen is not None, "no mid-run checkpoint seen"
    os.kill(int((pids / "rank1").read_text()), signal.SIGTERM)
    log, _ = proc.communicate(timeout=90)
    assert proc.returncode != 0 and not out.exists()
    assert f"signal {int(signal.SIGTERM)}: saved {work / 'last.pt'}" in log, log[-3000:]
    saved = torch.load(work / "last.pt", weights_only=False)
    assert seen <= saved["iteration"] < total and len(saved["rng_ranks"]) == 2

    rc, log = run(command(data, settings, out, ranks=2, work=work), environment())
    assert rc == 0, log[-3000:]
    assert f"resuming from {work / 'last.pt'} at step {saved['iteration']}/{total}" in log
    assert not (work / "last.pt").exists()
    ref, got = torch.load(tmp_path / "ref.pt", weights_only=False), torch.load(out, weights_only=False)
    for k in ref["model"]:
        assert torch.equal(ref["model"][k], got["model"][k]), k
    assert ref["history"] == got["history"]


@pytest.mark.e2e  # over 30 s
def test_nproc_relaunches_under_torchrun_as_the_workflow_runs_it(data, tmp_path):
    """`python -m dars train --nproc 2` (what the rules run with DARS_TRAIN_GPUS=2) re-executes
    itself as two DDP ranks and gives exactly an explicit torchrun run's weights."""
    settings = dict(TRAIN_SETTINGS, epochs=1, batch_size=4)
    rc, log = run(command(data, settings, tmp_path / "ref.pt", ranks=2), environment())
    assert rc == 0, log[-3000:]
    cmd = [sys.executable, "-m", "dars"] + command(data, settings, tmp_path / "nproc.pt")[2:] + ["--nproc", "2"]
    rc, log = run(cmd, environment())
    assert rc == 0, log[-3000:]
    assert "world 2" in log
    ref = torch.load(tmp_path / "ref.pt", weights_only=False)
    got = torch.load(tmp_path / "nproc.pt", weights_only=False)
    for k in ref["model"]:
        assert torch.equal(ref["model"][k], got["model"][k]), k
