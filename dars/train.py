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
(some CUDA kernels are not deterministic).

Devices (settings keys read with defaults, so older settings dicts still work):
  amp            "auto" | "bf16" | "off": bf16 autocast; auto = bf16 on CUDA (if supported), off on
                 CPU. Losses are taken in float32 (at least).
  channels_last  "auto" | true | false: NHWC activations and weights; auto = on for CUDA.
  workers        "auto" (also null/missing) | int: DataLoader processes (dd.resolve_workers).
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
import contextlib
import hashlib
import json
import math
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, default_collate

from . import distributed as dd
from .classes import IGNORE
from .data.cityscapes import read_list
from .data.dataset import SegmentationPairs, list_pairs, pseudo_pairs
from .data.transforms import augment_settings, normalize_batch
from .infer import pick_device
from .io import DarsError, atomic_path, read_checkpoint
from .manifest import file_sha256, list_digest
from .models import build_model
from .precision import resolve_amp, resolve_channels_last


def poly_lr(base_lr, round_, step, total_steps, power):
    progress = (round_ + step / total_steps) / (round_ + 1)
    return base_lr * (1 - progress) ** power


def epoch_order(n, seed, round_, epoch, length):
    """Indices for one epoch: fresh permutations of range(n), concatenated up to `length`."""
    rng = np.random.default_rng([seed, round_, epoch])
    reps = math.ceil(length / n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:length]


RUNTIME_ONLY = ("compile",)  # settings that change how, not what, a run computes


def fingerprint(settings, init_ckpt, labeled_list=None, labeled_root=None, pseudo_list=None, unlabeled_list=None):
    """What a resumable checkpoint must match, part by part, so that a mismatch can say what
    changed: the settings (less RUNTIME_ONLY), the teacher's bytes, and the data the run trains
    on: the labeled list and its labels, the pseudo-label list and its labels (a new alpha
    makes new labels under the same list), the unlabeled list (the control's epoch length).
    Labels are digested from the size + sha256 records their stage wrote (dars.manifest)."""
    what = {k: v for k, v in settings.items() if k not in RUNTIME_ONLY}
    parts = {"settings": hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()}
    if init_ckpt:
        parts["teacher"] = file_sha256(init_ckpt)
    if labeled_list:
        parts["labeled list"] = list_digest(labeled_list, labeled_root)
    if pseudo_list:
        parts["pseudo labels"] = list_digest(pseudo_list, Path(pseudo_list).parent)
    if unlabeled_list:
        parts["unlabeled list"] = list_digest(unlabeled_list)
    return parts


def fingerprint_changes(saved, current):
    """Words for the resume log: which parts of a saved fingerprint differ from the current one."""
    if not isinstance(saved, dict):  # a single digest, from before fingerprints had parts
        return "it predates per-part fingerprints (settings, teacher, data)"
    changed = [k for k in dict.fromkeys([*current, *saved]) if saved.get(k) != current.get(k)]
    return f"its {', '.join(changed)} changed since it was saved"


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


def save_checkpoint(path, payload):
    """torch.save, atomically and byte-reproducibly: identical payloads give identical files."""
    # Through a file object: given a path, torch names the archive's inner folder after the
    # (random) temporary file, so identical checkpoints would differ in bytes and sha256.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


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


