"""The authors' pseudo-labeling algorithm written naively, for benchmarking only.

Every pixel's confidence goes into per-class Python lists, which are sorted to find the
thresholds (what the reference implementation does); labeling is a second pass. Run as
`python bench/naive_pseudo.py SHARD... --prior prior.json --alpha 0.5 --out DIR`."""
import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dars.shards import Shard  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("shards", nargs="+")
    p.add_argument("--prior", required=True)
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    shards = [Shard(s) for s in a.shards]
    C = shards[0].num_classes
    pi = json.loads(Path(a.prior).read_text())["shares"]
    lists = [[] for _ in range(C)]
    num_pixels = 0
    for shard in shards:
        for _, pred, conf in shard:
            num_pixels += pred.size
            for c in range(C):
                lists[c].extend(conf[pred == c].tolist())
    tau, rho = [math.inf] * C, [0.0] * C
    for c in range(C):
        values = sorted(lists[c], reverse=True)
        n = math.floor(a.alpha * pi[c] * num_pixels)
        if not values or n == 0:
            continue
        tau[c] = values[min(n, len(values)) - 1]
        r = sum(1 for v in values if v >= tau[c])
        rho[c] = min(1.0, n / r)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for shard in shards:
        for meta, pred, conf in shard:
            lab = np.full(pred.shape, 255, np.uint8)
            for c in range(C):
                ys, xs = np.nonzero((pred == c) & (conf >= tau[c]))
                keep = rng.permutation(len(ys))[: len(ys) - math.floor(len(ys) - len(ys) * rho[c])]
                lab[ys[keep], xs[keep]] = c
            cv2.imwrite(str(out / f"{meta['id']}.png"), lab)
    (out / "thresholds.json").write_text(json.dumps({"tau": tau, "rho": rho}))


if __name__ == "__main__":
    main()
