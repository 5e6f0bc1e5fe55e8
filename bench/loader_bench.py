"""Training data-loader throughput (images/s) per number of worker processes.

    PYTHONPATH=. python bench/loader_bench.py --workers 0 1 2 4 8            # generated 1024x2048 data
    PYTHONPATH=. python bench/loader_bench.py --data /data/cityscapes --workers 4 8 16

The loader is the trainer's own (dars.train: one DataLoader over the whole run, persistent
workers, SIGTERM-proof workers, pin_memory on CUDA) over dars.data.dataset.SegmentationPairs
with the paper's augmentation (random scale, rotation +-10 deg, blur, flip, crop; default
crop 713, scale [0.5, 2.0]). Without --data it generates Cityscapes-layout street scenes
(`python -m dars synthesize`'s generator; PNGs of the size and entropy of real ones) in a
temporary directory. Prints one JSON line per worker count, then a table."""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from dars.data.cityscapes import find_pairs  # noqa: E402
from dars.data.dataset import SegmentationPairs, list_pairs  # noqa: E402
from dars.train import StepBatches, StepItems, collate_streams, quiet_worker  # noqa: E402


def add_data_args(p):
    p.add_argument("--data", help="dataset root in Cityscapes layout (train split); default: generate one")
    p.add_argument("--images", type=int, default=16, help="images to generate without --data")
    p.add_argument("--size", type=int, nargs=2, default=[1024, 2048], metavar=("H", "W"),
                   help="size of generated images")
    p.add_argument("--keep", help="generate into this directory (reused if it exists) instead of a temporary one")
    p.add_argument("--crop", type=int, nargs="+", default=[713], help="crop size: S or H W")
    p.add_argument("--scale", type=float, nargs=2, default=[0.5, 2.0])


def dataset(args, tmp):
    """The training dataset: (image, label) pairs of --data, or of a generated tree under tmp."""
    root = Path(args.data) if args.data else Path(args.keep or Path(tmp) / "data")
    if not args.data and not (root / "leftImg8bit").is_dir():
        from dars.synthetic import generate
        t0 = time.time()
        generate(root, num_train=args.images, num_val=1, height=args.size[0], width=args.size[1])
        print(f"# generated {args.images} {args.size[0]}x{args.size[1]} pairs in {time.time() - t0:.0f}s at {root}",
              file=sys.stderr)
    crop = args.crop * 2 if len(args.crop) == 1 else args.crop
    aug = dict(crop=crop, scale_range=args.scale, rotate=10.0, blur=True, flip=True)
    return SegmentationPairs(list_pairs(root, find_pairs(root, "train")), None, aug, seed=0)


def make_loader(ds, batch, steps, workers, pin_memory):
    """The trainer's loader (dars.train.train) over `steps` batches of one stream."""
    steps_per_epoch = max(1, len(ds) // batch)
    sampler = StepBatches([len(ds)], [0], 0, steps_per_epoch, batch, 0, steps)
    return DataLoader(StepItems([ds]), batch_sampler=sampler, collate_fn=collate_streams, num_workers=workers,
                      pin_memory=pin_memory, persistent_workers=workers > 0,
                      worker_init_fn=quiet_worker if workers else None, generator=torch.Generator().manual_seed(0))


PREFETCH = 2  # DataLoader's default prefetch_factor: batches queued per worker


def steady_counts(workers, warmup, timed):
    """(untimed, timed) batch counts. The untimed ones cover worker start-up and the batches the
    workers prefetch meanwhile (an instantaneous consumer would get those for free); the timed
    ones are many per worker, so the workers' phase at the start of the clock matters little."""
    return max(warmup, PREFETCH * workers + 1), max(timed, 4 * workers)


def measure(ds, workers, batch, batches, warmup, pin_memory):
    warmup, batches = steady_counts(workers, warmup, batches)
    cv2_threads = cv2.getNumThreads()
    if workers:
        cv2.setNumThreads(1)  # as the trainer does before forking its workers
    try:
        it = iter(make_loader(ds, batch, warmup + batches, workers, pin_memory))
        t_start = time.perf_counter()
        for _ in range(warmup):  # worker start-up and the first prefetches
            next(it)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        elapsed = time.perf_counter() - t0
    finally:
        cv2.setNumThreads(cv2_threads)
    return {"bench": "loader", "workers": workers, "batch": batch, "batches": batches,
            "images_per_s": round(batch * batches / elapsed, 2), "s_per_batch": round(elapsed / batches, 4),
            "startup_s": round(t0 - t_start, 2), "crop": list(ds.augment_args["crop"]),
            "scale": list(ds.augment_args["scale_range"]), "images_in_set": len(ds), "cpus": os.cpu_count()}


def table(rows, cols):
    lines = [" | ".join(f"{c:>12}" for c in cols)]
    lines += [" | ".join(f"{str(r.get(c)):>12}" for c in cols) for r in rows]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(p)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=10, help="timed batches per worker count (at least 4 per worker)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed batches first (at least the prefetched ones: 2 per worker, plus 1)")
    args = p.parse_args(argv)
    pin = torch.cuda.is_available()
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than cores: on purpose
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ds = dataset(args, tmp)
        for w in args.workers:
            row = measure(ds, w, args.batch, args.batches, args.warmup, pin)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(table(rows, ["workers", "images_per_s", "s_per_batch", "startup_s"]))


if __name__ == "__main__":
    main()
