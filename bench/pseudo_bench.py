"""Pseudo-labeling throughput and peak memory vs number of images: ours (histogram scatter /
gather / scatter, one process per shard, as the workflow runs it) beside the naive
list-and-sort algorithm (bench/naive_pseudo.py).

    python bench/pseudo_bench.py --height 512 --width 1024 --images 50 200 800 --naive-max 200

Teacher outputs are synthetic but realistic in the way that matters: blocky long-tailed
class maps and float16 confidences with heavy ties at 1.0. Prints one row per run."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dars.classes import CITYSCAPES_PIXEL_SHARE, NUM_CLASSES  # noqa: E402
from dars.shards import ShardWriter  # noqa: E402


def fake_teacher(rng, h, w):
    shares = CITYSCAPES_PIXEL_SHARE / CITYSCAPES_PIXEL_SHARE.sum()
    blocks = rng.choice(NUM_CLASSES, size=(h // 32 + 1, w // 32 + 1), p=shares)
    pred = np.kron(blocks, np.ones((32, 32), np.uint8))[:h, :w].astype(np.uint8)
    conf = (1 - rng.beta(0.3, 3.0, size=(h, w)) * 0.9).astype(np.float16)  # ~1/3 tied at 1.0
    return pred, conf


def make_shards(root, n, shards, h, w):
    bounds = np.linspace(0, n, shards + 1).round().astype(int)
    for k in range(shards):
        with ShardWriter(root / f"shard{k}", NUM_CLASSES) as wr:
            for i in range(bounds[k], bounds[k + 1]):
                pred, conf = fake_teacher(np.random.default_rng(i), h, w)
                wr.add(f"img{i:05d}", pred, conf)


def run_parallel(cmds):
    """Run commands concurrently; return the peak RSS (MiB) of the largest."""
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    peak = 0
    for p in procs:
        _, _, usage = os.wait4(p.pid, 0)
        peak = max(peak, usage.ru_maxrss / 1024)
        p.returncode = 0
    return peak


def ours(root, shards, alpha):
    py = [sys.executable, "-m", "dars"]
    t = time.perf_counter()
    peak = run_parallel([py + ["pseudo-stats", "--shard", str(root / f"shard{k}"), "--out", str(root / f"h{k}.npy")]
                         for k in range(shards)])
    hists = [str(root / f"h{k}.npy") for k in range(shards)]
    peak = max(peak, run_parallel([py + ["pseudo-thresholds", "--hists", *hists, "--labeler", "dars",
                                         "--alpha", str(alpha), "--prior", str(root / "prior.json"),
                                         "--out", str(root / "th.json")]]))
    peak = max(peak, run_parallel([py + ["pseudo-label", "--shard", str(root / f"shard{k}"), "--thresholds",
                                         str(root / "th.json"), "--seed", "0", "--round", "1",
                                         "--out", str(root / f"ours{k}")]
                                   for k in range(shards)]))
    return time.perf_counter() - t, peak


def naive(root, shards, alpha):
    t = time.perf_counter()
    shard_dirs = [str(root / f"shard{k}") for k in range(shards)]
    peak = run_parallel([[sys.executable, str(REPO / "bench/naive_pseudo.py"), *shard_dirs,
                          "--prior", str(root / "prior.json"), "--alpha", str(alpha), "--out", str(root / "naive")]])
    return time.perf_counter() - t, peak


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--images", type=int, nargs="+", default=[50, 200, 800])
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--naive-max", type=int, default=200, help="largest image count to run the naive version on")
    p.add_argument("--tmp", default=None, help="scratch directory (needs ~3 bytes per pixel)")
    a = p.parse_args()
    print("| impl | images | size | Mpx | wall s | Mpx/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for n in a.images:
        root = Path(tempfile.mkdtemp(dir=a.tmp, prefix="pseudo_bench_"))
        try:
            make_shards(root, n, a.shards, a.height, a.width)
            shares = CITYSCAPES_PIXEL_SHARE / CITYSCAPES_PIXEL_SHARE.sum()
            (root / "prior.json").write_text(json.dumps({"shares": shares.tolist()}))
            mpx = n * a.height * a.width / 1e6
            runs = [("ours", ours)] + ([("naive", naive)] if n <= a.naive_max else [])
            for name, fn in runs:
                wall, peak = fn(root, a.shards, a.alpha)
                cells = [name, n, f"{a.height}x{a.width}", f"{mpx:.0f}", f"{wall:.1f}", f"{mpx / wall:.2f}",
                         f"{peak:.0f}"]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)
        finally:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
