"""Resolve the validated config into the settings of one stage; semantic checks with clear errors.

The Snakemake workflow validates config.yaml against workflow/schemas/config.schema.yaml
(types, ranges, defaults), then calls `check` for what a schema cannot say."""
import copy
import functools
from pathlib import Path

from .data.layouts import DEFAULT_LAYOUT, check_dataset_labels, check_root, class_set, find_pairs
from .io import DarsError
from .paths import Stage, generated_root
from .weights import check_present, departure

RESERVED = {"round0", "split", "data"}
RECIPE_DEFAULTS = {"blur_kernel": None, "crop_pad": "end", "scale_reference": "input"}


def check(config):
    """What the schema cannot say (it already restricts each preset's labeler to the known ones)."""
    datasets, methods = config["datasets"], config["methods"]
    if config["dataset"] not in datasets:
        raise DarsError(f"config key dataset: {config['dataset']!r} is not one of datasets: {sorted(datasets)}")
    if config["split"] == 0:  # the schema allows it for this message: 0 is domain adaptation, not 1/0
        try:
            check_split(config, config["dataset"], 0)
        except DarsError as e:
            raise DarsError(f"config key split: {e}") from None
    for key in ("default_method",):
        if config[key] not in methods:
            raise DarsError(f"config key {key}: method {config[key]!r} is unknown; presets are {sorted(methods)}")
    for name, ds in datasets.items():
        where = f"config key datasets.{name}"
        if "synthetic" in ds and ds["root"] != generated_root(name):
            raise DarsError(f"{where}.root: a synthetic dataset is generated into {generated_root(name)}; "
                            f"set root to that (got {ds['root']!r})")
        if ds.get("source") is not None:
            src = datasets.get(ds["source"])
            if src is None or src.get("source") is not None:
                raise DarsError(f"{where}.source: {ds['source']!r} must name a configured dataset that "
                                f"is not itself adapted (configured: {sorted(datasets)})")
            if class_set(layout_of(src)).num_classes != class_set(layout_of(ds)).num_classes:
                raise DarsError(f"{where}.source: {ds['source']} ({layout_of(src)}) and {name} "
                                f"({layout_of(ds)}) label different class sets")
    for m in config["compare_methods"]:
        if m not in methods:
            raise DarsError(f"config key compare_methods: method {m!r} is unknown; presets are {sorted(methods)}")
    for name, preset in methods.items():
        where = f"config key methods.{name}"
        if name in RESERVED or not name.replace("_", "").isalnum():
            raise DarsError(f"{where}: preset names must be alphanumeric and not one of {sorted(RESERVED)}")
        if preset.get("prior", "labeled") != "labeled" and preset["labeler"] not in ("dars", "da"):
            raise DarsError(f"{where}.prior: only the dars and da labelers use a class prior")
        if preset.get("prior") == "sd" and preset.get("prior_source") not in datasets:
            raise DarsError(f"{where}.prior_source: prior sd needs the name of a configured dataset "
                            f"(one of {sorted(datasets)}), got {preset.get('prior_source')!r}")
        if preset.get("continues") is not None:
            base = methods.get(preset["continues"])
            if base is None or base["labeler"] == "none" or preset["continues"] == name:
                raise DarsError(f"{where}.continues: {preset['continues']!r} must name another self-training "
                                f"preset (its rounds < k are this preset's teachers)")
        _check_schedule(preset, where, config["rounds"])
    _check_schedule(config["schedule"], "config key schedule", config["rounds"])
    for name, ds in datasets.items():
        for split, sched in (ds.get("schedules") or {}).items():
            _check_schedule(sched, f"config key datasets.{name}.schedules.{split}", config["rounds"])


def _check_schedule(sched, where, rounds):
    """alpha and scale_enlarge, where given, must cover every round and be in range."""
    alphas = sched.get("alpha")
    if alphas is not None:
        if len(alphas) < rounds:
            raise DarsError(f"{where}.alpha: lists {len(alphas)} rounds but rounds = {rounds}")
        for a in alphas:
            if not 0 < a <= 1:
                raise DarsError(f"{where}.alpha: {a} is outside (0, 1]")
    betas = sched.get("scale_enlarge")
    if betas is not None:
        if len(betas) < rounds:
            raise DarsError(f"{where}.scale_enlarge: lists {len(betas)} rounds but rounds = {rounds}")
        for b in betas:
            if len(b) != 2 or not 0 <= b[0] < 1 or b[1] < 0:
                raise DarsError(f"{where}.scale_enlarge: {b} must be [beta_min, beta_max] with "
                                "0 <= beta_min < 1 and beta_max >= 0")


