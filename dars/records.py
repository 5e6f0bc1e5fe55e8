"""Run records: load and check what the runs wrote, for every report (report, tables, figures,
evidence and inspect only render what this module returns).

Records: a per-run `miou.json` (or an aggregate one, which `is_aggregate` tells apart), the
`pseudo_stats.json` of the pseudo labels a run trained on (a spec lists it with its run: no
directory name is guessed), a val prior (`prior_td.json`, which defines the tail classes) and
`split.json`. A check that fails raises DarsError naming the files, so a stale or mixed results
tree never becomes a table. A cell is the runs of one experiment over seeds; its statistics
(`stat`: mean and sample std; `paired_gain`: per-seed differences) are shared by every report.
"""
import math
from dataclasses import dataclass, replace

import numpy as np

from .classes import CLASS_NAMES
from .io import DarsError, read_json

# Fields that define "the same experiment": runs that differ here must never be averaged.
IDENTITY = ("dataset", "split", "round", "method")
# A table cell is stricter: the same labeler, labeling ratio, scale range and protocol too.
CELL_IDENTITY = IDENTITY + ("labeler", "alpha", "scale_range", "protocol")
TAIL_SHARE = 0.01  # a tail class holds under 1% of the val ground-truth pixels


def as_list(files):
    """One path or a list of paths -> a list."""
    return [files] if isinstance(files, str) else list(files or [])


def to_nan(x):
    """JSON null (an absent class) -> NaN, so numpy's nan-aware reductions skip it."""
    return float("nan") if x is None else float(x)


def to_null(x):
    """NaN -> None: strict JSON has no NaN."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def sample_std(values):
    """Sample standard deviation (ddof=1): seeds are a sample of possible runs; 0.0 for one seed."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.std(values, ddof=1)) if len(values) >= 2 else 0.0


def nanmean_columns(rows):
    """Per-class mean over runs, skipping runs where the class is absent; NaN if absent in all."""
    a = np.array([[to_nan(v) for v in row] for row in rows], dtype=np.float64)
    out = np.full(a.shape[1], np.nan)
    seen = ~np.isnan(a).all(axis=0)
    out[seen] = np.nanmean(a[:, seen], axis=0)
    return out


# ---------------------------------------------------------------- miou.json

def is_aggregate(record):
    """An aggregate miou.json (mean over seeds) rather than one run's."""
    return "miou_mean" in record


@dataclass(frozen=True)
class RunRecord:
    """One run's miou.json: its fields (read as `record[key]` / `record.get(key)`), the file they
    came from (every error names it) and, for a run that trained on pseudo labels, the
    pseudo_stats.json of those labels when a spec lists it (`run_pseudo_stats` reads it)."""
    fields: dict
    file: str
    pseudo_stats: str | None = None

    def __getitem__(self, key):
        return self.fields[key]

    def __contains__(self, key):
        return key in self.fields

    def get(self, key, default=None):
        return self.fields.get(key, default)


def load_runs(miou_files):
    """The RunRecords of per-run miou.json files, in the given order."""
    runs = []
    for f in miou_files:
        fields = read_json(f)
        missing = [k for k in ("miou", "iou", "seed", *IDENTITY) if k not in fields]
        if missing:
            hint = " (it looks like an aggregate miou.json; pass per-run files)" if is_aggregate(fields) else ""
            raise DarsError(f"{f}: not a per-run miou.json, missing {missing}{hint}")
        runs.append(RunRecord(fields, str(f)))
    if not runs:
        raise DarsError("no miou.json files given")
    return runs


def agree(runs, key, what, value=None):
    """The single value all runs have for `key` (or for `value(run)`), or DarsError naming the
    disagreeing files."""
    value = value or (lambda r: r.get(key))
    values = {repr(value(r)): r for r in runs}
    if len(values) > 1:
        detail = ", ".join(f"{r.file}: {value(r)!r}" for r in values.values())
        raise DarsError(f"{what}: files disagree on {key!r} ({detail})")
    return value(runs[0])


def departure_note(runs):
    """The runs' departures from the authors' recipe (miou.json `departures`, e.g. the
    torchvision opt-out of a paper preset) as one caption sentence, or "" when there are none."""
    found = list(dict.fromkeys(d for r in runs for d in r.get("departures") or ()))
    return f"The runs depart from the authors' recipe: {'; '.join(found)}." if found else ""


