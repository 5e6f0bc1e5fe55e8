"""What the `paper` target builds: the specs of the supplementary's tables (S1-S7) and figures,
resolved from config.yaml's `paper:` section into the per-run files they read.

Every row or column of a table is a named preset (a method, a round-0 variant, a split), so a
sweep is a list of names in config and the DAG builds each run once, whatever table uses it."""
from .io import DarsError

TABLES = ("s1", "s2", "s3", "s4", "s5", "s6", "s7")
FIGURES = ("panels", "predictions", "class_distribution", "iou_bars")


def run_file(ds, split, seed, stage, file="miou.json"):
    """One run's file in the results tree."""
    return f"results/{ds}/split{split}/seed{seed}/{stage}/{file}"


class _Paper:
    def __init__(self, config):
        if "paper" not in config:
            raise DarsError("config key paper: missing; the paper target needs it (see config.yaml)")
        self.p = p = config["paper"]
        for key in ("dataset", "uda_dataset", "seeds", "split", "iterative_splits", "rounds", "compare",
                    "alpha_sweep", "scale_sweep", "augment_ablation", "uda_compare", "figure_images"):
            if key not in p:
                raise DarsError(f"config key paper.{key}: missing")
        methods, pre = config["methods"], config.get("pretrain_presets", {})
        for key in ("compare", "alpha_sweep", "scale_sweep", "uda_compare"):
            for label, name in p[key].items():
                if name != "round0" and name not in methods:
                    raise DarsError(f"config key paper.{key}.{label}: {name!r} is not a method preset")
        for label, name in p["augment_ablation"].items():
            if name not in pre:
                raise DarsError(f"config key paper.augment_ablation.{label}: {name!r} is not under pretrain_presets")
        if p["rounds"] > config["rounds"]:
            raise DarsError(f"config key paper.rounds: {p['rounds']} > rounds ({config['rounds']})")
        self.ds, self.uda, self.split, self.last = p["dataset"], p["uda_dataset"], p["split"], p["rounds"]
        self.seeds, self.min_seeds = p["seeds"], len(p["seeds"])
        self.root = config["datasets"][self.ds]["root"]
        self.controls = {name for name, m in methods.items() if m["labeler"] == "none"}

    def cell(self, stage, ds=None, split=None, file="miou.json"):
        ds = ds or self.ds
        split = self.split if split is None else split
        return [run_file(ds, split, s, stage, file) for s in self.seeds]

    def method_stage(self, name, round_):
        return "round0" if name == "round0" else f"{name}/round{round_}"

    def val_prior(self, ds):
        """The val ground-truth class counts (the tail classes are defined on them)."""
        return f"results/{ds}/split{0 if ds == self.uda else self.split}/seed{self.seeds[0]}/prior_td.json"

    def tables(self):
        p, last = self.p, self.last
        base = {"min_seeds": self.min_seeds}
        frac = f"1/{self.split}"
        t = {}
        t["s1"] = dict(base, kind="sweep", corner="alpha (round 2)",
                       title=f"Table S1: labeling ratio alpha of round {last} ({self.ds}, {frac} split, DARS)",
                       columns={k: self.cell(f"{v}/round{last}") for k, v in p["alpha_sweep"].items()},
                       reference=({"round 1": self.cell(f"{p['compare']['DARS']}/round1")}
                                  if "DARS" in p["compare"] else {}))
        t["s2"] = dict(base, kind="sweep", orientation="column", corner="(beta_min, beta_max)",
                       title=f"Table S2: scale-range enlargement of round {last} ({self.ds}, {frac} split, DARS)",
                       rows={k: self.cell(f"{v}/round{last}") for k, v in p["scale_sweep"].items()})
        t["s3"] = dict(base, kind="sweep", orientation="column", corner="augmentation",
                       title=f"Table S3: augmentation ablation under full supervision ({self.ds}, all labels, round 0)",
                       rows={k: self.cell(f"round0_{v}", split=1) for k, v in p["augment_ablation"].items()})
        rows = {k: self.cell(self.method_stage(v, 1)) for k, v in p["compare"].items()}
        gains = _paired_comparisons(p["compare"], self.controls)
        t["s4"] = dict(base, kind="per_class", corner="method",
                       title=f"Table S4: per-class IoU at round 1 ({self.ds}, {frac} split)",
                       rows=rows, val_prior=self.val_prior(self.ds), gains=gains)
        dars = p["compare"].get("DARS", "dars")
        control = next((v for k, v in p["compare"].items() if v != "round0" and k not in ("ST", "CBST", "DARS")), None)
        columns = {}
        for n in p["iterative_splits"]:
            col = {"baseline": self.cell("round0", split=n),
                   "rounds": [self.cell(f"{dars}/round{r}", split=n) for r in range(1, last + 1)]}
            if control:
                col["supervised"] = self.cell(f"{control}/round{last}", split=n)
            columns[f"1/{n}"] = col
        t["s5"] = dict(base, kind="iterative", method="DARS",
                       title=f"Table S5: iterative self-training ({self.ds}, mIoU %)", columns=columns,
                       oracle={"oracle (full labels)": self.cell("round0", split=1)})
        uda_rows = {k: self.cell(self.method_stage(v, 1), ds=self.uda, split=0) for k, v in p["uda_compare"].items()}
        first = next(iter(uda_rows))
        t["s6"] = dict(base, kind="per_class", corner="method",
                       title=f"Table S6: per-class IoU at round 1, domain adaptation ({self.uda})",
                       rows=uda_rows, val_prior=self.val_prior(self.uda),
                       gains=_paired_comparisons(p["uda_compare"], self.controls))
        t["s7"] = dict(base, kind="kl", corner="method", baseline=first,
                       title=(f"Table S7: pseudo-label distribution vs the true target distribution "
                              f"({self.uda}, round 1)"),
                       rows=uda_rows)
        return t

    def figures(self):
        p, last, seed = self.p, self.last, self.seeds[0]
        root = self.root
        labelers = {k: v for k, v in p["compare"].items() if k in ("ST", "CBST", "DARS")}
        runs = {f"{k} r1": run_file(self.ds, self.split, seed, f"{v}/round1", "pseudo") for k, v in labelers.items()}
        if "DARS" in labelers:
            runs[f"DARS r{last}"] = run_file(self.ds, self.split, seed, f"{labelers['DARS']}/round{last}", "pseudo")
        f = {}
        f["panels"] = dict(kind="panels", root=root, runs=runs, num_images=p["figure_images"],
                           pseudo_list=run_file(self.ds, self.split, seed, f"{labelers.get('DARS', 'dars')}/round1",
                                            "pseudo_labels.txt"),
                           title=f"Pseudo labels ({self.ds}, {1}/{self.split} split, seed {seed})")
        f["predictions"] = dict(kind="predictions", root=root, num_images=p["figure_images"],
                                checkpoints={k: run_file(self.ds, self.split, seed, self.method_stage(v, 1), "model.pt")
                                             for k, v in p["compare"].items()})
        f["class_distribution"] = dict(
            kind="class_distribution", prior=f"results/{self.ds}/split{self.split}/seed{seed}/prior.json",
            runs={k: self.cell(f"{v}/round1", file="pseudo_stats.json") for k, v in labelers.items()})
        f["iou_bars"] = dict(kind="iou_bars", min_seeds=self.min_seeds, val_prior=self.val_prior(self.ds),
                             runs={k: self.cell(self.method_stage(v, 1)) for k, v in p["compare"].items()})
        return f