def dataset(config, name):
    if name not in config["datasets"]:
        raise DarsError(f"dataset {name!r} is not configured; add it under datasets: in the config "
                        "(config.yaml or --configfile) "
                        f"(configured: {sorted(config['datasets'])})")
    return config["datasets"][name]


def layout_of(ds):
    """The layout of a configured dataset (its `datasets.<name>` entry)."""
    return ds.get("layout", DEFAULT_LAYOUT)


def is_adapted(config, name):
    """UDA: the dataset's labeled images come from another (source) dataset."""
    return dataset(config, name).get("source") is not None


def check_split(config, name, split):
    """UDA datasets have split 0 only (no target label is used); others 1/N with N >= 1."""
    if is_adapted(config, name) != (split == 0):
        if split == 0:
            raise DarsError(f"split0 means no labeled target image (domain adaptation); dataset {name} has no "
                            "`source:` in the config (config.yaml or --configfile). Ask for split1 (all labeled), "
                            "split8, ...")
        raise DarsError(f"dataset {name} adapts from {dataset(config, name)['source']}: ask for split0 "
                        "(its labeled images are the source's train set)")


def labeled_dataset(config, name):
    """The dataset whose train images make the labeled list: the source in UDA, else itself."""
    return dataset(config, name).get("source") or name


def generated_files(config, name):
    """Generated directories a dataset (and its UDA source) needs: [] for real datasets."""
    out = []
    for n in dict.fromkeys([name, labeled_dataset(config, name)]):
        root = dataset(config, n)["root"]
        gen = [g for g, d in config["datasets"].items() if "synthetic" in d and generated_root(g) == root]
        out += [generated_root(g) for g in gen]
    return out


@functools.lru_cache(maxsize=None)
def _train_pairs_found(layout, root):
    """Cached per (layout, root): a DAG asks once per split job, a tree is listed once."""
    return len(find_pairs(layout, root, "train"))


def check_prepared(config, name):
    """At DAG build (also under -n): the train labels of a real dataset (and of its UDA source)
    exist in train ids, else the error names the prepare command (the split stage would fail
    with it only when run). Generated datasets are checked by their own rule."""
    for n in dict.fromkeys([name, labeled_dataset(config, name)]):
        root = dataset_root(config, n)
        if root not in generated_files(config, n):
            check_dataset_labels(layout_of(dataset(config, n)), root, dataset(config, n))
            _train_pairs_found(layout_of(dataset(config, n)), root)


def dataset_root(config, name):
    """The dataset's root; a clear error if a real (non-synthetic) dataset's root is missing."""
    ds = dataset(config, name)
    root = Path(ds["root"])
    if str(root) in generated_files(config, name):
        return str(root)  # made by the synthesize rule
    if not root.is_dir():
        raise DarsError(f"config key datasets.{name}.root: {root} does not exist; point it at a directory "
                        f"in {layout_of(ds)} layout")
    try:
        check_root(layout_of(ds), root)
    except DarsError as e:
        raise DarsError(f"config key datasets.{name}.root: {e}") from None
    return str(root)


def round_methods(config, round_):
    """The presets run to `round_`: `compare_methods` at round 1, `later_rounds` (default: all of
    them) at rounds >= 2."""
    compare = list(config["compare_methods"])
    if round_ <= 1:
        return compare
    later = config.get("later_rounds")
    return compare if later is None else [m for m in compare if m in later]


def schedule(config, dataset_name, split, method):
    """alpha and scale_enlarge per round of `method` on (dataset, split): the preset's own values,
    else the dataset's schedule for this split, else the top-level schedule."""
    per_split = dataset(config, dataset_name).get("schedules") or {}
    base = per_split.get(split, per_split.get(str(split))) or config["schedule"]
    preset = config["methods"][method]
    return {k: preset.get(k, base.get(k, config["schedule"].get(k))) for k in ("alpha", "scale_enlarge")}


def pretrain_length(t):
    """(length, "steps" | "epochs") of round 0 under the merged train: keys `t`: pretrain_steps if
    set (whatever the split size), else pretrain_epochs; a cheaper variant (pretrain_budget < 1)
    scales it, every other setting kept."""
    unit = "steps" if t.get("pretrain_steps") else "epochs"
    full = t.get("pretrain_steps") or t["pretrain_epochs"]
    return max(1, round(full * t.get("pretrain_budget", 1.0))), unit


