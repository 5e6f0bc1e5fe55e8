"""What the `paper` target builds: the specs of the supplementary's tables (S1-S7) and figures,
resolved from config.yaml's `paper:` section into the per-run files they read (dars.paths), and
the specs of one dataset/split/round's report (`run_specs`).

Every row or column of a table is a named preset (a method, a round-0 variant, a split), so a
sweep is a list of names in config and the DAG builds each run once, whatever table uses it. A
spec lists every file it reads: a KL table lists the pseudo_stats.json of the rows whose preset
has a labeler (config says which), so no rule guesses them from directory names. Rows are found
by their role (dars.specs.Row: round 0, the control, a labeler), never by their printed label.
Spec building only: it imports no pandas or renderer (a dry run builds these specs)."""
from .config import dataset, layout_of, pretrain_length, round_methods
from .io import DarsError
from .paths import PAPER, Stage, report_file, run_file, seed_file
from .specs import CONTROL, ROUND0, first, method_prior, preset_stage, typed_rows, versus

TABLES = ("s1", "s2", "s3", "s4", "s5", "s6", "s7")
FIGURES = ("panels", "predictions", "class_distribution", "iou_bars")
FIGURE_KINDS = ("class_distribution", "iou_bars")


def _cell(ds, split, seeds, stage_, file="miou.json"):
    """The per-seed files of one cell."""
    return [run_file(ds, split, s, stage_, file) for s in seeds]


def _pseudo_labeled(config, preset):
    """Whether the runs of a row's preset trained on pseudo labels (round 0 and controls did not)."""
    return preset != ROUND0 and config["methods"][preset]["labeler"] != "none"


LABELERS = ("st", "cbst", "dars")  # the roles whose pseudo labels the panels figure shows