def check_seeds(runs, what):
    seeds = [r["seed"] for r in runs]
    dup = sorted({s for s in seeds if seeds.count(s) > 1}, key=repr)
    if dup:
        files = [r.file for r in runs if r["seed"] in dup]
        raise DarsError(f"{what}: seed(s) {dup} appear more than once ({files}); each seed must be counted once")


def by_seed(runs):
    """Runs sorted by seed: integer seeds first, in order, then the others by name."""
    return sorted(runs, key=lambda r: (0, r["seed"], "") if isinstance(r["seed"], int) else (1, 0, str(r["seed"])))


def class_names(runs, what):
    names = agree(runs, "class_names", what) if any("class_names" in r for r in runs) else None
    n = agree(runs, "n", what + " (number of classes)", value=lambda r: len(r["iou"]))
    if names is None:
        names = list(CLASS_NAMES) if n == len(CLASS_NAMES) else [f"class {i}" for i in range(n)]
    return list(names)


def load_cell(files, what, min_seeds=1, pseudo_stats=None):
    """The RunRecords of one cell, sorted by seed; refuses mixed runs and too few seeds.
    `pseudo_stats`: the pseudo_stats.json of each run, in the order of `files` (read by
    `run_pseudo_stats`)."""
    files = as_list(files)
    if not files:
        raise DarsError(f"{what}: no files given")
    runs = load_runs(files)
    if pseudo_stats is not None:
        stats = as_list(pseudo_stats)
        if len(stats) != len(runs):
            raise DarsError(f"{what}: {len(stats)} pseudo_stats.json file(s) for {len(runs)} miou.json file(s); "
                            "list one per run, in the same order")
        runs = [replace(run, pseudo_stats=str(f)) for run, f in zip(runs, stats)]
    for key in CELL_IDENTITY:
        agree(runs, key, what)
    check_seeds(runs, what)
    if len(runs) < min_seeds:
        raise DarsError(f"{what}: got {len(runs)} seed(s) ({', '.join(map(str, files))}) but min_seeds "
                        f"is {min_seeds}; add the missing seeds' runs or lower min_seeds")
    return by_seed(runs)


# ---------------------------------------------------------------- statistics over seeds

@dataclass
class Value:
    """One table cell: a mean over seeds (with its std), or a paired gain: the mean and std of
    the per-seed differences of two cells, with `wins` = seeds whose difference has the mean's
    sign. `values` are the per-seed values, aligned with `seeds`."""
    metric: str
    mean: float
    std: float = float("nan")
    n: int = 0
    seeds: tuple = ()
    gain: bool = False
    values: tuple = ()
    wins: int = 0


def stat(values, metric, runs):
    """Mean and sample std over the seeds where the value exists (null IoU = class absent)."""
    v = np.array([to_nan(x) for x in values], dtype=np.float64)
    ok = ~np.isnan(v)
    seeds = tuple(r["seed"] for r, keep in zip(runs, ok) if keep)
    if not ok.any():
        return Value(metric, float("nan"), float("nan"), 0, ())
    return Value(metric, float(v[ok].mean()), sample_std(v[ok]), int(ok.sum()), seeds, values=tuple(v[ok].tolist()))


def miou(runs):
    return stat([r["miou"] for r in runs], "miou", runs)


def paired_gain(a, b):
    """a - b per seed over the seeds both cells have, in a's order: one seed fixes the split, the
    round-0 model and the augmentation stream of every method, so seeds pair runs and the per-seed
    difference is the statistic (its spread is far below the spread of either cell). None without
    a common seed."""
    if a is None or b is None:
        return None
    x, y = dict(zip(a.seeds, a.values)), dict(zip(b.seeds, b.values))
    common = [seed for seed in x if seed in y]
    if not common:
        return None
    d = np.array([x[seed] - y[seed] for seed in common], dtype=np.float64)
    mean = float(d.mean())
    wins = int(np.sum(np.sign(d) == np.sign(mean)))
    return Value(a.metric, mean, sample_std(d), len(common), tuple(common), gain=True, values=tuple(d.tolist()),
                 wins=wins)


