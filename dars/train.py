"""One trainer for round 0 (supervised pretraining) and every self-training round.

round 0      labeled batches only; one epoch = one pass over the labeled list.
round k >= 1 the student starts from the teacher's weights AND optimizer state; each step
             takes one labeled and one pseudo-labeled batch (two forward passes, losses
             summed with weight 1); one epoch = one pass over the pseudo-labeled (unlabeled)
             set, the labeled list repeated to that length. The `supervised` control takes
             two labeled batches per step instead: same schedule, same compute.
The poly schedule continues a longer virtual one: round k runs the last 1/(k+1) of a
(k+1)-round schedule, so round 1 starts at 0.5**0.9 = 0.536 x base_lr.

Resumable: the state after every `checkpoint_every` steps (and on SIGTERM/SIGUSR1) goes
atomically to `work_dir/last.pt`, which is not a Snakemake output (Snakemake deletes outputs
before rerunning a job); a rerun with the same settings resumes from it bit-for-bit on CPU
(some CUDA kernels are not deterministic); dars/checkpoint.py.

Devices (dars.runtime; settings keys with defaults, so older settings dicts still work):
  amp            "auto" | "bf16" | "off": bf16 autocast; auto = bf16 on CUDA (if supported), off on
                 CPU. Losses are taken in float32 (at least).
  channels_last  "auto" | true | false: NHWC activations and weights; auto = on for CUDA.
  workers        "auto" (also null/missing) | int: DataLoader processes (resolve_workers).
  compile        true | false (default): torch.compile the network (DDP-wrapped under torchrun).
                 Compilation takes minutes, worth it only for long GPU runs. Checkpoints hold the
                 plain module's weights and the resume fingerprint leaves it out, so a run may
                 resume with it switched either way.
On CPU with amp and channels_last off, the computation is exactly the pre-option one.
Under `torchrun --standalone --nproc_per_node N -m dars train ...` each rank trains on a
contiguous 1/N slice of every global batch (`batch_size` stays global) with SyncBatchNorm and
DDP; losses are normalised by the global count of labeled pixels, so an update equals the
single-process one up to float reduction order. Rank 0 alone writes checkpoints and logs; a
signal to any rank stops all ranks after the same step (dars/distributed.py)."""
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, default_collate

from . import distributed as dd
from . import runtime
from .checkpoint import fingerprint, read_checkpoint, resume, save_training
from .classes import IGNORE
from .data.dataset import SegmentationPairs, list_pairs, pseudo_pairs
from .data.lists import read_list
from .data.transforms import augment_settings, normalize_batch
from .io import DarsError
from .log import Progress
from .models import build_model
from .settings import TrainSettings, json_argument


def train(settings, out_ckpt, root, labeled_list, unlabeled_list=None, pseudo_list=None,
          init_ckpt=None, work_dir=None, threads=None, log=print, labeled_root=None):
    """Train one round (`settings`: a TrainSettings or its dict) and write `out_ckpt`.
    `labeled_root`: what the labeled list is relative to when it is not `root` (domain
    adaptation: the source dataset; pseudo labels are of `root`'s images). Resumable state
    goes to `work_dir`/last.pt."""
    s = TrainSettings.of(settings)
    data = TrainData(root, labeled_list, labeled_root or root, unlabeled_list, pseudo_list, init_ckpt)
    data.check(s)
    # Runtime: device, ranks, threads, loader workers, precision.
    rt = runtime.for_training(s, threads, log)
    torch.manual_seed(s.seed * 1000 + s.round)
    # Model and optimizer, from the backbone file and/or the teacher.
    model, optimizer, backbone_init = model_and_optimizer(s, rt, data.init_ckpt)
    # Streams: the datasets of each step's batches; the run resumes from work_dir/last.pt when it can.
    streams, steps_per_epoch = make_streams(s, data)
    run = Run(s, rt, model, optimizer, backbone_init, steps_per_epoch,
              total_steps=s.steps or steps_per_epoch * s.epochs, fingerprint=fingerprint(s, data),
              last=Path(work_dir) / "last.pt" if work_dir else None)
    resume(run)
    stop = StopRequest()
    loader = make_loader(streams, run)
    net = DistributedDataParallel(model, device_ids=[rt.device] if rt.device.type == "cuda" else None,
                                  forward_sync_buffers=False) if rt.ranks.active else model  # SyncBN syncs them
    if s.compile:
        net = torch.compile(net)
    rt.log(f"device {rt.device}, world {rt.ranks.world}, amp {rt.amp_dtype or 'off'}, channels_last "
           f"{rt.channels_last}, compile {bool(s.compile)}, loader workers {rt.workers}, "
           f"threads {torch.get_num_threads()}")
    # The loop, then the output.
    model.train()
    run_steps(run, net, loader, stop)
    save_training(out_ckpt, run, final=True)
    if rt.ranks.main and run.last and run.last.is_file():
        run.last.unlink()  # the output now holds the same state
    dd.barrier(rt.ranks)
    dd.teardown(rt.ranks)


