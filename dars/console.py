"""What a user sees on the console at the end of a run: each failed job's own last log lines,
every warning a stage wrote to its log, and the last progress line of each job that failed or
was still running when the run stopped.

Snakemake's console says only `CalledProcessError ... exit status 2` and the log path; the
stage's message (which file is wrong, which command fixes it) is in that log, and so are
warnings such as a labeled set without any pixel of some class. The Snakefile's `onsuccess` /
`onerror` hand this module Snakemake's own log, which names every job's log."""
import re
import sys
from pathlib import Path

from .log import PROGRESS

FAILED_LOG = re.compile(r"^\s*log: (.+) \(check log file\(s\) for error details\)\s*$", re.M)
JOB_LOG = re.compile(r"^\s*log: (.+?)(?: \(check log file\(s\) for error details\))?\s*$", re.M)
# A stage's warning: dars.log's `<date> <time> WARNING <stage>: ...`, or a bare `WARNING: ...`.
WARNING = re.compile(r"^(?:\S+ \S+ )?WARNING\b")
JOB_BLOCK = re.compile(r"^(?:local)?rule \S+:\n(?:[ \t]+.*\n?)*", re.M)
JOB_ID = re.compile(r"^\s*jobid: (\d+)\s*$", re.M)
FINISHED = re.compile(r"Finished job(?:id:)? (\d+)")


def _read(snakemake_logs):
    """Snakemake's log text; `onsuccess`/`onerror` give it as a path or a list of paths."""
    logs = [snakemake_logs] if isinstance(snakemake_logs, (str, Path)) else list(snakemake_logs or [])
    return "\n".join(Path(f).read_text(errors="replace") for f in logs)


def _paths(pattern, text):
    return list(dict.fromkeys(p.strip() for group in pattern.findall(text) for p in group.split(", ")))


def failed_job_logs(snakemake_logs):
    """The log files of the jobs that failed, in the order Snakemake reported them."""
    return _paths(FAILED_LOG, _read(snakemake_logs))


def show_warnings(snakemake_logs, out=None):
    """Print each `WARNING:` line of the logs of the jobs this run executed, with its log path."""
    out = out or sys.stderr
    for path in _paths(JOB_LOG, _read(snakemake_logs)):
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if WARNING.match(line):
                print(f"{path}: {line}", file=out)


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


def _last_progress(path):
    """The last dars.log progress line of a job's log, or None."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((line for line in reversed(lines) if f" {PROGRESS} " in line), None)


def unfinished_job_logs(snakemake_logs):
    """The log files of the jobs Snakemake started and did not see finish (still running when it
    stopped, killed, or failed), in the order it started them."""
    text = _read(snakemake_logs)
    finished = set(FINISHED.findall(text))
    logs = []
    for block in JOB_BLOCK.finditer(text):
        job, log = JOB_ID.search(block.group()), JOB_LOG.search(block.group())
        if job and log and job.group(1) not in finished:
            logs += [p.strip() for p in log.group(1).split(", ")]
    return list(dict.fromkeys(logs + failed_job_logs(snakemake_logs)))


def show_progress(snakemake_logs, out=None):
    """Print the last progress line (rate, time left) of every job that failed or did not finish:
    how far each got."""
    out = out or sys.stderr
    failed = set(failed_job_logs(snakemake_logs))
    for path in unfinished_job_logs(snakemake_logs):
        line = _last_progress(path)
        if line:
            state = "failed" if path in failed else "not finished"
            print(f"{path} ({state}): {line}", file=out)
