"""What each supplementary table of the `paper` target cost, from a finished run's benchmark files.

For each table, Snakemake's own plan of that table from scratch (`snakemake -n --forceall
results/paper/<table>.csv`) names every job it needs and that job's benchmark file; the job's
wall seconds (`s`) and CPU seconds (`cpu_time`) come from the file the run wrote. A job shared by
several tables (round 0, DARS round 1, ...) counts in each table's own total; the `added` column
counts each job once, in the first table (S1..S7 order) that needs it, so it sums to the target.

    cd <the run's directory> && python <repo>/bench/paper_costs.py            # Markdown table
    python bench/paper_costs.py --workdir /tmp/wt_paper --json costs.json

Wall seconds are per job; with --cores 2 two jobs ran at once, so the target's wall time is about
half the sum (the /usr/bin/time figure is the one to quote for the whole)."""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TABLES = ("s1", "s2", "s3", "s4", "s5", "s6", "s7")
TRAINING_RULES = ("pretrain", "train")


def planned_jobs(workdir, target):
    """[(rule, benchmark path)] of every job of `target` planned from scratch."""
    snakefile = Path(workdir) / "Snakefile"
    snakefile = snakefile if snakefile.exists() else REPO / "Snakefile"  # a bench/output_hashes.py --keep tree
    out = subprocess.run(["snakemake", "-n", "--forceall", "--snakefile", str(snakefile), target], cwd=workdir,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"snakemake -n {target} failed:\n{out.stderr[-2000:]}")
    jobs, rule = [], None
    for line in out.stdout.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        m = re.match(r"^\s+benchmark: (\S+)", line)
        if m and rule:
            jobs.append((rule, m.group(1)))
    return jobs


def job_cost(workdir, bench):
    path = Path(workdir) / bench
    if not path.exists():
        return None
    row = pd.read_csv(path, sep="\t").iloc[-1]
    return float(row["s"]), float(row["cpu_time"])


def costs(workdir):
    seen, rows = set(), []
    for t in TABLES:
        jobs = planned_jobs(workdir, f"results/paper/{t}.csv")
        total = [job_cost(workdir, b) for _, b in jobs]
        if any(c is None for c in total):
            missing = [b for (_, b), c in zip(jobs, total) if c is None]
            sys.exit(f"{t}: {len(missing)} job(s) have no benchmark file, e.g. {missing[0]}; has the run finished?")
        new = [(r, b) for r, b in jobs if b not in seen]
        seen.update(b for _, b in jobs)
        rows.append(dict(table=t.upper(), jobs=len(jobs),
                         trainings=sum(r in TRAINING_RULES for r, _ in jobs),
                         job_s=sum(c[0] for c in total), cpu_s=sum(c[1] for c in total),
                         added_jobs=len(new), added_trainings=sum(r in TRAINING_RULES for r, _ in new),
                         added_job_s=sum(job_cost(workdir, b)[0] for _, b in new)))
    return rows


def markdown(rows):
    lines = ["| table | jobs | trainings | job-seconds | CPU-seconds | added jobs | added trainings "
             "| added job-seconds |",
             "|:---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['table']} | {r['jobs']} | {r['trainings']} | {r['job_s']:.0f} | {r['cpu_s']:.0f} | "
                     f"{r['added_jobs']} | {r['added_trainings']} | {r['added_job_s']:.0f} |")
    lines.append(f"| all | | | | | {sum(r['added_jobs'] for r in rows)} | "
                 f"{sum(r['added_trainings'] for r in rows)} | {sum(r['added_job_s'] for r in rows):.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default=".", help="where the paper run ran (its benchmarks/)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    rows = costs(args.workdir)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
