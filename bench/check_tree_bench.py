"""Wall time of the README's one-minute CPU check (`cityscapes_check`, round 0) on a tree of
full-resolution (1024x2048) Cityscapes-layout files: the 372 images of the authors' 1/8 list,
`--extra` more train images and `--val` val images, as the check reads them.

    python bench/check_tree_bench.py --work /tmp/check_bench --val 500 --cores 1 [--target miou.json]

The images are smooth class-coloured blocks with noise, compressed to about real Cityscapes
PNG sizes, so decoding costs what it costs on the real tree. Prints one JSON line: tree size,
snakemake wall time, and each job's seconds from its benchmark file."""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dars.classes import train_ids_to_label_ids  # noqa: E402
from dars.data.published import list_file  # noqa: E402
from dars.io import write_png  # noqa: E402


def write_pair(root, image_rel, label_rel, rng, size=(1024, 2048)):
    blocks = rng.integers(0, 19, size=(size[0] // 64, size[1] // 64)).astype(np.uint8)
    train_ids = np.kron(blocks, np.ones((64, 64), np.uint8))
    palette = rng.integers(0, 256, size=(19, 3), dtype=np.uint8)
    image = palette[train_ids] // 2 + rng.integers(0, 24, size=(*size, 3), dtype=np.uint8)
    write_png(root / image_rel, image, rgb=True)
    write_png(root / label_rel, train_ids)
    write_png(root / label_rel.replace("labelTrainIds", "labelIds"), train_ids_to_label_ids(train_ids))


def build_tree(root, extra, val, seed=0):
    rng = np.random.default_rng(seed)
    lines = Path(list_file("cityscapes", "dars", 8)[1]).read_text().split("\n")
    pairs = [line.split() for line in lines if line.strip()]
    for split, count in (("train", extra), ("val", val)):
        city = "zurich" if split == "train" else "lindau"
        pairs += [(f"leftImg8bit/{split}/{city}/{city}_{i:06d}_000019_leftImg8bit.png",
                   f"gtFine/{split}/{city}/{city}_{i:06d}_000019_gtFine_labelTrainIds.png") for i in range(count)]
    for image_rel, label_rel in pairs:
        if not (root / image_rel).exists():
            write_pair(root, image_rel, label_rel, rng)
    return len(pairs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="directory for the tree and the run (reused)")
    ap.add_argument("--extra", type=int, default=8)
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--target", choices=["model.pt", "miou.json"], default="model.pt",
                    help="round 0's model (the check), or its evaluation on every val image too")
    args = ap.parse_args()
    root = args.work / "cityscapes"
    files = build_tree(root, args.extra, args.val)
    run = args.work / "run"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    run.mkdir(parents=True)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["cityscapes_check"]["root"] = str(root)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    target = f"results/cityscapes_check/split8/seed0/round0/{args.target}"
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(run),
                    "--cores", str(args.cores), "-q", "--", target], check=True, env=env)
    wall = time.perf_counter() - start
    jobs = {}
    for tsv in sorted((run / "benchmarks").rglob("*.tsv")):
        with open(tsv) as f:
            seconds = float(next(csv.DictReader(f, delimiter="\t"))["s"])
        jobs[str(tsv.relative_to(run / "benchmarks"))] = round(seconds, 1)
    split = json.loads((run / "results/cityscapes_check/split8/seed0/split/split.json").read_text())
    print(json.dumps({"pairs": files, "val": args.val, "cores": args.cores, "wall_s": round(wall, 1), "jobs": jobs,
                      "target": args.target, "split_family": split["split_family"]}))


if __name__ == "__main__":
    main()
