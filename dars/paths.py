"""Where the pipeline writes: the whole results tree in one place, for the rules (the path block of
workflow/rules/common.smk and the Snakefile's targets) and for the specs of paper.py, evidence.py
and finding.py.

    results/{dataset}/data/                                     a generated dataset (`DATA`)
    results/{dataset}/prior_sd.json                             a source dataset's prior (`SOURCE_PRIOR`)
    results/{dataset}/split{split}/seed{seed}/                  one seed's run (`RUN`, `run_dir`)
        split/split.json, prior.json, prior_td.json             per seed (`seed_file`)
        round0/, round0_{preset}/ or {method}/round{round}/     one stage (`Stage.directory`)
            miou.json, model.pt, pseudo_labels.txt, pseudo/, shards/{k}, ...   (`run_file`)
    results/{dataset}/split{split}/round{round}/                over seeds (`AGG`): miou.json, methods.md,
        report/{name}.{html,png}                                the run report (`report_file`)
    results/{dataset}/split{split}/finding.{md,csv,html,txt}    the default target's finding (`FINDING`)
    results/paper/, results/evidence/                           the supplementary, the evidence (`PAPER`, `EVIDENCE`)
"""
import re
from dataclasses import dataclass

RESULTS = "results"
DATA = f"{RESULTS}/{{dataset}}/data"
SOURCE_PRIOR = f"{RESULTS}/{{dataset}}/prior_sd.json"
RUN = f"{RESULTS}/{{dataset}}/split{{split}}/seed{{seed}}"
AGG = f"{RESULTS}/{{dataset}}/split{{split}}/round{{round}}"  # over seeds
FINDING = f"{RESULTS}/{{dataset}}/split{{split}}/finding"  # .md, .csv, .html, .txt
PAPER = f"{RESULTS}/paper"
EVIDENCE = f"{RESULTS}/evidence"


@dataclass(frozen=True)
class Stage:
    """One model of a run, the one identity of a stage directory:

        Stage.round0()            round0          the round-0 (supervised) model
        Stage.round0("none")      round0_none     a round-0 variant from `pretrain_presets`
        Stage("dars", 2)          dars/round2     a method preset's self-training round k >= 1

    Use `Stage.parse(wildcards.stage)` where a path names a stage, `.directory` (or `str(stage)`)
    to write one, `.teacher(config)` for the model that teaches it. Frozen: a hashable value."""
    method: str | None = None
    round: int = 0
    preset: str | None = None  # round-0 variant

    def __post_init__(self):
        if (self.method is None) != (self.round == 0) or (self.preset is not None and self.round != 0):
            raise ValueError(f"not a stage: {self!r} (round 0 has no method, rounds >= 1 have one "
                             "and no round-0 preset)")

    @classmethod
    def round0(cls, preset=None):
        return cls(None, 0, preset)

    @classmethod
    def parse(cls, directory):
        """The stage of a directory name (the `{stage}` wildcard): round0, round0_<preset> or
        <method>/round<k>."""
        found = re.fullmatch(r"round0(?:_(?P<preset>[^/]+))?|(?P<method>[^/]+)/round(?P<round>[1-9]\d*)", directory)
        if found is None:
            raise ValueError(f"{directory!r} is not a stage directory (round0, round0_<preset> or <method>/round<k>)")
        if found["method"]:
            return cls(found["method"], int(found["round"]))
        return cls.round0(found["preset"])

    @property
    def directory(self):
        if self.round == 0:
            return "round0" if self.preset is None else f"round0_{self.preset}"
        return f"{self.method}/round{self.round}"

    def __str__(self):
        return self.directory

    def teacher(self, config):
        """The stage whose model teaches this one (None for round 0): round 0 for round 1, else the
        previous round of this preset's chain, or of the preset it `continues` (whose earlier
        rounds it shares)."""
        if self.round == 0:
            return None
        if self.round == 1:
            return Stage.round0()
        return Stage(config["methods"][self.method].get("continues") or self.method, self.round - 1)


def stage_pattern(methods=(), presets=()):
    """The regular expression of the stage directories of these method presets and round-0
    presets (a wildcard constraint); without methods, the round-0 stages only."""
    round0 = rf"round0|round0_({'|'.join(map(re.escape, presets)) or '(?!)'})"
    if not methods:
        return round0
    return rf"{round0}|({'|'.join(map(re.escape, methods))})/round\d+"


def generated_root(name):
    """Where the `synthesize` rule writes a synthetic dataset."""
    return DATA.format(dataset=name)


def source_prior(name):
    """The `sd` prior of a source dataset: its train labels' class distribution."""
    return SOURCE_PRIOR.format(dataset=name)


def run_dir(dataset, split, seed):
    """One seed's run tree of a dataset and split."""
    return RUN.format(dataset=dataset, split=split, seed=seed)


def seed_file(dataset, split, seed, name):
    """A file shared by the stages of one seed: `split/split.json`, `prior.json`, `prior_td.json`."""
    return f"{run_dir(dataset, split, seed)}/{name}"


def run_file(dataset, split, seed, stage_, file="miou.json"):
    """One run's file (or directory) in the results tree; `stage_` a `Stage` or its directory."""
    return f"{run_dir(dataset, split, seed)}/{stage_}/{file}"


def agg_file(dataset, split, round_, name):
    """A file over the seeds of one dataset/split/round (miou.json, methods.md, report/...)."""
    return f"{AGG.format(dataset=dataset, split=split, round=round_)}/{name}"


def report_file(dataset, split, round_, name, ext):
    """A table (.html) or figure (.png) of the report of one dataset/split/round."""
    return agg_file(dataset, split, round_, f"report/{name}.{ext}")
