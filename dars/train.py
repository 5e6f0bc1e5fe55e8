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
before rerunning a job); a rerun with the same settings resumes from it bit-for-bit."""
import hashlib
import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .classes import IGNORE
from .data.cityscapes import read_list
from .data.dataset import SegmentationPairs, list_pairs, pseudo_pairs
from .infer import pick_device
from .io import DarsError, atomic_path
from .models import build_model


def poly_lr(base_lr, round_, step, total_steps, power):
    progress = (round_ + step / total_steps) / (round_ + 1)
    return base_lr * (1 - progress) ** power


def epoch_order(n, seed, round_, epoch, length):
    """Indices for one epoch: fresh permutations of range(n), concatenated up to `length`."""
    rng = np.random.default_rng([seed, round_, epoch])
    reps = math.ceil(length / n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:length]


def fingerprint(settings, init_ckpt):
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    if init_ckpt:
        h.update(Path(init_ckpt).read_bytes())
    return h.hexdigest()


def segmentation_loss(model, images, labels, aux_weight):
    outputs = model(images)
    loss = F.cross_entropy(outputs["out"], labels, ignore_index=IGNORE)
    if "aux" in outputs:
        loss = loss + aux_weight * F.cross_entropy(outputs["aux"], labels, ignore_index=IGNORE)
    return loss


def train(settings, out_ckpt, root, labeled_list, unlabeled_list=None, pseudo_list=None,
          init_ckpt=None, work_dir=None, threads=None, log=print):
    s = settings
    round_, mode, seed = s["round"], s["mode"], s["seed"]
    if mode not in ("pretrain", "pseudo", "supervised"):
        raise DarsError(f"training mode {mode!r} unknown")
    if mode == "pseudo" and not pseudo_list:
        raise DarsError("a pseudo-label round needs a pseudo-label list (--pseudo)")
    if round_ > 0 and not init_ckpt:
        raise DarsError(f"round {round_} needs the teacher checkpoint (--init)")
    if threads:
        torch.set_num_threads(threads)
    device = pick_device()
    torch.manual_seed(seed * 1000 + round_)

    model = build_model(s["model"], s["num_classes"]).to(device)
    optimizer = torch.optim.SGD(
        [{"params": model.backbone_parameters(), "lr_mult": 1.0},
         {"params": model.head_parameters(), "lr_mult": s["head_lr_mult"]}],
        lr=s["base_lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
    if s.get("backbone_weights") and (round_ == 0 or s.get("reinit", False)):
        from .models.pspnet import load_backbone
        not_loaded = load_backbone(model, s["backbone_weights"])
        log(f"backbone weights from {s['backbone_weights']}; not in that file: {len(not_loaded)} tensors "
            f"{not_loaded[:6]}{' ...' if len(not_loaded) > 6 else ''}")
    if init_ckpt and not s.get("reinit", False):
        teacher = torch.load(init_ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(teacher["model"])
        optimizer.load_state_dict(teacher["optimizer"])

    aug = dict(crop=s["crop"], scale_range=s["scale_range"], rotate=s["rotate"], blur=s["blur"], flip=s["flip"])
    labeled = SegmentationPairs(list_pairs(root, read_list(labeled_list, root)), s["resize"], aug, seed)
    second = None  # the dataset of each step's second batch
    if mode == "pseudo":
        second = SegmentationPairs(pseudo_pairs(root, pseudo_list), s["resize"], aug, seed + 1)
        epoch_len = len(second)
    elif mode == "supervised":
        second = SegmentationPairs(labeled.pairs, s["resize"], aug, seed + 1)
        epoch_len = len(read_list(unlabeled_list))
    else:
        epoch_len = len(labeled)
    bs = s["batch_size"]
    steps_per_epoch = max(1, epoch_len // bs)
    total_steps = steps_per_epoch * s["epochs"]

    state = {"step": 0, "history": [], "sums": {"loss_labeled": 0.0, "loss_pseudo": 0.0, "n": 0}}
    fp = fingerprint(s, init_ckpt)
    last = Path(work_dir) / "last.pt" if work_dir else None
    if last and last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        if ck.get("fingerprint") == fp:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            torch.set_rng_state(ck["rng"])
            state = {"step": ck["iteration"], "history": ck["history"], "sums": ck["sums"]}
            log(f"resuming from {last} at step {state['step']}/{total_steps}")
        else:
            log(f"ignoring {last}: it belongs to other settings or another teacher")

    def save(path, final=False):
        payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "model_name": s["model"], "num_classes": s["num_classes"], "round": round_,
                   "epoch": state["step"] / steps_per_epoch, "epochs": s["epochs"],
                   "iteration": state["step"], "settings": s, "history": state["history"],
                   "rng": torch.get_rng_state(), "sums": state["sums"], "fingerprint": fp, "complete": final}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    stop = {"signal": None}
    def request_stop(signum, frame):
        stop["signal"] = signum
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, request_stop)

    def loader(dataset, order, start):
        batches = [order[i * bs:(i + 1) * bs].tolist() for i in range(start, steps_per_epoch)]
        # Its own generator: a DataLoader otherwise draws from the global RNG, which would
        # make a resumed run's dropout differ from an uninterrupted one.
        return DataLoader(dataset, batch_sampler=batches, num_workers=s.get("workers", 0),
                          pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed))

    model.train()
    t0 = time.time()
    while state["step"] < total_steps:
        epoch, start = divmod(state["step"], steps_per_epoch)
        labeled.set_epoch(epoch)
        first_batches = loader(labeled, epoch_order(len(labeled), seed, round_, epoch, steps_per_epoch * bs), start)
        second_batches = [None] * (steps_per_epoch - start)
        if second is not None:
            second.set_epoch(epoch)
            second_batches = loader(second, epoch_order(len(second), seed + 1, round_, epoch, steps_per_epoch * bs), start)
        sums = state["sums"]  # running means of this epoch, kept in checkpoints
        for (x, y), batch2 in zip(first_batches, second_batches):
            lr = poly_lr(s["base_lr"], round_, state["step"], total_steps, s["poly_power"])
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_mult"]
            loss_labeled = segmentation_loss(model, x.to(device), y.to(device), s["aux_weight"])
            loss = loss_labeled
            if batch2 is not None:
                x2, y2 = batch2
                loss_pseudo = segmentation_loss(model, x2.to(device), y2.to(device), s["aux_weight"])
                loss = loss_labeled + loss_pseudo
                sums["loss_pseudo"] += loss_pseudo.item()
            if not torch.isfinite(loss):
                raise DarsError(f"loss became {float(loss)} at step {state['step']}; lower train.base_lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["loss_labeled"] += loss_labeled.item()
            sums["n"] += 1
            state["step"] += 1
            if stop["signal"] or state["step"] % steps_per_epoch == 0:
                break
            if last and state["step"] % s["checkpoint_every"] == 0:
                save(last)
        if not stop["signal"] or state["step"] % steps_per_epoch == 0:
            n = max(sums["n"], 1)
            entry = {"epoch": epoch + 1, "iteration": state["step"], "lr": lr, "loss_labeled": sums["loss_labeled"] / n,
                     "loss_pseudo": sums["loss_pseudo"] / n if second else None}
            state["history"].append(entry)
            state["sums"] = {"loss_labeled": 0.0, "loss_pseudo": 0.0, "n": 0}
        if last:
            save(last)
        if state["step"] % steps_per_epoch == 0:
            log(json.dumps(state["history"][-1]) + f"  ({time.time() - t0:.0f}s)")
        if stop["signal"]:
            log(f"signal {stop['signal']}: saved {last} at step {state['step']}, exiting so a rerun resumes")
            raise SystemExit(128 + stop["signal"])
    save(out_ckpt, final=True)
    if last and last.is_file():
        last.unlink()  # the output now holds the same state