# ---------------------------------------------------------------- other records

def has_pseudo_labels(run):
    """Whether a run trained on pseudo labels (round 0 and the supervised control did not)."""
    return run.get("round") != 0 and run.get("labeler") not in (None, "none")


def run_pseudo_stats(run, what):
    """The pseudo_stats.json of the pseudo labels `run` trained on (listed with it in the spec),
    checked to belong to it and to hold ground-truth statistics."""
    path = run.pseudo_stats
    if path is None:
        raise DarsError(f"{what}: {run.file} trained on pseudo labels (labeler {run.get('labeler')!r}) but no "
                        "pseudo_stats.json is listed for it; list one per run under 'pseudo_stats'")
    stats = read_json(path)
    if (stats.get("labeler"), stats.get("alpha")) != (run.get("labeler"), run.get("alpha")):
        raise DarsError(f"{what}: {path} is labeler {stats.get('labeler')!r} alpha {stats.get('alpha')!r} "
                        f"but {run.file} says {run.get('labeler')!r} alpha {run.get('alpha')!r}; stale outputs?")
    if not stats.get("gt"):
        raise DarsError(f"{what}: {path} has no ground-truth statistics (no ground truth for the unlabeled images)")
    return stats


def _shares(counts, what):
    c = np.asarray(counts, dtype=np.float64)
    if c.sum() <= 0:
        raise DarsError(f"{what}: class counts sum to zero")
    return c / c.sum()


def class_shares(prior_files, runs):
    """(class names, {series: per-class pixel shares}): the labeled prior (prior.json per seed),
    the true distribution of the unlabeled images (once per distinct unlabeled set: seeds have
    their own) and each run's pseudo labels ({label: pseudo_stats.json or a list over seeds});
    shares averaged over the files."""
    priors = [read_json(f) for f in prior_files]
    for f, prior in zip(prior_files, priors):
        if "counts" not in prior:
            raise DarsError(f"{f}: not a prior.json (no counts)")
    names = list(priors[0].get("class_names") or CLASS_NAMES)
    series = {"prior (labeled)": np.mean([_shares(p["counts"], f) for f, p in zip(prior_files, priors)], 0)}
    truth, pseudo = {}, {}
    for label, files in runs.items():
        per_seed = []
        for f in as_list(files):
            s = read_json(f)
            if "pseudo_counts" not in s:
                raise DarsError(f"{f}: not a pseudo_stats.json (no pseudo_counts)")
            per_seed.append(_shares(s["pseudo_counts"], f))
            if s.get("gt"):
                truth.setdefault(tuple(s["gt"]["gt_pixels"]), f)
        pseudo[label] = np.mean(per_seed, 0)
    if truth:
        series["true (unlabeled)"] = np.mean([_shares(c, f) for c, f in truth.items()], 0)
    series.update(pseudo)
    for label, v in series.items():
        if len(v) != len(names):
            raise DarsError(f"class_distribution: {label!r} has {len(v)} classes, the prior has {len(names)}")
    return names, series


def tail_classes(prior_json, names, threshold=TAIL_SHARE):
    """Indices of classes present in val whose share of val ground-truth pixels is under `threshold`."""
    prior = read_json(prior_json)
    counts = np.asarray(prior.get("counts", []), dtype=np.float64)
    if prior.get("class_names") is not None and list(prior["class_names"]) != list(names):
        raise DarsError(f"{prior_json}: class_names differ from the miou.json files' class_names")
    if len(counts) != len(names) or counts.sum() <= 0:
        raise DarsError(f"{prior_json}: expected {len(names)} class counts with a positive sum, got {len(counts)}")
    s = counts / counts.sum()
    return [i for i in range(len(names)) if counts[i] > 0 and s[i] < threshold]


def split_sizes(split_jsons):
    """(sorted distinct labeled counts, sorted distinct unlabeled counts) over split.json files."""
    splits = [read_json(f) for f in split_jsons]
    for f, s in zip(split_jsons, splits):
        if "num_labeled" not in s or "num_unlabeled" not in s:
            raise DarsError(f"{f}: not a split.json (no num_labeled/num_unlabeled)")
    return sorted({s["num_labeled"] for s in splits}), sorted({s["num_unlabeled"] for s in splits})
