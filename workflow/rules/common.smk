# Configuration checks, wildcard constraints and input functions (all logic lives in dars.config).
import json
import re

import dars.config
from dars.io import DarsError

try:
    dars.config.check(config)
except DarsError as e:
    raise WorkflowError(f"config.yaml: {e}")

RUN = "results/{dataset}/split{split}/seed{seed}"
LOGS = "logs/{dataset}/split{split}/seed{seed}"
BENCHMARKS = "benchmarks/{dataset}/split{split}/seed{seed}"
METHODS = "|".join(map(re.escape, config["methods"]))
SHARDS = range(config["num_shards"])

wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    split=r"\d+",
    seed=r"\d+",
    round=r"\d+",
    shard=r"\d+",
    method=METHODS,
    stage=rf"round0|({METHODS})/round\d+",


def _root(wildcards):
    try:
        return dars.config.dataset_root(config, wildcards.dataset)
    except DarsError as e:
        raise WorkflowError(str(e))


def dataset_root(wildcards):
    """Param: the dataset root (checked to exist for real datasets)."""
    return _root(wildcards)


def dataset_files(wildcards):
    """Input: the generated tree for synthetic datasets, nothing for real ones."""
    _root(wildcards)
    ds = config["datasets"][wildcards.dataset]
    return [f"results/{wildcards.dataset}/data"] if "synthetic" in ds else []


def split_list_file(wildcards):
    lists = config["datasets"][wildcards.dataset].get("split_lists", {})
    return lists.get(wildcards.split) or lists.get(int(wildcards.split)) or []


def split_list_arg(wildcards):
    f = split_list_file(wildcards)
    return f"--list-file {f}" if f else ""


def stage_method_round(wildcards):
    """`round0` -> (None, 0); `dars/round2` -> ("dars", 2)."""
    if wildcards.stage == "round0":
        return None, 0
    method, round_ = wildcards.stage.split("/round")
    return method, int(round_)


def train_settings(wildcards):
    method = getattr(wildcards, "method", None)
    round_ = int(getattr(wildcards, "round", 0))
    return json.dumps(dars.config.train_settings(config, wildcards.dataset, method, round_, int(wildcards.seed)))


def predict_settings(wildcards):
    ds = config["datasets"][wildcards.dataset]
    return json.dumps({"resize": ds.get("resize"), "flip": config["evaluate"]["flip"]})


def run_identity(wildcards):
    method, round_ = stage_method_round(wildcards)
    return json.dumps(dars.config.run_identity(
        config, wildcards.dataset, int(wildcards.split), int(wildcards.seed), method, round_))


def teacher(wildcards):
    """Directory of the teacher of round {round}: round 0 for round 1, else the previous round."""
    r = int(wildcards.round)
    return f"{RUN}/round0" if r == 1 else f"{RUN}/{{method}}/round{r - 1}"


def teacher_checkpoint(wildcards):
    return expand(teacher(wildcards) + "/model.pt", **dict(wildcards.items()))


def labeler(wildcards):
    return config["methods"][wildcards.method]["labeler"]


def alpha(wildcards):
    return dars.config.alpha(config, wildcards.method, int(wildcards.round))


def pseudo_list(wildcards):
    """Input: the round's pseudo labels, or nothing for the supervised control."""
    if labeler(wildcards) == "none":
        return []
    return f"{RUN}/{{method}}/round{{round}}/pseudo_labels.txt".format(**dict(wildcards.items()))


def pseudo_arg(wildcards):
    f = pseudo_list(wildcards)
    return f"--pseudo {f}" if f else ""


def seed_runs(wildcards):
    """Per-seed miou.json files of the default method at {round}."""
    return expand(f"{RUN}/{{method}}/round{{round}}/miou.json", seed=config["seeds"],
                  method=config["default_method"], **dict(wildcards.items()))


def method_runs(wildcards):
    """Per-seed miou.json files of round 0 and of every compared method at {round}."""
    w = dict(wildcards.items())
    return (expand(f"{RUN}/round0/miou.json", seed=config["seeds"], **w)
            + expand(f"{RUN}/{{method}}/round{{round}}/miou.json", seed=config["seeds"],
                     method=config["compare_methods"], **w))


def synthetic_args(wildcards):
    gen = config["datasets"][wildcards.dataset].get("synthetic")
    if gen is None:
        raise WorkflowError(f"dataset {wildcards.dataset} is not synthetic: set datasets.{wildcards.dataset}.root "
                            "to its directory instead of asking for results/{wildcards.dataset}/data")
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in gen.items())


def teacher_hists(wildcards):
    return expand(teacher(wildcards) + "/hist/{shard}.npy", shard=SHARDS, **dict(wildcards.items()))


def teacher_shard(wildcards):
    return expand(teacher(wildcards) + "/shards/{shard}", **dict(wildcards.items()))


def method_prior(wildcards):
    """The class prior the preset's labeler aligns to."""
    source = config["methods"][wildcards.method].get("prior", "labeled")
    if source == "td":
        return f"{RUN}/prior_td.json".format(**dict(wildcards.items()))
    if source == "sd":
        return f"results/{config['methods'][wildcards.method]['prior_source']}/prior_sd.json"
    if source == "est":
        return f"{RUN}/{{method}}/round{{round}}/prior_est.json".format(**dict(wildcards.items()))
    return f"{RUN}/prior.json".format(**dict(wildcards.items()))


def teacher_shards(wildcards):
    return expand(teacher(wildcards) + "/shards/{shard}", shard=SHARDS, **dict(wildcards.items()))


def shard_output(path):
    """Teacher shards are large (3 bytes per pixel): with temp_shards they are deleted once every
    job of this run that reads them has finished, so disk does not grow with rounds."""
    return temp(directory(path)) if config["temp_shards"] else directory(path)