@dataclass(frozen=True)
class TrainData:
    """The files a run trains on."""
    root: str
    labeled_list: str
    labeled_root: str
    unlabeled_list: str | None
    pseudo_list: str | None
    init_ckpt: str | None    # the teacher (rounds >= 1)

    def check(self, s):
        if s.mode not in ("pretrain", "pseudo", "supervised"):
            raise DarsError(f"training mode {s.mode!r} unknown")
        if s.mode == "pseudo" and not self.pseudo_list:
            raise DarsError("a pseudo-label round needs a pseudo-label list (--pseudo)")
        if s.round > 0 and not self.init_ckpt:
            raise DarsError(f"round {s.round} needs the teacher checkpoint (--init)")


# Model and optimizer.

def model_and_optimizer(s, rt, init_ckpt):
    """The network on its device (SyncBatchNorm under torchrun) and its SGD optimizer, started
    from the backbone file (round 0, or a round that reinitialises) and the teacher's weights
    AND optimizer state (rounds >= 1); plus the backbone file's load report
    (models/backbone_init.py), which a student inherits from its teacher."""
    model = build_model(s.model, s.num_classes).to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if rt.ranks.active:
        model = dd.convert_sync_batchnorm(model, rt.device)
        if not rt.ranks.main:  # its own dropout masks; the weights come from rank 0 (DDP broadcasts them)
            torch.manual_seed(int(np.random.SeedSequence([s.seed, s.round, rt.ranks.rank]).generate_state(1)[0]))
    optimizer = torch.optim.SGD(
        [{"params": model.backbone_parameters(), "lr_mult": 1.0},
         {"params": model.head_parameters(), "lr_mult": s.head_lr_mult}],
        lr=s.base_lr, momentum=s.momentum, weight_decay=s.weight_decay)
    backbone_init = None
    if s.backbone_weights and (s.round == 0 or s.reinit):
        from .models.pspnet import load_backbone
        backbone_init = load_backbone(model, s.backbone_weights, log=rt.log)
    if init_ckpt and not s.reinit:
        teacher = read_checkpoint(init_ckpt)
        model.load_state_dict(teacher["model"])
        optimizer.load_state_dict(teacher["optimizer"])
        backbone_init = teacher.get("backbone_init")
    return model, optimizer, backbone_init


# Streams: the datasets of a step's batches, and one loader over the whole run.