class _Paper:
    def __init__(self, config):
        """Checks what the schema cannot say: the presets and datasets the `paper:` section names
        exist (its keys and types are the schema's)."""
        if "paper" not in config:
            raise DarsError("config key paper: missing; the paper target needs it (see config.yaml)")
        self.p = p = config["paper"]
        for key in ("dataset", "uda_dataset"):
            if p[key] not in config["datasets"]:
                raise DarsError(f"config key paper.{key}: {p[key]!r} is not under datasets:")
        methods, pre = config["methods"], config.get("pretrain_presets", {})
        for key in ("compare", "alpha_sweep", "scale_sweep", "uda_compare"):
            for label, name in p[key].items():
                if name != ROUND0 and name not in methods:
                    raise DarsError(f"config key paper.{key}.{label}: {name!r} is not a method preset")
        for label, name in p["augment_ablation"].items():
            if name not in pre:
                raise DarsError(f"config key paper.augment_ablation.{label}: {name!r} is not under pretrain_presets")
        if p["rounds"] > config["rounds"]:
            raise DarsError(f"config key paper.rounds: {p['rounds']} > rounds ({config['rounds']})")
        self.config = config
        self.ds, self.uda, self.split, self.last = p["dataset"], p["uda_dataset"], p["split"], p["rounds"]
        self.seeds, self.min_seeds = p["seeds"], len(p["seeds"])
        self.root = config["datasets"][self.ds]["root"]
        self.compare = typed_rows(config, p["compare"])
        self.dars = first(self.compare, "dars")  # the DARS row (labeler dars, labeled prior), or None

    def cell(self, stage_, ds=None, split=None, file="miou.json"):
        return _cell(ds or self.ds, self.split if split is None else split, self.seeds, stage_, file)

    def val_prior(self, ds):
        """The val ground-truth class counts (the tail classes are defined on them)."""
        return seed_file(ds, 0 if ds == self.uda else self.split, self.seeds[0], "prior_td.json")

    def tables(self):
        p, last = self.p, self.last
        base = {"min_seeds": self.min_seeds}
        frac = f"1/{self.split}"
        t = {}
        t["s1"] = dict(base, kind="sweep", corner="alpha (round 2)",
                       title=f"Table S1: labeling ratio alpha of round {last} ({self.ds}, {frac} split, DARS)",
                       columns={k: self.cell(preset_stage(v, last)) for k, v in p["alpha_sweep"].items()},
                       reference={"round 1": self.cell(Stage(self.dars.preset, 1))} if self.dars else {})
        t["s2"] = dict(base, kind="sweep", orientation="column", corner="(beta_min, beta_max)",
                       title=f"Table S2: scale-range enlargement of round {last} ({self.ds}, {frac} split, DARS)",
                       rows={k: self.cell(preset_stage(v, last)) for k, v in p["scale_sweep"].items()})
        t["s3"] = dict(base, kind="sweep", orientation="column", corner="augmentation",
                       title=f"Table S3: augmentation ablation under full supervision ({self.ds}, all labels, "
                             f"round 0{self.ablation_budget()})",
                       rows={k: self.cell(Stage.round0(v), split=1) for k, v in p["augment_ablation"].items()})
        rows = {k: self.cell(preset_stage(v, 1)) for k, v in p["compare"].items()}
        gains = _paired_comparisons(self.compare, versus(self.compare))
        t["s4"] = dict(base, kind="per_class", corner="method",
                       title=f"Table S4: per-class IoU at round 1 ({self.ds}, {frac} split)",
                       rows=rows, val_prior=self.val_prior(self.ds), gains=gains,
                       priors=self.priors(p["compare"], self.ds, self.split))
        t["s5"] = self.iterative(base)
        t.update(self.uda_tables(base))
        return t

    def ablation_budget(self):
        """', at 4,000 of round 0's 8,000 steps' when S3's presets shorten round 0 (pretrain_budget),
        for its caption (dars.config.train_settings applies it)."""
        t = {**self.config["train"], **(dataset(self.config, self.ds).get("train") or {})}
        full, unit = pretrain_length({**t, "pretrain_budget": 1.0})
        lengths = sorted({pretrain_length({**t, **self.config["pretrain_presets"][v]})[0]
                          for v in self.p["augment_ablation"].values()})
        return "" if lengths == [full] else f", at {'/'.join(f'{n:,}' for n in lengths)} of its {full:,} {unit}"

    def iterative(self, base):
        """S5: DARS over rounds per split, with round 0, the supervised control and the oracle."""
        p, last = self.p, self.last
        dars = self.dars.preset if self.dars else "dars"
        control = first(self.compare, CONTROL)
        columns = {}
        for n in p["iterative_splits"]:
            col = {"baseline": self.cell(Stage.round0(), split=n),
                   "rounds": [self.cell(Stage(dars, r), split=n) for r in range(1, last + 1)]}
            if control:
                col["supervised"] = self.cell(Stage(control.preset, last), split=n)
            columns[f"1/{n}"] = col
        return dict(base, kind="iterative", method="DARS",
                    title=f"Table S5: iterative self-training ({self.ds}, mIoU %)", columns=columns,
                    oracle={"oracle (full labels)": self.cell(Stage.round0(), split=1)})

    def uda_tables(self, base):
        """S6 (per-class IoU) and S7 (pseudo-label distribution) of domain adaptation, round 1."""
        compare = self.p["uda_compare"]
        uda_rows = {k: self.cell(preset_stage(v, 1), ds=self.uda, split=0) for k, v in compare.items()}
        s6 = dict(base, kind="per_class", corner="method",
                  title=f"Table S6: per-class IoU at round 1, domain adaptation ({self.uda})",
                  rows=uda_rows, val_prior=self.val_prior(self.uda),
                  gains=_paired_comparisons(typed_rows(self.config, compare)))
        head = first(typed_rows(self.config, compare), ROUND0)
        s7 = dict(base, kind="kl", corner="method", baseline=head.label if head else next(iter(uda_rows)),
                  title=f"Table S7: pseudo-label distribution vs the true target distribution ({self.uda}, round 1)",
                  rows=uda_rows,
                  pseudo_stats={k: self.cell(Stage(v, 1), ds=self.uda, split=0, file="pseudo_stats.json")
                                for k, v in compare.items() if _pseudo_labeled(self.config, v)},
                  priors=self.priors(compare, self.uda, 0))
        s6["priors"] = s7["priors"]
        return {"s6": s6, "s7": s7}

    def priors(self, presets, ds, split):
        """label -> the per-seed prior.json files of the rows whose labeler aligns to a prior."""
        files = {k: [method_prior(self.config, ds, split, seed, v) for seed in self.seeds] for k, v in presets.items()}
        return {k: f for k, f in files.items() if f[0] is not None}

    def figures(self):
        p, last, seed = self.p, self.last, self.seeds[0]
        labelers = {r.label: r.preset for r in self.compare if r.role in LABELERS}
        runs = {f"{k} r1": run_file(self.ds, self.split, seed, Stage(v, 1), "pseudo_labels.txt")
                for k, v in labelers.items()}
        dars = self.dars.preset if self.dars else "dars"
        if self.dars:
            runs[f"{self.dars.label} r{last}"] = run_file(self.ds, self.split, seed, Stage(dars, last),
                                                          "pseudo_labels.txt")
        images = dict(root=self.root, layout=layout_of(dataset(self.config, self.ds)), num_images=p["figure_images"])
        f = {}
        f["panels"] = dict(kind="panels", **images, runs=runs,
                           pseudo_list=run_file(self.ds, self.split, seed, Stage(dars, 1), "pseudo_labels.txt"),
                           title=f"Pseudo labels ({self.ds}, {1}/{self.split} split, seed {seed})")
        f["predictions"] = dict(kind="predictions", **images,
                                checkpoints={k: run_file(self.ds, self.split, seed, preset_stage(v, 1), "model.pt")
                                             for k, v in p["compare"].items()})
        f["class_distribution"] = dict(
            kind="class_distribution", prior=seed_file(self.ds, self.split, seed, "prior.json"),
            runs={k: self.cell(Stage(v, 1), file="pseudo_stats.json") for k, v in labelers.items()})
        f["iou_bars"] = dict(kind="iou_bars", min_seeds=self.min_seeds, val_prior=self.val_prior(self.ds),
                             runs={k: self.cell(preset_stage(v, 1)) for k, v in p["compare"].items()})
        return f


