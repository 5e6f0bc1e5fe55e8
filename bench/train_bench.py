"""Training throughput (images/s) of a segmentation model: (a) the model alone on random tensors
(forward, float32 loss, backward, SGD step), (b) the same steps fed by the trainer's data loader
over a Cityscapes-layout dataset on disk, per loader worker count.

    PYTHONPATH=. python bench/train_bench.py --model pspnet50 --crop 713 --batch 8 --amp bf16 --channels-last
    PYTHONPATH=. python bench/train_bench.py --model pspnet50 --amp off --workers 4 8 15 --data /data/cityscapes
    PYTHONPATH=. python bench/train_bench.py --model lite32 --crop 96 --steps 3 --warmup 1 --images 4   # CPU smoke

Uses CUDA when available (cudnn autotuning on, as in the trainer) and synchronises the device
before reading the clock. Without --data the loader part generates street scenes (see
bench/loader_bench.py). Prints one JSON line per measurement, then a table."""
import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import cv2  # noqa: E402
import torch  # noqa: E402
from loader_bench import PREFETCH, add_data_args, dataset, make_loader, table  # noqa: E402

from dars.models import MODELS, build_model  # noqa: E402
from dars.train import device_batch, segmentation_loss  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    """The trainer's step (dars.train.train, single process) without the data."""

    def __init__(self, args, device):
        self.device, self.args = device, args
        torch.manual_seed(0)
        self.model = build_model(args.model, 19).to(device)
        self.memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
        self.net = torch.compile(self.model) if args.compile else self.model  # as train.compile does
        amp = args.amp == "bf16"
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def step(self, x, y):
        x, y = device_batch(x, y, self.device, self.memory_format)
        with self.autocast():
            loss = segmentation_loss(self.net, x, y, 0.4)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss


def timed(trainer, batches, warmup, steps):
    """Seconds for `steps` steps after `warmup` untimed ones; batches yields (x, y)."""
    device = trainer.device
    for _ in range(warmup):
        trainer.step(*next(batches))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = trainer.step(*next(batches))
    sync(device)
    elapsed = time.perf_counter() - t0
    if not torch.isfinite(loss):
        raise SystemExit(f"loss became {float(loss)}")
    return elapsed


def row(args, device, source, elapsed, **extra):
    r = {"bench": "train", "source": source, "model": args.model, "crop": args.crop_hw, "batch": args.batch,
         "amp": args.amp, "channels_last": args.channels_last, "compile": args.compile, "device": str(device),
         "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
         "steps": args.steps, "images_per_s": round(args.batch * args.steps / elapsed, 2),
         "ms_per_step": round(1000 * elapsed / args.steps, 1)}
    if device.type == "cuda":
        r["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    r.update(extra)
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(p)
    p.add_argument("--model", default="pspnet50", choices=sorted(MODELS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--amp", choices=["bf16", "off"], help="default: bf16 on CUDA, off on CPU")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (compiles during the warm-up)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (cudnn autotuning, workers)")
    p.add_argument("--workers", type=int, nargs="*", default=[],
                   help="loader worker counts for (b); none given: (a) only")
    p.add_argument("--threads", type=int, help="torch.set_num_threads of the main process")
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.amp = args.amp or ("bf16" if device.type == "cuda" else "off")
    args.crop_hw = args.crop * 2 if len(args.crop) == 1 else args.crop
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = []

    def report(r):
        print(json.dumps(r), flush=True)
        rows.append(r)

    # (a) the model alone: one random batch in the loader's format, already on the device
    trainer = Trainer(args, device)
    x = torch.randint(0, 256, (args.batch, *args.crop_hw, 3), dtype=torch.uint8, device=device)
    y = torch.randint(0, 19, (args.batch, *args.crop_hw), dtype=torch.uint8, device=device)
    report(row(args, device, "random", timed(trainer, iter(lambda: (x, y), None), args.warmup, args.steps)))

    # (b) fed by the trainer's loader over images on disk
    if args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            ds = dataset(args, tmp)
            for w in args.workers:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                cv2_threads = cv2.getNumThreads()
                if w:
                    cv2.setNumThreads(1)  # as the trainer does before forking its workers
                # Untimed steps also drain what the workers prefetched during start-up.
                warmup = max(args.warmup, PREFETCH * w + 1)
                loader = make_loader(ds, args.batch, warmup + args.steps, w, device.type == "cuda")
                batches = (b[0] for b in loader)
                elapsed = timed(trainer, batches, warmup, args.steps)  # compiled once, if --compile
                cv2.setNumThreads(cv2_threads)
                del loader, batches
                report(row(args, device, "loader", elapsed, workers=w, warmup=warmup, images_in_set=len(ds)))
    print(table(rows, ["source", "workers", "amp", "channels_last", "compile", "images_per_s", "ms_per_step",
                       "peak_mem_gib"]))


if __name__ == "__main__":
    main()
