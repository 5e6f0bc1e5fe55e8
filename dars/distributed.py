"""What the trainer needs to run as one rank of `torchrun --standalone --nproc_per_node N -m dars
train` (dars.runtime sets up the rest of where and how it runs).

Single-process runs (no WORLD_SIZE, or WORLD_SIZE=1) never touch torch.distributed: `Ranks`
then says rank 0 of 1 and every helper is a no-op, so that path stays exactly as before.

SyncBatchNorm: torch's nn.SyncBatchNorm only runs on GPUs. On CPU (gloo; used by the tests
and for debugging the multi-rank path without GPUs) BatchNorm layers become CpuSyncBatchNorm,
which computes the same global batch statistics with differentiable all-reduces. Both keep
BatchNorm's state_dict keys, so checkpoints load into a plain single-process model."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from .io import DarsError


@dataclass
class Ranks:
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    local_world: int = 1
    owns_group: bool = False  # this process initialised the process group (and ends it)

    @property
    def active(self):
        return self.world > 1

    @property
    def main(self):
        return self.rank == 0


def from_env(env=None):
    """The torchrun environment of this process (rank 0 of 1 when not launched by torchrun)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if "RANK" not in env:
        raise DarsError(f"WORLD_SIZE={world} but RANK is not set: launch with torchrun (docs in dars/train.py)")
    return Ranks(rank=int(env["RANK"]), local_rank=int(env.get("LOCAL_RANK", "0")), world=world,
                 local_world=int(env.get("LOCAL_WORLD_SIZE", str(world))))


def setup(ranks):
    """Join the process group (nccl with CUDA, else gloo); return this rank's device."""
    if not ranks.active:
        raise AssertionError("setup() is for multi-rank runs")
    if torch.cuda.is_available():
        if torch.cuda.device_count() <= ranks.local_rank:
            raise DarsError(f"rank {ranks.rank}: LOCAL_RANK {ranks.local_rank} but only "
                            f"{torch.cuda.device_count()} visible GPU(s); use --nproc_per_node <= the GPU count")
        device = torch.device("cuda", ranks.local_rank)
        # Before init: nccl and the object collectives use the current device.
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=device if backend == "nccl" else None)
        ranks.owns_group = True
    return device


def teardown(ranks):
    if ranks.owns_group and dist.is_initialized():
        dist.destroy_process_group()
        ranks.owns_group = False


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients (every
    rank's loss depends on the summed value)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the whole global batch (all ranks), on CPU.

    Two passes (mean, then the mean squared deviation) like F.batch_norm, not E[x^2] - E[x]^2,
    which cancels badly. Every rank holds an equal slice (the trainer enforces it), so the
    global count is the local one times the world size."""

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dtype = x.dtype
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # statistics in >= float32
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.numel() // x.shape[1] * dist.get_world_size()
        mean = _AllReduceSum.apply(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * (count / max(count - 1, 1)), factor)  # unbiased, like BN
        return y.to(dtype)


def convert_sync_batchnorm(model, device):
    """BatchNorm layers of `model` synchronised over all ranks (parameters stay the same objects)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = CpuSyncBatchNorm  # a subclass without own state: a swap keeps everything
    return model


def all_sum(values, device, ranks):
    """Sum numbers or 0-d tensors over all ranks, in float64: one collective, one host sync."""
    if not ranks.active:
        return [float(v) for v in values]
    t = torch.stack([torch.as_tensor(v, device=device).to(torch.float64).reshape(()) for v in values])
    dist.all_reduce(t)
    return t.tolist()


def gather(obj, ranks):
    """Every rank's `obj`, in rank order (every rank must call this at the same point)."""
    if not ranks.active:
        return [obj]
    out = [None] * ranks.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ranks):
    if ranks.active:
        dist.barrier()
