"""Which device a stage runs on, so that parallel local jobs do not pile onto one GPU.

    no CUDA                               -> cpu
    exactly one visible GPU               -> cuda:0 (a Slurm job with --gpus=1, whose
                                             CUDA_VISIBLE_DEVICES Slurm sets, or a user's
                                             CUDA_VISIBLE_DEVICES=<one id>)
    several visible GPUs                  -> the first free one, claimed for the life of the
                                             process (below); cuda:<i>

A claim is a non-blocking exclusive `flock` on one lock file per GPU, in $DARS_GPU_LOCK_DIR
(default /tmp/dars-gpu-locks). The kernel releases it when the process ends, however it ends
(also kill -9), so there is nothing to clean up. While every GPU is claimed the stage waits,
polling, and says so in its log. Lock files are named after the CUDA_VISIBLE_DEVICES entry
of the GPU (its physical id or UUID) when that variable lists devices, else after its index, and after
the host name: processes with different CUDA_VISIBLE_DEVICES, or on different machines sharing
the lock directory, agree on which GPU a lock means."""
import fcntl
import os
import re
import socket
import sys
import time
from pathlib import Path

LOCK_DIR_ENV = "DARS_GPU_LOCK_DIR"
DEFAULT_LOCK_DIR = "/tmp/dars-gpu-locks"

_held = None  # (index, fd) of this process's claim: kept open until the process ends


def lock_keys(count, env=None):
    """One lock name per visible GPU index: its CUDA_VISIBLE_DEVICES entry, else the index."""
    env = os.environ if env is None else env
    listed = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if len(listed) != count:
        listed = [str(i) for i in range(count)]
    return [re.sub(r"[^A-Za-z0-9._-]", "_", key) for key in listed]


def _open_lock(path):
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: flock needs no write access
        fd = os.open(path, os.O_RDONLY)
    return fd


def try_claim(keys, lock_dir):
    """Claim the first free GPU: (index, fd holding the lock), or None if all are claimed."""
    lock_dir = Path(lock_dir)
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())  # safe on a shared directory too
    if not lock_dir.is_dir():
        lock_dir.mkdir(parents=True, exist_ok=True)
        try:
            lock_dir.chmod(0o1777)  # shared by every user of the machine, like /tmp
        except PermissionError:
            pass
    for index, key in enumerate(keys):
        fd = _open_lock(lock_dir / f"gpu-{host}-{key}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:  # who holds it, for people looking at the lock directory
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        return index, fd
    return None


def claim(keys, lock_dir, poll_seconds=5.0, log=None):
    """Claim a free GPU, waiting (polling every `poll_seconds`) while all are claimed."""
    waited = False
    while True:
        got = try_claim(keys, lock_dir)
        if got is not None:
            if waited and log:
                log(f"dars: GPU {got[0]} is free now")
            return got
        if not waited and log:
            log(f"dars: all {len(keys)} GPUs are claimed by other dars processes (locks in "
                f"{lock_dir}); waiting for one")
            waited = True
        time.sleep(poll_seconds)


def claim_device(device_count=None, env=None, lock_dir=None, poll_seconds=5.0, select=None, log=None):
    """The torch device of this process (see the module docstring). The first call claims; later
    calls return the same device. `device_count`, `env` and `select` (called with the claimed
    index; default torch.cuda.set_device) exist so tests can run the logic without a GPU."""
    global _held
    import torch

    env = os.environ if env is None else env
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if device_count is None:
        device_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device_count == 0:
        return torch.device("cpu")
    if device_count == 1:
        return torch.device("cuda", 0)
    if _held is None:
        lock_dir = lock_dir or env.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR
        _held = claim(lock_keys(device_count, env), lock_dir, poll_seconds, log)
        where = "Slurm job " + env["SLURM_JOB_ID"] if env.get("SLURM_JOB_ID") else "this machine"
        log(f"dars: claimed GPU {_held[0]} of {device_count} on {where} (lock in {lock_dir})")
    (select or torch.cuda.set_device)(_held[0])
    return torch.device("cuda", _held[0])


def release():
    """Give this process's claim back (the end of the process does that too)."""
    global _held
    if _held is not None:
        os.close(_held[1])
        _held = None
