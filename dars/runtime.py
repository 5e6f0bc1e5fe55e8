"""Where and how a stage's network runs, set up in one place so that training (dars.train) and
inference (dars.slide) mean the same by each setting:

  device         cpu without CUDA, else this process's GPU (dars.gpu.claim_device), or under
                 torchrun the rank's GPU (dars.distributed)
  threads        the job's threads: CPU compute, or on CUDA the loader/decoding workers plus
                 the one process that feeds the GPU
  workers        DataLoader (training) or image-decoding (inference) processes
  amp            "auto" | "bf16" | "off": bf16 autocast; auto = bf16 on CUDA where supported
  channels_last  "auto" | true | false: NHWC activations and weights
  cuDNN          autotuned on CUDA: every batch of a stage has one shape"""
import contextlib
from dataclasses import dataclass

import torch

from . import distributed as dd
from .gpu import claim_device
from .io import DarsError


def resolve_amp(value, device):
    """`amp` -> autocast dtype, or None for float32. auto: bf16 on CUDA (where supported),
    float32 on CPU, where bf16 is slower. YAML reads a bare `off` as False."""
    device = torch.device(device)
    if value in (None, "auto"):
        if device.type != "cuda":
            return None
        # GPUs before Ampere emulate bf16 slowly: fall back to float32 there.
        return None if torch.cuda.is_available() and not torch.cuda.is_bf16_supported() else torch.bfloat16
    if value in ("off", False):
        return None
    if value == "bf16":
        return torch.bfloat16
    raise DarsError(f"amp={value!r} unknown: use 'auto', 'bf16' or 'off'")


def resolve_channels_last(value, device, auto=None):
    """`channels_last` -> bool. auto: `auto` if given (inference decides per mode), else on CUDA."""
    if value in (None, "auto"):
        return torch.device(device).type == "cuda" if auto is None else auto
    if isinstance(value, bool):
        return value
    raise DarsError(f"channels_last={value!r} unknown: use 'auto', true or false")


def resolve_workers(value, threads, device):
    """Settings `workers` -> loader processes. auto: threads - 1 on CUDA, where the main
    process only feeds the GPU; 0 on CPU, where the job's threads are the compute itself."""
    if value in (None, "auto"):
        return max(0, (threads or 1) - 1) if device.type == "cuda" else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DarsError(f"train setting workers={value!r}: use 'auto' or an integer >= 0")
    return value


def _threads_and_cudnn(device, threads):
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        # One crop (training) or window/image (inference) size all run: let cuDNN pick its
        # fastest convolutions once. Inference's non-determinism cannot reach training.
        torch.backends.cudnn.benchmark = True


def for_inference(threads):
    """(device, decoding workers) of an inference stage, its threads and cuDNN set: on CUDA all
    the job's threads but the one feeding the GPU decode images ahead of the network
    (dars.data.dataset.prefetched), on CPU none (there the threads are the compute itself)."""
    device = claim_device()
    workers = resolve_workers("auto", threads, device)
    _threads_and_cudnn(device, max(1, threads - workers) if threads else None)
    return device, workers


@dataclass
class TrainRuntime:
    device: torch.device
    ranks: dd.Ranks
    workers: int
    amp_dtype: torch.dtype | None
    channels_last: bool
    log: object  # print-like; silent on ranks other than 0

    @property
    def image_format(self):
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()


def for_training(settings, threads, log):
    """The TrainRuntime of a run (dars.settings.TrainSettings): this rank's device under torchrun
    (the job's threads shared among its ranks), else this process's; threads and cuDNN set."""
    ranks = dd.from_env()
    if ranks.active:
        if settings.batch_size % ranks.world:
            raise DarsError(f"batch_size {settings.batch_size} is the global batch and must divide evenly over the "
                            f"{ranks.world} ranks (train.batch_size or --nproc_per_node)")
        device = dd.setup(ranks)
        threads = max(1, threads // ranks.local_world) if threads else threads  # the job's threads, shared
        if not ranks.main:
            log = lambda message: None  # noqa: E731 (rank 0 speaks for all)
    else:
        device = claim_device()
    workers = resolve_workers(settings.workers, threads, device)
    runtime = TrainRuntime(device, ranks, workers, resolve_amp(settings.amp, device),
                           resolve_channels_last(settings.channels_last, device), log)
    if threads:
        # CPU: every thread computes (a loader worker's results do not depend on it). CUDA: the
        # main process only launches kernels; the other threads belong to the loader workers.
        threads = threads if device.type == "cpu" else max(1, threads - workers)
    _threads_and_cudnn(device, threads)
    return runtime