def _paired_comparisons(rows_, pairs=()):
    """The gain rows ([label a, label b]) of a per-class table ([specs.Row]): every method against
    the round-0 row (round 0 or source only; else the first row) and against the supervised control (the first row of
    role control), then `pairs` ((Row, Row): S4's DARS against CBST and ST; S6 and the run report
    have none); records.paired_gain makes each a per-seed difference."""
    head, control = first(rows_, ROUND0) or rows_[0], first(rows_, CONTROL)
    gains = [[r.label, head.label] for r in rows_[1:]]
    gains += [[r.label, control.label] for r in rows_[1:] if control and r is not control]
    return gains + [[a.label, b.label] for a, b in pairs]


def run_specs(config, dataset, split, round_):
    """The tables and figures of one dataset/split/round of the configured runs (`seeds`,
    `compare_methods`), which `snakemake --report` shows for that target: per-class IoU with
    paired gains, the pseudo-label statistics, the class distributions and the per-class IoU."""
    seeds, methods = config["seeds"], round_methods(config, round_)
    presets = {"round 0": ROUND0, **{m: m for m in methods}}
    rows = {label: _cell(dataset, split, seeds, preset_stage(p, round_)) for label, p in presets.items()}
    labelers = [m for m in methods if _pseudo_labeled(config, m)]
    val_prior = seed_file(dataset, split, seeds[0], "prior_td.json")
    what = f"{dataset}, 1/{split} split, round {round_}"
    specs = {
        "per_class": dict(kind="per_class", corner="method", title=f"Per-class IoU ({what})", rows=rows,
                          val_prior=val_prior, gains=_paired_comparisons(typed_rows(config, presets))),
        "iou_bars": dict(kind="iou_bars", runs=rows, val_prior=val_prior, title=f"Per-class IoU ({what})"),
    }
    if labelers:
        stats = {m: _cell(dataset, split, seeds, Stage(m, round_), "pseudo_stats.json") for m in labelers}
        specs["pseudo_labels"] = dict(kind="kl", corner="method", baseline=labelers[0],
                                      rows={m: rows[m] for m in labelers}, pseudo_stats=stats,
                                      title=f"Pseudo labels vs the unlabeled images' true distribution ({what})")
        specs["class_distribution"] = dict(
            kind="class_distribution", prior=[seed_file(dataset, split, s, "prior.json") for s in seeds],
            runs=stats, title=f"Class distribution: labeled prior, truth and pseudo labels ({what})")
    return specs


def run_report_files(config, dataset, split, rounds):
    """The report files of rounds 1..`rounds` (tables as .html, figures as .png)."""
    return [report_file(dataset, split, r, name, "png" if spec["kind"] in FIGURE_KINDS else "html")
            for r in range(1, rounds + 1) for name, spec in run_specs(config, dataset, split, r).items()]


def run_spec(config, dataset, split, round_, name):
    specs = run_specs(config, dataset, split, round_)
    if name not in specs:
        raise DarsError(f"run report item {name!r} unknown here; this run has {', '.join(specs)}")
    return specs[name]


def table_spec(config, name):
    specs = _Paper(config).tables()
    if name not in specs:
        raise DarsError(f"paper table {name!r} unknown; tables are {', '.join(specs)}")
    return specs[name]


def summary_spec(config):
    """What dars.verdicts reads: the tables' CSVs, the role of each row of the per-class tables
    (which row is round 0, the control, DARS, ...) and the split S4 is at."""
    paper = _Paper(config)
    p = paper.p
    roles = {"s4": {r.label: r.role for r in paper.compare},
             "s6": {r.label: r.role for r in typed_rows(config, p["uda_compare"])}}
    roles["s7"] = roles["s6"]
    return {"tables": {t: f"{PAPER}/{t}.csv" for t in TABLES}, "roles": roles, "split": f"1/{paper.split}"}


def figure_spec(config, name):
    specs = _Paper(config).figures()
    if name not in specs:
        raise DarsError(f"paper figure {name!r} unknown; figures are {', '.join(specs)}")
    return specs[name]
