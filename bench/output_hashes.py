"""The sha256 of every file the tiny-config pipeline writes: the check that a refactor changed no
output. Runs the default target, `evidence` and `paper` (every stage, table and figure) on the smoke
setting of the tests in a fresh work directory, then hashes each file under results/ (logs/ and
benchmarks/ hold times and are left out).

    python bench/output_hashes.py --out /tmp/before.json            # on the old commit
    python bench/output_hashes.py --out /tmp/after.json             # on the new one
    python bench/output_hashes.py --compare /tmp/before.json /tmp/after.json

--compare prints every file that differs, is missing or is new, and exits 1 if any does. About
10 minutes on 2 cores."""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_config():
    """The tests' smoke setting (tests/test_workflow.py tiny_config), with the evidence and paper
    datasets shrunk the way tests/test_evidence.py and tests/test_uda_paper.py shrink them."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(dataset="synthetic", split=4, rounds=2, seeds=[0, 1], num_shards=2,
                  compare_methods=["supervised", "st", "cbst", "dars"], later_rounds=None)
    config["datasets"]["synthetic"]["synthetic"] = {"num_train": 32, "num_val": 8, "height": 64, "width": 128,
                                                    "seed": 0}
    config["train"].update(crop=[48, 96], batch_size=4, pretrain_epochs=3, round_epochs=1)
    config["datasets"]["synthetic_evidence"]["synthetic"].update(num_train=16, num_val=6)
    config["datasets"]["synthetic_game"]["synthetic"].update(num_train=16)
    for name in ("synthetic_evidence", "synthetic_uda"):
        config["datasets"][name]["train"].update(pretrain_steps=8, round_epochs=2)
    config["evidence"]["seeds"] = [0, 1]
    config["paper"].update(seeds=[0, 1], figure_images=1)
    return config


def run(workdir, cores):
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), "all", "evidence", "paper"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def hashes(results):
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.rglob("*")) if p.is_file()}


def compare(a, b):
    before, after = (json.loads(Path(x).read_text()) for x in (a, b))
    differ = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    for k in differ:
        print(f"differs: {k}")
    for k in sorted(before.keys() - after.keys()):
        print(f"missing: {k}")
    for k in sorted(after.keys() - before.keys()):
        print(f"new:     {k}")
    same = len(before.keys() & after.keys()) - len(differ)
    print(f"{same} identical, {len(differ)} differ, {len(before.keys() - after.keys())} missing, "
          f"{len(after.keys() - before.keys())} new")
    return 1 if differ or before.keys() != after.keys() else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="where to write {file: sha256}")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", help="run in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if not args.out:
        parser.error("--out or --compare")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        run(workdir, args.cores)
        found = hashes(workdir / "results")
    Path(args.out).write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"{len(found)} files hashed into {args.out}")


if __name__ == "__main__":
    main()
