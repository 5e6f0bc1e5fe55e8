"""GPU choice without a GPU: the claim logic of dars.gpu, run with a fake device count."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from helpers import REPO

from dars import gpu


@pytest.fixture(autouse=True)
def no_claim_left():
    gpu.release()
    yield
    gpu.release()


def test_cpu_without_cuda_and_cuda0_with_one_visible_gpu(tmp_path):
    locks = tmp_path / "locks"
    assert gpu.claim_device(device_count=0, env={}, lock_dir=locks) == torch.device("cpu")
    for env in ({"CUDA_VISIBLE_DEVICES": "3"}, {"SLURM_JOB_ID": "17", "CUDA_VISIBLE_DEVICES": "1"}):
        assert gpu.claim_device(device_count=1, env=env, lock_dir=locks) == torch.device("cuda", 0)
    assert not locks.exists()  # nothing to share: no lock taken
    if not torch.cuda.is_available():
        from dars.runtime import for_inference
        assert for_inference(None) == (torch.device("cpu"), 0)  # the stages' device, no decoding workers


def test_lock_names_follow_cuda_visible_devices():
    assert gpu.lock_keys(2, {}) == ["0", "1"]
    assert gpu.lock_keys(2, {"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert gpu.lock_keys(1, {"CUDA_VISIBLE_DEVICES": "GPU-8f3a/x"}) == ["GPU-8f3a_x"]
    assert gpu.lock_keys(2, {"CUDA_VISIBLE_DEVICES": "5"}) == ["0", "1"]  # does not match: indices


def test_each_claim_gets_a_different_gpu_until_none_is_left(tmp_path):
    first = gpu.try_claim(["0", "1"], tmp_path)
    second = gpu.try_claim(["0", "1"], tmp_path)
    assert (first[0], second[0]) == (0, 1)
    assert gpu.try_claim(["0", "1"], tmp_path) is None
    os.close(first[1])  # released: the next claim gets GPU 0 again
    third = gpu.try_claim(["0", "1"], tmp_path)
    assert third[0] == 0
    os.close(second[1])
    os.close(third[1])


def test_a_claim_waits_while_all_gpus_are_taken(tmp_path):
    held = [gpu.try_claim(["a", "b"], tmp_path) for _ in range(2)]
    messages, result = [], {}
    waiter = threading.Thread(target=lambda: result.update(
        got=gpu.claim(["a", "b"], tmp_path, poll_seconds=0.05, log=messages.append)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and "waiting" in messages[0]
    os.close(held[1][1])  # GPU 1 becomes free
    waiter.join(timeout=10)
    assert not waiter.is_alive() and result["got"][0] == 1
    os.close(held[0][1])
    os.close(result["got"][1])


def test_claim_device_claims_once_and_selects_the_claimed_gpu(tmp_path):
    other = gpu.try_claim(["0", "1", "2"], tmp_path)  # another process has GPU 0
    selected = []
    device = gpu.claim_device(device_count=3, env={}, lock_dir=tmp_path, select=selected.append, log=lambda m: None)
    assert device == torch.device("cuda", 1)
    again = gpu.claim_device(device_count=3, env={}, lock_dir=tmp_path, select=selected.append, log=lambda m: None)
    assert again == device and selected == [1, 1]
    assert gpu.try_claim(["0", "1", "2"], tmp_path)[0] == 2  # GPU 1 stays claimed
    os.close(other[1])


HOLD = """
import sys, time
from dars.gpu import claim_device
print(claim_device(device_count=2, env={{}}, lock_dir={lock!r}, select=lambda i: None,
                   poll_seconds=0.1), flush=True)
time.sleep(120)
"""


def test_separate_processes_share_out_gpus_and_a_killed_one_frees_its_gpu(tmp_path):
    """What parallel local Snakemake jobs do: each process gets its own GPU; a third waits; a
    process killed with -9 releases its GPU (the kernel drops the flock)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = HOLD.format(lock=str(tmp_path))

    def start():
        return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
    procs = [start()]
    try:
        assert procs[0].stdout.readline().strip() == "cuda:0"
        procs.append(start())
        assert procs[1].stdout.readline().strip() == "cuda:1"
        procs.append(start())
        waiting = ""  # the third says it waits (stderr), and waits: both GPUs are claimed
        while "all 2 GPUs are claimed" not in waiting and procs[2].poll() is None:
            waiting = procs[2].stderr.readline()
        time.sleep(0.5)
        assert "all 2 GPUs are claimed" in waiting and procs[2].poll() is None
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        assert procs[2].stdout.readline().strip() == "cuda:0"
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert "claimed GPU 0 of 2" in procs[2].stderr.read()