def loss_precision(logits):
    """Autocast's bf16/fp16 logits -> float32 for the loss; float32 (or float64) as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def device_batch(images, labels, device, memory_format=torch.contiguous_format):
    """A loader batch (uint8 N x H x W x 3 images, uint8 labels) -> normalised float32 images in
    `memory_format` and int64 labels, on `device` (copies from pinned memory overlap compute)."""
    non_blocking = device.type == "cuda"
    x = normalize_batch(images.to(device, non_blocking=non_blocking)).contiguous(memory_format=memory_format)
    return x, labels.to(device, non_blocking=non_blocking).long()


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


def train(settings, out_ckpt, root, labeled_list, unlabeled_list=None, pseudo_list=None,
          init_ckpt=None, work_dir=None, threads=None, log=print, labeled_root=None):
    """`labeled_root`: what the labeled list is relative to when it is not `root` (domain
    adaptation: the source dataset; pseudo labels are of `root`'s images)."""
    s = settings
    round_, mode, seed = s["round"], s["mode"], s["seed"]
    if mode not in ("pretrain", "pseudo", "supervised"):
        raise DarsError(f"training mode {mode!r} unknown")
    if mode == "pseudo" and not pseudo_list:
        raise DarsError("a pseudo-label round needs a pseudo-label list (--pseudo)")
    if round_ > 0 and not init_ckpt:
        raise DarsError(f"round {round_} needs the teacher checkpoint (--init)")
    bs = s["batch_size"]
    ranks = dd.from_env()
    if ranks.active:
        if bs % ranks.world:
            raise DarsError(f"batch_size {bs} is the global batch and must divide evenly over the "
                            f"{ranks.world} ranks (train.batch_size or --nproc_per_node)")
        device = dd.setup(ranks)
        threads = max(1, threads // ranks.local_world) if threads else threads  # the job's threads, shared
        if not ranks.main:
            log = lambda message: None  # noqa: E731 (rank 0 speaks for all)
    else:
        device = pick_device()
    workers = dd.resolve_workers(s.get("workers", "auto"), threads, device)
    amp_dtype = resolve_amp(s.get("amp", "auto"), device)
    channels_last = resolve_channels_last(s.get("channels_last", "auto"), device)
    if threads:
        # CPU: every thread computes (a loader worker's results do not depend on it). CUDA: the
        # main process only launches kernels; the other threads belong to the loader workers.
        torch.set_num_threads(threads if device.type == "cpu" else max(1, threads - workers))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one crop size all run: autotune each conv once
    torch.manual_seed(seed * 1000 + round_)

    model = build_model(s["model"], s["num_classes"]).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ranks.active:
        model = dd.convert_sync_batchnorm(model, device)
        if not ranks.main:  # its own dropout masks; the weights come from rank 0 (DDP broadcasts them)
            torch.manual_seed(int(np.random.SeedSequence([seed, round_, ranks.rank]).generate_state(1)[0]))
    optimizer = torch.optim.SGD(
        [{"params": model.backbone_parameters(), "lr_mult": 1.0},
         {"params": model.head_parameters(), "lr_mult": s["head_lr_mult"]}],
        lr=s["base_lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
    backbone_init = None  # the load report of the chain's backbone file (models/backbone_init.py)
    if s.get("backbone_weights") and (round_ == 0 or s.get("reinit", False)):
        from .models.pspnet import load_backbone
        backbone_init = load_backbone(model, s["backbone_weights"], log=log)
    if init_ckpt and not s.get("reinit", False):
        teacher = read_checkpoint(init_ckpt)
        model.load_state_dict(teacher["model"])
        optimizer.load_state_dict(teacher["optimizer"])
        backbone_init = teacher.get("backbone_init")  # a student inherits its teacher's initialisation

    aug, scale_base = augment_settings(s)
    labeled_root = labeled_root or root
    labeled = SegmentationPairs(list_pairs(labeled_root, read_list(labeled_list, labeled_root)), scale_base, aug, seed)
    streams = [labeled]  # streams[1]: the dataset of each step's second batch
    if mode == "pseudo":
        streams.append(SegmentationPairs(pseudo_pairs(root, pseudo_list), scale_base, aug, seed + 1))
        epoch_len = len(streams[1])
    elif mode == "supervised":
        streams.append(SegmentationPairs(labeled.pairs, scale_base, aug, seed + 1))
        epoch_len = len(read_list(unlabeled_list))
    else:
        epoch_len = len(labeled)
    steps_per_epoch = max(1, epoch_len // bs)
    # `steps` (round 0's pretrain_steps) fixes the length whatever the labeled set's size, so the
    # oracle and the ablations at split 1 train as long as a 1/8 baseline.
    total_steps = s.get("steps") or steps_per_epoch * s["epochs"]

    state = {"step": 0, "history": [], "sums": {"loss_labeled": 0.0, "loss_pseudo": 0.0, "n": 0}}
    fp = fingerprint(s, init_ckpt, labeled_list, labeled_root, pseudo_list, unlabeled_list)
    last = Path(work_dir) / "last.pt" if work_dir else None
    ck = None
    if last and last.is_file():
        try:
            ck = read_checkpoint(last)
        except DarsError as e:  # our own resume state, not a user's file: start afresh, say why
            log(f"{e}; starting afresh")
    if ck is not None:
        if ck.get("fingerprint") == fp:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            per_rank = ck.get("rng_ranks")  # written by multi-rank runs: one state per rank
            if per_rank and len(per_rank) == ranks.world:
                torch.set_rng_state(per_rank[ranks.rank])
            elif ranks.main:
                torch.set_rng_state(ck["rng"])
            cuda_rng = ck.get("cuda_rng")
            if device.type == "cuda" and cuda_rng and len(cuda_rng) == ranks.world:
                torch.cuda.set_rng_state(cuda_rng[ranks.rank], device)
            state = {"step": ck["iteration"], "history": ck["history"], "sums": ck["sums"]}
            log(f"resuming from {last} at step {state['step']}/{total_steps}")
        else:
            log(f"ignoring {last}: {fingerprint_changes(ck.get('fingerprint'), fp)}; starting afresh")

    def save(path, final=False):
        # Collective under torchrun: every rank calls it at the same step, rank 0 writes.
        rng_ranks = dd.gather(torch.get_rng_state(), ranks) if ranks.active else None
        cuda_rng = dd.gather(torch.cuda.get_rng_state(device), ranks) if device.type == "cuda" else None
        if not ranks.main:
            return
        payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "model_name": s["model"], "num_classes": s["num_classes"], "round": round_,
                   "epoch": state["step"] / steps_per_epoch, "epochs": s["epochs"],
                   "iteration": state["step"], "settings": s, "history": state["history"],
                   "rng": torch.get_rng_state(), "sums": state["sums"], "fingerprint": fp, "complete": final}
        if backbone_init:
            payload["backbone_init"] = backbone_init
        if rng_ranks:
            payload["rng_ranks"] = rng_ranks
        if cuda_rng:
            payload["cuda_rng"] = cuda_rng
        save_checkpoint(path, payload)

    stop = {"signal": None}
    def request_stop(signum, frame):
        stop["signal"] = signum
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, request_stop)

    if workers:
        # A worker is one core of loading (torch already runs it single-threaded); OpenCV's own
        # pool would oversubscribe. Set here, not in the worker: cv2.setNumThreads in a forked
        # child deadlocks on the pool it inherited. This process does no image work meanwhile.
        cv2.setNumThreads(1)
    # One loader for the rest of the run. Its own generator: a DataLoader otherwise draws its
    # base seed from the global RNG, which would shift the dropout masks of a resumed run.
    sampler = StepBatches([len(d) for d in streams], [seed, seed + 1][:len(streams)], round_, steps_per_epoch, bs,
                          state["step"], total_steps, ranks.rank, ranks.world)
    loader = DataLoader(StepItems(streams), batch_sampler=sampler, collate_fn=collate_streams,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                        worker_init_fn=quiet_worker if workers else None,
                        generator=torch.Generator().manual_seed(seed))
    net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                  forward_sync_buffers=False) if ranks.active else model  # SyncBN syncs them
    if s.get("compile"):
        net = torch.compile(net)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    image_format = torch.channels_last if channels_last else torch.contiguous_format
    log(f"device {device}, world {ranks.world}, amp {amp_dtype or 'off'}, channels_last {channels_last}, "
        f"compile {bool(s.get('compile'))}, loader workers {workers}, threads {torch.get_num_threads()}")

    model.train()
    t0 = time.time()
    for batches in loader:
        batches = [device_batch(x, y, device, image_format) for x, y in batches]
        lr = poly_lr(s["base_lr"], round_, state["step"], total_steps, s["poly_power"])
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        with autocast():
            if ranks.active:
                loss, means, peer_stop = global_mean_loss(net, batches, s["aux_weight"], stop["signal"], device, ranks)
                finite = math.isfinite(sum(means))
            else:
                losses = [segmentation_loss(net, x, y, s["aux_weight"]) for x, y in batches]
                loss = losses[0] if len(losses) == 1 else losses[0] + losses[1]
                means, peer_stop = [t.item() for t in losses], False
                finite = bool(torch.isfinite(loss))
        if not finite:
            value = sum(means) if ranks.active else float(loss.detach())
            raise DarsError(f"loss became {value} at step {state['step']}; lower train.base_lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["sums"]["loss_labeled"] += means[0]
        if len(means) > 1:
            state["sums"]["loss_pseudo"] += means[1]
        state["sums"]["n"] += 1
        state["step"] += 1
        if ranks.active:  # only the all-reduced flag: every rank must stop (and save) at the same step
            stopping = (stop["signal"] or signal.SIGTERM) if peer_stop else None
        else:
            stopping = stop["signal"]
        epoch_end = state["step"] % steps_per_epoch == 0
        if epoch_end:  # running means of this epoch, kept in checkpoints until then
            sums, n = state["sums"], max(state["sums"]["n"], 1)
            state["history"].append({"epoch": state["step"] // steps_per_epoch, "iteration": state["step"], "lr": lr,
                                     "loss_labeled": sums["loss_labeled"] / n,
                                     "loss_pseudo": sums["loss_pseudo"] / n if len(streams) > 1 else None})
            state["sums"] = {"loss_labeled": 0.0, "loss_pseudo": 0.0, "n": 0}
        if stopping or epoch_end:
            if last:
                save(last)
            if epoch_end:
                log(json.dumps(state["history"][-1]) + f"  ({time.time() - t0:.0f}s)")
            if stopping:
                log(f"signal {stopping}: saved {last} at step {state['step']}, exiting so a rerun resumes")
                dd.barrier(ranks)  # nobody exits (and so makes torchrun kill the rest) before the save
                dd.teardown(ranks)
                raise SystemExit(128 + stopping)
        elif last and state["step"] % s["checkpoint_every"] == 0:
            save(last)
    save(out_ckpt, final=True)
    if ranks.main and last and last.is_file():
        last.unlink()  # the output now holds the same state
    dd.barrier(ranks)
    dd.teardown(ranks)