def make_streams(s, data):
    """[labeled] in round 0; [labeled, pseudo-labeled] in a pseudo round; [labeled, labeled]
    for the supervised control. Returns them and the steps of one epoch: a pass over the
    labeled list in round 0 (`steps`, round 0's pretrain_steps, may fix the length whatever the
    labeled set's size), else over the pseudo-labeled (unlabeled) set."""
    aug, scale_base = augment_settings(s.to_dict())
    pairs = list_pairs(data.labeled_root, read_list(data.labeled_list, data.labeled_root))
    streams = [SegmentationPairs(pairs, scale_base, aug, s.seed)]
    if s.mode == "pseudo":
        streams.append(SegmentationPairs(pseudo_pairs(data.root, data.pseudo_list), scale_base, aug, s.seed + 1))
        epoch_len = len(streams[1])
    elif s.mode == "supervised":
        streams.append(SegmentationPairs(pairs, scale_base, aug, s.seed + 1))
        epoch_len = len(read_list(data.unlabeled_list))
    else:
        epoch_len = len(streams[0])
    return streams, max(1, epoch_len // s.batch_size)


def epoch_order(n, seed, round_, epoch, length):
    """Indices for one epoch: fresh permutations of range(n), concatenated up to `length`."""
    rng = np.random.default_rng([seed, round_, epoch])
    reps = math.ceil(length / n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:length]


class StepItems(Dataset):
    """Items (stream, epoch, index) over the datasets of a step's batches. The epoch travels with
    the item, so the dataset copies of persistent workers never need set_epoch; augmentation
    depends on (seed, epoch, index) only, so any worker count yields the same tensors."""

    def __init__(self, streams):
        self.streams = streams

    def __len__(self):
        return sum(len(d) for d in self.streams)

    def __getitem__(self, item):
        k, epoch, index = item
        self.streams[k].set_epoch(epoch)
        return k, self.streams[k][index]


def collate_streams(items):
    """One step's items -> one [images, labels] batch per stream."""
    return [default_collate([x for k, x in items if k == s]) for s in range(max(k for k, _ in items) + 1)]


class StepBatches:
    """Batch sampler over steps start..total-1 of the whole run (one DataLoader, so persistent
    workers live across epochs). Step t is batch t % steps_per_epoch of epoch t // steps_per_epoch
    of each stream's epoch_order; this rank takes its contiguous 1/world slice of it, so the
    global sample order does not depend on the world size."""

    def __init__(self, sizes, order_seeds, round_, steps_per_epoch, batch_size, start, total, rank=0, world=1):
        self.sizes, self.order_seeds, self.round_ = sizes, order_seeds, round_
        self.spe, self.bs, self.start, self.total = steps_per_epoch, batch_size, start, total
        self.rank, self.per_rank = rank, batch_size // world

    def __len__(self):
        return max(0, self.total - self.start)

    def __iter__(self):
        orders, cached = None, None
        for step in range(self.start, self.total):
            epoch, i = divmod(step, self.spe)
            if epoch != cached:
                orders = [epoch_order(n, s, self.round_, epoch, self.spe * self.bs)
                          for n, s in zip(self.sizes, self.order_seeds)]
                cached = epoch
            lo = i * self.bs + self.rank * self.per_rank
            yield [(k, epoch, int(j)) for k, order in enumerate(orders) for j in order[lo:lo + self.per_rank]]


def quiet_worker(worker_id):
    # Slurm's --signal reaches every process of the job step. A loader worker killed by it
    # would crash the main process before it saves; the main process decides when to stop,
    # and its workers end with it (the DataLoader shuts them down; they exit if it dies).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def make_loader(streams, run):
    """One loader for the rest of the run (from the resumed step on)."""
    s, rt = run.settings, run.rt
    if rt.workers:
        # A worker is one core of loading (torch already runs it single-threaded); OpenCV's own
        # pool would oversubscribe. Set here, not in the worker: cv2.setNumThreads in a forked
        # child deadlocks on the pool it inherited. This process does no image work meanwhile.
        cv2.setNumThreads(1)
    sampler = StepBatches([len(d) for d in streams], [s.seed, s.seed + 1][:len(streams)], s.round,
                          run.steps_per_epoch, s.batch_size, run.step, run.total_steps, rt.ranks.rank, rt.ranks.world)
    # Its own generator: a DataLoader otherwise draws its base seed from the global RNG, which
    # would shift the dropout masks of a resumed run.
    return DataLoader(StepItems(streams), batch_sampler=sampler, collate_fn=collate_streams,
                      num_workers=rt.workers, pin_memory=rt.device.type == "cuda", persistent_workers=rt.workers > 0,
                      worker_init_fn=quiet_worker if rt.workers else None,
                      generator=torch.Generator().manual_seed(s.seed))


# The loop.

def new_sums():
    return {"loss_labeled": 0.0, "loss_pseudo": 0.0, "n": 0}


@dataclass
class Run:
    """A training run: what its steps update, and what its checkpoints hold (dars.checkpoint)."""
    settings: TrainSettings
    rt: runtime.TrainRuntime
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    backbone_init: dict | None
    steps_per_epoch: int
    total_steps: int
    fingerprint: dict
    last: Path | None              # work_dir/last.pt: the resume state
    step: int = 0
    history: list = field(default_factory=list)  # one entry per epoch
    sums: dict = field(default_factory=new_sums)  # this epoch's loss sums, kept in checkpoints until its end

    def count(self, means):
        self.sums["loss_labeled"] += means[0]
        if len(means) > 1:
            self.sums["loss_pseudo"] += means[1]
        self.sums["n"] += 1
        self.step += 1

    def close_epoch(self, lr, two_streams):
        """The epoch's running means into the history; new sums."""
        sums, n = self.sums, max(self.sums["n"], 1)
        self.history.append({"epoch": self.step // self.steps_per_epoch, "iteration": self.step, "lr": lr,
                             "loss_labeled": sums["loss_labeled"] / n,
                             "loss_pseudo": sums["loss_pseudo"] / n if two_streams else None})
        self.sums = new_sums()


def poly_lr(base_lr, round_, step, total_steps, power):
    progress = (round_ + step / total_steps) / (round_ + 1)
    return base_lr * (1 - progress) ** power


def run_steps(run, net, loader, stop):
    """Each step: the poly learning rate; one labeled batch and, after round 0, a pseudo-labeled
    (or, in the control, a second labeled) batch, their losses summed; one SGD step. The state
    goes to work_dir/last.pt every `checkpoint_every` steps (unset: at epoch ends) and on a signal."""
    s, rt, log = run.settings, run.rt, run.rt.log
    t0 = time.time()
    progress = Progress("train", run.total_steps, unit="steps", log=log, start=run.step)
    for batches in loader:
        batches = [device_batch(x, y, rt.device, rt.image_format) for x, y in batches]
        lr = poly_lr(s.base_lr, s.round, run.step, run.total_steps, s.poly_power)
        for group in run.optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        with rt.autocast():
            if rt.ranks.active:  # the same sum, normalised over the global batch
                loss, means, peer_stop = global_mean_loss(net, batches, s.aux_weight, stop.signal, rt.device, rt.ranks)
                finite = math.isfinite(sum(means))
            else:
                # The labeled batch's loss, then (rounds >= 1) the pseudo-labeled batch's or the
                # control's second labeled batch's, summed with weight 1.
                losses = [segmentation_loss(net, x, y, s.aux_weight) for x, y in batches]
                loss = losses[0] if len(losses) == 1 else losses[0] + losses[1]
                means, peer_stop = [t.item() for t in losses], False
                finite = bool(torch.isfinite(loss))
        if not finite:
            value = sum(means) if rt.ranks.active else float(loss.detach())
            raise DarsError(f"loss became {value} at step {run.step}; lower train.base_lr")
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.count(means)
        progress.update(detail=f"loss {sum(means):.4f}, lr {lr:.4g}")
        stopping = stop.agreed(peer_stop, rt.ranks)
        epoch_end = run.step % run.steps_per_epoch == 0
        if epoch_end:
            run.close_epoch(lr, two_streams=len(means) > 1)
            log(json.dumps(run.history[-1]) + f"  ({time.time() - t0:.0f}s)")
        # Not at every epoch end: round 0's epoch over 10 labeled images is 2 steps, and a save
        # per epoch cost a quarter of its time. Resume is exact from any step.
        due = run.step % s.checkpoint_every == 0 if s.checkpoint_every else epoch_end
        if run.last and (stopping or due):
            save_training(run.last, run)
        if stopping:
            log(f"signal {stopping}: saved {run.last} at step {run.step}, exiting so a rerun resumes")
            dd.barrier(rt.ranks)  # nobody exits (and so makes torchrun kill the rest) before the save
            dd.teardown(rt.ranks)
            raise SystemExit(128 + stopping)


class StopRequest:
    """SIGTERM or SIGUSR1 (Slurm, before a time limit or on preemption): save, then exit after
    this step so that a rerun resumes."""

    def __init__(self):
        self.signal = None
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self.request)

    def request(self, signum, frame):
        self.signal = signum

    def agreed(self, peer_stop, ranks):
        """The signal to stop on after this step, or None."""
        if ranks.active:  # only the all-reduced flag: every rank must stop (and save) at the same step
            return (self.signal or signal.SIGTERM) if peer_stop else None
        return self.signal


