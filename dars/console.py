"""What a user sees on the console when a job fails: each failed job's own last log lines.

Snakemake's console says only `CalledProcessError ... exit status 2` and the log path; the
stage's message (which file is wrong, which command fixes it) is in that log. The Snakefile's
`onerror` hands this module Snakemake's own log, which names every failed job's log."""
import re
import sys
from pathlib import Path

FAILED_LOG = re.compile(r"^\s*log: (.+) \(check log file\(s\) for error details\)\s*$", re.M)


def failed_job_logs(snakemake_logs):
    """The log files of the jobs that failed, in the order Snakemake reported them. `onerror`
    gives Snakemake's log as a path or a list of paths."""
    logs = [snakemake_logs] if isinstance(snakemake_logs, (str, Path)) else list(snakemake_logs or [])
    text = "\n".join(Path(f).read_text(errors="replace") for f in logs)
    paths = [p.strip() for group in FAILED_LOG.findall(text) for p in group.split(", ")]
    return list(dict.fromkeys(paths))


def show_failed_logs(snakemake_logs, lines=15, out=None):
    """Print the last `lines` lines of every failed job's log."""
    out = out or sys.stderr
    for path in failed_job_logs(snakemake_logs):
        try:
            tail = Path(path).read_text(errors="replace").splitlines()[-lines:]
        except OSError as e:
            tail = [f"(cannot read it: {e.strerror})"]
        print(f"\n==> {path} (last {lines} lines) <==", file=out)
        print("\n".join(tail), file=out)