def _paired_comparisons(rows, controls):
    """The gain rows of a per-class table (label -> preset): every method against the first row
    (round 0 or source only) and against the supervised control (a preset with labeler none), then
    DARS against CBST and ST; tables.paired_gain makes each a per-seed difference."""
    labels = list(rows)
    first = labels[0]
    control = next((k for k, v in rows.items() if v in controls), None)
    gains = [[k, first] for k in labels if k != first]
    gains += [[k, control] for k in labels if control and k not in (first, control)]
    gains += [["DARS", k] for k in ("CBST", "ST") if "DARS" in labels and k in labels]
    return gains


def run_specs(config, dataset, split, round_):
    """The tables and figures of one dataset/split/round of the configured runs (`seeds`,
    `compare_methods`), which `snakemake --report` shows for that target: per-class IoU with
    paired gains, the pseudo-label statistics, the class distributions and the per-class IoU."""
    seeds, methods = config["seeds"], config["compare_methods"]

    def cell(stage, file="miou.json"):
        return [run_file(dataset, split, s, stage, file) for s in seeds]
    presets = {"round 0": "round0", **{m: m for m in methods}}
    rows = {label: cell("round0" if p == "round0" else f"{p}/round{round_}") for label, p in presets.items()}
    controls = {name for name, m in config["methods"].items() if m["labeler"] == "none"}
    labelers = [m for m in methods if config["methods"][m]["labeler"] != "none"]
    val_prior = f"results/{dataset}/split{split}/seed{seeds[0]}/prior_td.json"
    what = f"{dataset}, 1/{split} split, round {round_}"
    specs = {
        "per_class": dict(kind="per_class", corner="method", title=f"Per-class IoU ({what})", rows=rows,
                          val_prior=val_prior, gains=_paired_comparisons(presets, controls)),
        "iou_bars": dict(kind="iou_bars", runs=rows, val_prior=val_prior, title=f"Per-class IoU ({what})"),
    }
    if labelers:
        specs["pseudo_labels"] = dict(kind="kl", corner="method", baseline=labelers[0],
                                      rows={m: rows[m] for m in labelers},
                                      title=f"Pseudo labels vs the unlabeled images' true distribution ({what})")
        specs["class_distribution"] = dict(
            kind="class_distribution", prior=[f"results/{dataset}/split{split}/seed{s}/prior.json" for s in seeds],
            runs={m: cell(f"{m}/round{round_}", "pseudo_stats.json") for m in labelers},
            title=f"Class distribution: labeled prior, truth and pseudo labels ({what})")
    return specs


def run_report_files(config, dataset, split, rounds):
    """The report files of rounds 1..`rounds` (tables as .html, figures as .png)."""
    return [f"results/{dataset}/split{split}/round{r}/report/{name}.{'png' if spec['kind'] in FIGURE_KINDS else 'html'}"
            for r in range(1, rounds + 1) for name, spec in run_specs(config, dataset, split, r).items()]


FIGURE_KINDS = ("class_distribution", "iou_bars")


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


def figure_spec(config, name):
    specs = _Paper(config).figures()
    if name not in specs:
        raise DarsError(f"paper figure {name!r} unknown; figures are {', '.join(specs)}")
    return specs[name]