def train_settings(config, dataset_name, method, round_, seed, pretrain_preset=None, split=None):
    """Resolved settings of one training run (round 0: method is None; `pretrain_preset` names a
    round-0 variant from `pretrain_presets`, e.g. the augmentation ablation)."""
    ds = dataset(config, dataset_name)
    t = copy.deepcopy(config["train"])
    t.update(ds.get("train", {}))
    if pretrain_preset is not None:
        if round_ != 0 or pretrain_preset not in config.get("pretrain_presets", {}):
            raise DarsError(f"pretrain preset {pretrain_preset!r} is not under pretrain_presets: in the config "
                            "(config.yaml or --configfile)")
        t.update(config["pretrain_presets"][pretrain_preset])
    s = {
        "model": t["model"], "num_classes": class_set(layout_of(ds)).num_classes, "seed": seed, "round": round_,
        "batch_size": t["batch_size"], "crop": t["crop"], "resize": ds.get("resize"),
        "base_lr": t["base_lr"], "head_lr_mult": t["head_lr_mult"], "momentum": t["momentum"],
        "weight_decay": t["weight_decay"], "poly_power": t["poly_power"], "aux_weight": t["aux_weight"],
        "rotate": t["rotate"], "blur": t["blur"], "flip": t["flip"],
        "checkpoint_every": t["checkpoint_every"], "workers": t["workers"],
        "backbone_weights": t.get("backbone_weights"),
    }
    # Only when set: "auto" (bf16 and channels_last on CUDA) keeps settings, and so the resume
    # fingerprint and Snakemake's params, as they were before these knobs existed.
    s.update({k: t[k] for k in ("amp", "channels_last") if t.get(k, "auto") != "auto"})
    if t.get("compile"):
        s["compile"] = True
    # The authors' recipe knobs, likewise only when they differ from the embedded settings'.
    s.update({k: t[k] for k, default in RECIPE_DEFAULTS.items() if t.get(k, default) != default})
    if round_ == 0:
        s.update(mode="pretrain", epochs=t["pretrain_epochs"], scale_range=t["scale_range"],
                 batch_size=t.get("pretrain_batch_size") or t["batch_size"])
        length, unit = pretrain_length(t)
        s[unit] = length
    else:
        # Progressive strategy: round k enlarges round 0's scale range to
        # [s_min (1 - beta_min), s_max (1 + beta_max)].
        preset = config["methods"][method]
        beta_min, beta_max = schedule(config, dataset_name, split, method)["scale_enlarge"][round_ - 1]
        lo, hi = t["scale_range"]
        s.update(mode="supervised" if preset["labeler"] == "none" else "pseudo",
                 epochs=t["round_epochs"], scale_range=[round(lo * (1 - beta_min), 6), round(hi * (1 + beta_max), 6)],
                 reinit=preset.get("reinit", False))
    return s


def check_backbone_weights(config, dataset_name, method, round_, pretrain_preset=None, split=None):
    """At DAG build (also under -n): the backbone file of a run that loads one (round 0, or a
    round that reinitialises) exists, else one error naming it (dars.weights.check_present)."""
    s = train_settings(config, dataset_name, method, round_, 0, pretrain_preset, split)
    if round_ == 0 or s.get("reinit"):
        own = "backbone_weights" in (dataset(config, dataset_name).get("train") or {})
        check_present(s["backbone_weights"], f"datasets.{dataset_name}.train.backbone_weights" if own
                      else "train.backbone_weights")


def alpha(config, dataset_name, split, method, round_):
    if config["methods"][method]["labeler"] == "none":
        return None
    if config["methods"][method]["labeler"] == "truth":
        return 1.0  # the diagnostic labels every pixel of the unlabeled images with its ground truth
    return schedule(config, dataset_name, split, method)["alpha"][round_ - 1]


def run_identity(config, dataset_name, split, seed, method, round_, pretrain_preset=None):
    """What a miou.json records about the run that produced it."""
    s = train_settings(config, dataset_name, method, round_, seed, pretrain_preset, split)
    baseline = "baseline" if pretrain_preset is None else f"baseline_{pretrain_preset}"
    teacher = (Stage.round0(pretrain_preset) if method is None else Stage(method, round_)).teacher(config)
    identity = {"dataset": dataset_name, "split": split, "seed": seed, "round": round_,
                "method": method or baseline, "labeler": config["methods"][method]["labeler"] if method else None,
                "alpha": alpha(config, dataset_name, split, method, round_) if method else None,
                "scale_range": s["scale_range"], "model": s["model"], "epochs": s["epochs"],
                "pretrain_preset": pretrain_preset,
                "augment": {k: s[k] for k in ("rotate", "blur", "flip")},
                "source": dataset(config, dataset_name).get("source"),
                "teacher": teacher.directory if teacher else None}
    # Only when there is one: the params (and so the runs) of the other settings stay as they were.
    start = departure(s["model"], s["backbone_weights"])
    if start:
        identity["departures"] = [start]
    return identity