def device_batch(images, labels, device, memory_format=torch.contiguous_format):
    """A loader batch (uint8 N x H x W x 3 images, uint8 labels) -> normalised float32 images in
    `memory_format` and int64 labels, on `device` (copies from pinned memory overlap compute)."""
    non_blocking = device.type == "cuda"
    x = normalize_batch(images.to(device, non_blocking=non_blocking)).contiguous(memory_format=memory_format)
    return x, labels.to(device, non_blocking=non_blocking).long()


def loss_precision(logits):
    """Autocast's bf16/fp16 logits -> float32 for the loss; float32 (or float64) as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def segmentation_loss(model, images, labels, aux_weight, reduction="mean"):
    outputs = model(images)
    loss = F.cross_entropy(loss_precision(outputs["out"]), labels, ignore_index=IGNORE, reduction=reduction)
    if "aux" in outputs:
        loss = loss + aux_weight * F.cross_entropy(loss_precision(outputs["aux"]), labels, ignore_index=IGNORE,
                                                   reduction=reduction)
    return loss


def global_mean_loss(net, batches, aux_weight, stop_signal, device, ranks):
    """The multi-rank loss of one step: per-pixel loss sums scaled by world / (labeled pixels of
    the global batch), so DDP's gradient mean over ranks is the gradient of the single-process
    mean loss, whatever share of ignored pixels each rank's slice has. One all-reduce carries
    the counts, the losses (for the log) and the stop flag. Returns (loss, global mean loss per
    batch, whether any rank was signalled)."""
    sums = []
    for x, y in batches:
        sums += [segmentation_loss(net, x, y, aux_weight, "sum"), (y != IGNORE).sum()]
    g = dd.all_sum([t.detach() for t in sums] + [float(bool(stop_signal))], device, ranks)
    counts = g[1:-1:2]
    loss = sum(sums[2 * i] * (ranks.world / c if c else math.nan) for i, c in enumerate(counts))
    return loss, [g[2 * i] / c if c else math.nan for i, c in enumerate(counts)], g[-1] > 0


# `python -m dars train`

def add_arguments(a):
    """round 0 pretraining or a self-training round"""
    a.add_argument("--settings", type=json_argument, required=True, help="resolved settings (JSON)")
    a.add_argument("--root", required=True)
    a.add_argument("--labeled", required=True)
    a.add_argument("--labeled-root", help="root of the labeled list if not --root (domain adaptation: the source)")
    a.add_argument("--nproc", type=int, default=1,
                   help="GPUs of this job: > 1 relaunches under torchrun (DDP + SyncBatchNorm, one process per GPU)")
    a.add_argument("--unlabeled")
    a.add_argument("--pseudo", help="pseudo_labels.txt of this round")
    a.add_argument("--init", help="teacher checkpoint (rounds >= 1)")
    a.add_argument("--work-dir", help="resumable state lives here (not a Snakemake output)")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)


def main(args):
    train(args.settings, args.out, args.root, args.labeled, args.unlabeled, args.pseudo,
          args.init, args.work_dir, args.threads, log=logging.getLogger(__name__).info,
          labeled_root=args.labeled_root)


COMMANDS = {"train": (add_arguments, main)}
