"""One logging setup for every stage, and progress lines for long loops.

`python -m dars <stage>` calls `setup(stage)`: every message goes to stderr (the rules send it to
the job's log file) as `<date> <time> <LEVEL> <stage>: <message>`; stdout keeps only what a
stage prints as its result. A loop over images or steps reports through `Progress`: a line with
the count, the rate and the time left at most every `every` seconds and once at 100%, so a
stage that runs for hours says how far it is, and a log of a killed job ends with where it
stopped (dars.console shows that line after a run)."""
import logging
import sys
import time

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
EVERY = 30.0  # seconds between progress lines
PROGRESS = "progress"  # every progress line carries this word after the stage name


def setup(stage, stream=None):
    """Send the messages of every logger (INFO and above) to `stream` (stderr), timestamped and
    naming the stage; replaces an earlier setup."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {stage}: %(message)s", DATE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def duration(seconds) -> str:
    """3725 -> `1h02m05s`, 65 -> `1m05s`, 4.2 -> `4s`."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """Counts a loop's items; logs `<what> progress N/T unit (P%), R unit/s, elapsed E, ETA L`
    (plus `detail()`, e.g. the loss and learning rate) at most every `every` seconds and when the
    count reaches the total. `start`: items done before this process (a resumed run): the rate
    counts only this process's items."""

    def __init__(self, what, total, unit="images", log=None, every=EVERY, start=0, clock=time.monotonic):
        self.what, self.total, self.unit = what, total, unit
        self.log = log or logging.getLogger("dars.progress").info
        self.every, self.clock = every, clock
        self.done = self.start = start
        self.began = self.last = clock()

    def update(self, n=1, detail=None):
        """`n` more items done; `detail`: extra words for the line (the loss, the learning rate)."""
        self.done += n
        now = self.clock()
        if self.done >= self.total or now - self.last >= self.every:
            self.last = now
            self.log(self.line(now) + (f", {detail}" if detail else ""))

    def line(self, now):
        elapsed = now - self.began
        rate = (self.done - self.start) / elapsed if elapsed > 0 else float("inf")
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100 * self.done / self.total if self.total else 100
        eta = duration(left) if left != float("inf") else "unknown"
        return (f"{self.what} {PROGRESS} {self.done}/{self.total} {self.unit} ({pct:.0f}%), "
                f"{rate:.3g} {self.unit}/s, elapsed {duration(elapsed)}, ETA {eta}")
