"""Checkpoints: written atomically and byte-reproducibly, read with a named error, and a training
run's state (dars.train.Run) saved and resumed.

A training checkpoint holds the model's and the optimizer's state, the run's progress (step,
epoch history, this epoch's loss sums), the RNG states (per rank under torchrun, per GPU on
CUDA), the settings dict and the resume fingerprint. `work_dir/last.pt` is the resume state:
a rerun whose fingerprint (settings less runtime-only ones, teacher bytes, training data)
equals the saved one continues from it bit-for-bit on CPU; otherwise it says what changed and
starts afresh."""
import pickle
import sys
from pathlib import Path

import torch

from . import distributed as dd
from .data.digests import file_sha256, list_digest
from .io import DarsError, atomic_path


def save_checkpoint(path, payload):
    """torch.save, atomically and byte-reproducibly: equal payloads give identical files, however
    their objects were made (a resumed run's optimizer state holds unpickled strings, a fresh
    run's the interned literals). A full disk is named like any write (dars.io)."""
    # Through a file object: given a path, torch names the archive's inner folder after the
    # (random) temporary file, so identical checkpoints would differ in bytes and sha256.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        recorder = _WriteErrors(f)
        try:
            torch.save(canonical(payload), recorder)
        except RuntimeError:
            # torch turns the file's OSError (ENOSPC) into "unexpected pos ..."; the cause goes
            # to atomic_path, which names the file and the free space.
            if recorder.error is not None:
                raise recorder.error from None
            raise


class _WriteErrors:
    """A binary file that remembers the OSError its write raised (torch hides it)."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self):
        self.f.flush()


def canonical(obj):
    """A copy of a payload's containers in which equal strings are one object and no other
    container is shared: pickle memoises by object identity, so its bytes then depend on the
    values alone (tensors are kept as they are)."""
    if isinstance(obj, dict):
        return {canonical(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(canonical(v) for v in obj)
    if type(obj) is str:
        return sys.intern(obj)
    return obj


def read_checkpoint(path):
    """torch.load of a checkpoint we wrote; a damaged or truncated file is named, with the fix."""
    path = Path(path)
    if not path.is_file():
        raise DarsError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DarsError(f"{path}: not a readable checkpoint ({first}); it is damaged or truncated: delete it "
                        f"and rerun the job that writes it (snakemake --forcerun {path})") from None


def fingerprint(settings, data):
    """What a resumable checkpoint must match, part by part, so that a mismatch can say what
    changed: the settings (dars.settings.TrainSettings.digest), the teacher's bytes, and the
    data the run trains on (dars.train.TrainData): the labeled list and its labels, the
    pseudo-label list and its labels (a new alpha makes new labels under the same list), the
    unlabeled list (the control's epoch length). Labels are digested from the size + sha256
    records their stage wrote (dars.data.digests)."""
    parts = {"settings": settings.digest()}
    if data.init_ckpt:
        parts["teacher"] = file_sha256(data.init_ckpt)
    if data.labeled_list:
        parts["labeled list"] = list_digest(data.labeled_list, data.labeled_root)
    if data.pseudo_list:
        parts["pseudo labels"] = list_digest(data.pseudo_list, Path(data.pseudo_list).parent)
    if data.unlabeled_list:
        parts["unlabeled list"] = list_digest(data.unlabeled_list)
    return parts


def fingerprint_changes(saved, current):
    """Words for the resume log: which parts of a saved fingerprint differ from the current one."""
    if not isinstance(saved, dict):  # a single digest, from before fingerprints had parts
        return "it predates per-part fingerprints (settings, teacher, data)"
    changed = [k for k in dict.fromkeys([*current, *saved]) if saved.get(k) != current.get(k)]
    return f"its {', '.join(changed)} changed since it was saved"


def save_training(path, run, final=False):
    """Write `run`'s state to `path`. Collective under torchrun: every rank calls it at the same
    step (each contributes its RNG state), rank 0 writes."""
    ranks, device, s = run.rt.ranks, run.rt.device, run.settings
    rng_ranks = dd.gather(torch.get_rng_state(), ranks) if ranks.active else None
    cuda_rng = dd.gather(torch.cuda.get_rng_state(device), ranks) if device.type == "cuda" else None
    if not ranks.main:
        return
    payload = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
               "model_name": s.model, "num_classes": s.num_classes, "round": s.round,
               "epoch": run.step / run.steps_per_epoch, "epochs": epochs_of(run),
               "iteration": run.step, "settings": s.to_dict(), "history": run.history,
               "rng": torch.get_rng_state(), "sums": run.sums, "fingerprint": run.fingerprint, "complete": final}
    if run.backbone_init:
        payload["backbone_init"] = run.backbone_init
    if rng_ranks:
        payload["rng_ranks"] = rng_ranks
    if cuda_rng:
        payload["cuda_rng"] = cuda_rng
    save_checkpoint(path, payload)


def epochs_of(run):
    """The run's length in epochs: the configured count, or for a step-limited run (round 0's
    `steps`) the real, fractional one its steps make."""
    s = run.settings
    return round(run.total_steps / run.steps_per_epoch, 4) if s.steps else s.epochs


def _resumable(last, current, log):
    """The checkpoint at `last` if its fingerprint is `current`; else None, having said why."""
    if not (last and last.is_file()):
        return None
    try:
        ck = read_checkpoint(last)
    except DarsError as e:  # our own resume state, not a user's file: start afresh, say why
        log(f"{e}; starting afresh")
        return None
    if ck.get("fingerprint") != current:
        log(f"ignoring {last}: {fingerprint_changes(ck.get('fingerprint'), current)}; starting afresh")
        return None
    return ck


def resume(run):
    """Continue `run` from run.last (work_dir/last.pt) when that holds the same computation:
    weights, optimizer, progress and every rank's RNG states."""
    ck = _resumable(run.last, run.fingerprint, run.rt.log)
    if ck is None:
        return
    ranks, device = run.rt.ranks, run.rt.device
    run.model.load_state_dict(ck["model"])
    run.optimizer.load_state_dict(ck["optimizer"])
    per_rank = ck.get("rng_ranks")  # written by multi-rank runs: one state per rank
    if per_rank and len(per_rank) == ranks.world:
        torch.set_rng_state(per_rank[ranks.rank])
    elif ranks.main:
        torch.set_rng_state(ck["rng"])
    cuda_rng = ck.get("cuda_rng")
    if device.type == "cuda" and cuda_rng and len(cuda_rng) == ranks.world:
        torch.cuda.set_rng_state(cuda_rng[ranks.rank], device)
    run.step, run.history, run.sums = ck["iteration"], ck["history"], ck["sums"]
    run.rt.log(f"resuming from {run.last} at step {run.step}/{run.total_steps}")
