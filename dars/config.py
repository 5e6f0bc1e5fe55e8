"""Resolve the validated config into the settings of one stage; semantic checks with clear errors.

The Snakemake workflow validates config.yaml against workflow/schemas/config.schema.yaml
(types, ranges, defaults), then calls `check` for what a schema cannot say."""
import copy
from pathlib import Path

from .classes import NUM_CLASSES
from .io import DarsError

LABELERS = ("none", "st", "cbst", "dars", "da")
RESERVED = {"round0", "split", "data"}


def check(config):
    datasets, methods = config["datasets"], config["methods"]
    if config["dataset"] not in datasets:
        raise DarsError(f"config key dataset: {config['dataset']!r} is not one of datasets: {sorted(datasets)}")
    for key in ("default_method",):
        if config[key] not in methods:
            raise DarsError(f"config key {key}: method {config[key]!r} is unknown; presets are {sorted(methods)}")
    for m in config["compare_methods"]:
        if m not in methods:
            raise DarsError(f"config key compare_methods: method {m!r} is unknown; presets are {sorted(methods)}")
    for name, preset in methods.items():
        where = f"config key methods.{name}"
        if name in RESERVED or not name.replace("_", "").isalnum():
            raise DarsError(f"{where}: preset names must be alphanumeric and not one of {sorted(RESERVED)}")
        if preset["labeler"] not in LABELERS:
            raise DarsError(f"{where}.labeler: {preset['labeler']!r} is unknown; choose one of {LABELERS}")
        if preset.get("prior", "labeled") != "labeled" and preset["labeler"] not in ("dars", "da"):
            raise DarsError(f"{where}.prior: only the dars and da labelers use a class prior")
        if preset.get("prior") == "sd" and preset.get("prior_source") not in datasets:
            raise DarsError(f"{where}.prior_source: prior sd needs the name of a configured dataset "
                            f"(one of {sorted(datasets)}), got {preset.get('prior_source')!r}")
        if preset["labeler"] != "none":
            alphas = preset.get("alpha") or []
            if len(alphas) < config["rounds"]:
                raise DarsError(f"{where}.alpha: lists {len(alphas)} rounds but rounds = {config['rounds']}")
            for a in alphas:
                if not 0 < a <= 1:
                    raise DarsError(f"{where}.alpha: {a} is outside (0, 1]")
        if len(preset["scale_range"]) < config["rounds"]:
            raise DarsError(f"{where}.scale_range: lists {len(preset['scale_range'])} rounds "
                            f"but rounds = {config['rounds']}")
        for lo, hi in preset["scale_range"]:
            if not 0 < lo <= hi:
                raise DarsError(f"{where}.scale_range: [{lo}, {hi}] must satisfy 0 < min <= max")


def dataset(config, name):
    if name not in config["datasets"]:
        raise DarsError(f"dataset {name!r} is not configured; add it under datasets: in config.yaml "
                        f"(configured: {sorted(config['datasets'])})")
    return config["datasets"][name]


def dataset_root(config, name):
    """The dataset's root; a clear error if a real (non-synthetic) dataset's root is missing."""
    ds = dataset(config, name)
    root = Path(ds["root"])
    if "synthetic" not in ds and not (root / "leftImg8bit").is_dir():
        raise DarsError(f"config key datasets.{name}.root: {root} does not exist or has no leftImg8bit/; "
                        "point it at a directory in Cityscapes layout")
    return str(root)


def train_settings(config, dataset_name, method, round_, seed):
    """Resolved settings of one training run (round 0: method is None)."""
    ds = dataset(config, dataset_name)
    t = copy.deepcopy(config["train"])
    t.update(ds.get("train", {}))
    s = {
        "model": t["model"], "num_classes": NUM_CLASSES, "seed": seed, "round": round_,
        "batch_size": t["batch_size"], "crop": t["crop"], "resize": ds.get("resize"),
        "base_lr": t["base_lr"], "head_lr_mult": t["head_lr_mult"], "momentum": t["momentum"],
        "weight_decay": t["weight_decay"], "poly_power": t["poly_power"], "aux_weight": t["aux_weight"],
        "rotate": t["rotate"], "blur": t["blur"], "flip": t["flip"],
        "checkpoint_every": t["checkpoint_every"], "workers": t["workers"],
        "backbone_weights": t.get("backbone_weights"),
    }
    if round_ == 0:
        s.update(mode="pretrain", epochs=t["pretrain_epochs"], scale_range=t["scale_range"])
    else:
        preset = config["methods"][method]
        s.update(mode="supervised" if preset["labeler"] == "none" else "pseudo",
                 epochs=t["round_epochs"], scale_range=preset["scale_range"][round_ - 1],
                 reinit=preset.get("reinit", False))
    return s


def alpha(config, method, round_):
    preset = config["methods"][method]
    return None if preset["labeler"] == "none" else preset["alpha"][round_ - 1]


def run_identity(config, dataset_name, split, seed, method, round_):
    """What a miou.json records about the run that produced it."""
    s = train_settings(config, dataset_name, method, round_, seed)
    return {"dataset": dataset_name, "split": split, "seed": seed, "round": round_,
            "method": method or "baseline", "labeler": config["methods"][method]["labeler"] if method else None,
            "alpha": alpha(config, method, round_) if method else None,
            "scale_range": s["scale_range"], "model": s["model"], "epochs": s["epochs"]}
