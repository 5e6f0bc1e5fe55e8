# Configuration checks, wildcard constraints and input functions (all logic lives in dars.config).
import json
import re
import sys

import dars.config
import dars.console
import dars.finding
import dars.inputs
import dars.manifest
import dars.paper
import dars.paths
import dars.specs
from dars.io import DarsError

try:
    dars.config.check(config)
except DarsError as e:
    raise WorkflowError(f"the config (config.yaml or --configfile): {e}")

# Directory outputs (pseudo labels, shards, exports) against their manifests: Snakemake sees only
# a directory's timestamp, so a file deleted or edited inside one would go unnoticed (dars.manifest).
# Checked by the planning process only (a cluster job re-reads this file while others rebuild), and
# a directory named in --forcerun is being rebuilt, so it may be stale.
try:
    if workflow.is_main_process:
        dars.manifest.check_directory_outputs(rebuilding=dars.manifest.forcerun_targets(sys.argv))
except DarsError as e:
    print(f"Error: {e}", file=sys.stderr)
    raise SystemExit(1) from None

# Pipeline paths, in one block (the results tree is dars.paths). A run is a dataset/split/seed;
# its stages are round0 (and round0_<preset>) and <method>/round<k> (dars.paths.Stage). Each job
# logs and times itself under the same path.
RUN = dars.paths.RUN          # results/{dataset}/split{split}/seed{seed}
STAGE = f"{RUN}/{{stage}}"    # round0, round0_<preset> or <method>/round<k>
STAGE0 = f"{RUN}/{{stage0}}"  # round0 or round0_<preset> (pretrain)
ROUND = f"{RUN}/{{method}}/round{{round}}"  # self-training round k >= 1
AGG = dars.paths.AGG          # results/{dataset}/split{split}/round{round}: over seeds
DATA = dars.paths.DATA        # results/{dataset}/data: a generated dataset
SOURCE_PRIOR = dars.paths.SOURCE_PRIOR  # results/{dataset}/prior_sd.json
PAPER = dars.paths.PAPER
EVIDENCE = dars.paths.EVIDENCE
FINDING = dars.paths.FINDING  # results/{dataset}/split{split}/finding (the default target's)
LOGS = "logs/{dataset}/split{split}/seed{seed}"
BENCHMARKS = "benchmarks/{dataset}/split{split}/seed{seed}"
AGG_LOGS = "logs/{dataset}/split{split}/round{round}"
AGG_BENCHMARKS = "benchmarks/{dataset}/split{split}/round{round}"
# Every rule runs in this environment under `--software-deployment-method conda`.
ENV = "../../envs/dars.yaml"
METHODS = "|".join(map(re.escape, config["methods"]))
PRETRAIN_PRESETS = config.get("pretrain_presets", {})
SHARDS = range(config["num_shards"])

wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    split=r"\d+",
    seed=r"\d+",
    round=r"\d+",
    shard=r"\d+",
    method=METHODS,
    stage0=dars.paths.stage_pattern(presets=PRETRAIN_PRESETS),
    stage=dars.paths.stage_pattern(config["methods"], PRETRAIN_PRESETS),
    table="|".join(dars.paper.TABLES),
    figure="|".join(dars.paper.FIGURES),


def _config(function, *args):
    """`function(config, *args)`; its DarsError is printed as it is and the plan stops (exit 1):
    raised from an input function, it would come wrapped in InputFunctionException noise."""
    try:
        return function(config, *args)
    except DarsError as e:
        print(f"Error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def get_dataset_root(wildcards):
    """Param: the dataset root (checked to exist for real datasets)."""
    if "split" in wildcards.keys():
        _config(dars.config.check_split, wildcards.dataset, int(wildcards.split))
    return _config(dars.config.dataset_root, wildcards.dataset)


def get_layout(wildcards):
    return dars.config.layout_of(config["datasets"][wildcards.dataset])


def get_labeled_root(wildcards):
    """Param: the root the labeled list is relative to: the UDA source's, else the dataset's."""
    return _config(dars.config.dataset_root, dars.config.labeled_dataset(config, wildcards.dataset))


def get_dataset_files(wildcards):
    """Input: the generated trees of synthetic datasets (and of a UDA source), nothing for real
    ones, whose train labels are checked here (a tree still needing `prepare` fails the plan).
    Their files are inputs only of the rules that read them first (dataset_train_files,
    get_dataset_val_files): every later job depends on those, and thousands of inputs on every job
    would slow the plan down (0.5 s -> 18 s for 113 jobs over 3000 train pairs)."""
    get_dataset_root(wildcards)
    _config(dars.config.check_prepared, wildcards.dataset)
    return _config(dars.config.generated_files, wildcards.dataset)


def get_dataset_train_files(wildcards):
    """Input of the rules that read the train labels (split, the sd prior): a real dataset's
    train images and labels (its UDA source's too), listed once per tree, so that an edited
    label reruns the split and everything after it."""
    # The val set is listed too, not as an input (an edited val label reruns evaluation only):
    # one that cannot be evaluated in full fails the plan of every target, before any training.
    _config(dars.inputs.input_files, wildcards.dataset, "val")
    return get_dataset_files(wildcards) + _config(dars.inputs.input_files, wildcards.dataset)


def get_dataset_val_files(wildcards):
    """Input of the rules that read the val labels (evaluate, the td prior): a real dataset's val
    images and labels, so that an edited val label reruns them."""
    return _config(dars.inputs.input_files, wildcards.dataset, "val")


def get_split_args(wildcards):
    """Flags of the split stage: the get_layout, an imported list, or the UDA source. A list of
    arguments, so that the rule's `{params.args:q}` quotes each one (paths may hold spaces)."""
    args = ["--layout", get_layout(wildcards)]
    family = config["datasets"][wildcards.dataset].get("split_family", "random")
    if family != "random":  # the published list of that family, where it has one for this split
        args += ["--family", family]
    if config["datasets"][wildcards.dataset].get("min_labeled", 2) != 2:  # only when set: params of existing runs stay
        args += ["--min-labeled", str(config["datasets"][wildcards.dataset]["min_labeled"])]
    if config["datasets"][wildcards.dataset].get("allow_unpaired"):  # only when set, likewise
        args += ["--allow-unpaired"]
    if get_split_list_file(wildcards):
        args += ["--list-file", get_split_list_file(wildcards)]
    source = config["datasets"][wildcards.dataset].get("source")
    if source:
        args += ["--source-root", get_labeled_root(wildcards),
                 "--source-layout", dars.config.layout_of(config["datasets"][source])]
    return args


def get_split_list_file(wildcards):
    lists = config["datasets"][wildcards.dataset].get("split_lists", {})
    return lists.get(wildcards.split) or lists.get(int(wildcards.split)) or []


def trained_stage(wildcards):
    """The stage that pretrain ({stage0}) or train ({method}/round{round}) makes."""
    if "stage0" in wildcards.keys():
        return dars.paths.Stage.parse(wildcards.stage0)
    return dars.paths.Stage(wildcards.method, int(wildcards.round))


def get_train_settings(wildcards):
    stage = trained_stage(wildcards)
    return json.dumps(_config(dars.config.train_settings, wildcards.dataset, stage.method, stage.round,
                              int(wildcards.seed), stage.preset, int(wildcards.split)))


def get_predict_settings(wildcards):
    ds = config["datasets"][wildcards.dataset]
    ev = dict(config["evaluate"], **ds.get("evaluate", {}))
    settings = {"resize": ds.get("resize"), "flip": ev["flip"], "mode": ev["mode"], "window": ev["window"],
                "batch_windows": ev["batch_windows"], "amp": ev["amp"], "channels_last": ev["channels_last"]}
    for key, default in (("teacher_fusion", "probs"), ("resize_long", None)):
        if ev.get(key, default) != default:  # only when set: params of existing runs stay
            settings[key] = ev[key]
    from dars.settings import PredictSettings
    try:
        PredictSettings.of(settings)
    except DarsError as e:
        raise WorkflowError(f"datasets.{wildcards.dataset}: {e}")
    return json.dumps(settings)


def check_backbone_weights(wildcards):
    """Input of the training rules: nothing, but a run that starts from a backbone file that is
    missing fails the plan (also under -n), naming the file, its folder and the opt-out."""
    stage = trained_stage(wildcards)
    _config(dars.config.check_backbone_weights, wildcards.dataset, stage.method, stage.round, stage.preset,
            int(wildcards.split))
    return []


def get_run_identity(wildcards):
    stage = dars.paths.Stage.parse(wildcards.stage)
    return json.dumps(dars.config.run_identity(
        config, wildcards.dataset, int(wildcards.split), int(wildcards.seed), stage.method, stage.round, stage.preset))


def get_teacher_dir(wildcards):
    """Directory of the teacher of round {round}: round 0 for round 1, else the previous round of
    this preset's chain (or of the preset it `continues`)."""
    return f"{RUN}/{dars.paths.Stage(wildcards.method, int(wildcards.round)).teacher(config)}"


def get_teacher_checkpoint(wildcards):
    return expand(f"{get_teacher_dir(wildcards)}/model.pt", **dict(wildcards.items()))


def get_labeler(wildcards):
    return config["methods"][wildcards.method]["labeler"]


def get_alpha(wildcards):
    return dars.config.alpha(config, wildcards.dataset, int(wildcards.split), wildcards.method, int(wildcards.round))


def get_pseudo_list(wildcards):
    """Input: the round's pseudo labels, or nothing for the supervised control."""
    if get_labeler(wildcards) == "none":
        return []
    return f"{ROUND}/pseudo_labels.txt".format(**dict(wildcards.items()))


def get_pseudo_arg(wildcards):
    """Arguments (quoted one by one by `:q`): the pseudo-label list, none for the control."""
    f = get_pseudo_list(wildcards)
    return ["--pseudo", f] if f else []


def get_seed_runs(wildcards):
    """Per-seed miou.json files of the default method at {round}."""
    return expand(f"{ROUND}/miou.json", seed=config["seeds"],
                  method=config["default_method"], **dict(wildcards.items()))


def get_method_table_spec(wildcards):
    """The run report's per-class spec of {round}: methods.md is that table (dars.report.method_table)."""
    return _config(dars.paper.run_spec, wildcards.dataset, int(wildcards.split), int(wildcards.round), "per_class")


def get_method_table_spec_json(wildcards):
    return json.dumps(get_method_table_spec(wildcards))


def get_method_table_inputs(wildcards):
    return dars.specs.spec_inputs(get_method_table_spec(wildcards))


def get_synthetic_args(wildcards):
    gen = config["datasets"][wildcards.dataset].get("synthetic")
    if gen is None:
        raise WorkflowError(f"dataset {wildcards.dataset} is not synthetic: set datasets.{wildcards.dataset}.root "
                            f"to its directory instead of asking for {dars.paths.generated_root(wildcards.dataset)}")
    return [arg for k, v in gen.items() for arg in (f"--{k.replace('_', '-')}", str(v))]


def get_teacher_hists(wildcards):
    return expand(f"{get_teacher_dir(wildcards)}/hist/{{shard}}.npy", shard=SHARDS, **dict(wildcards.items()))


def get_teacher_shard(wildcards):
    return expand(f"{get_teacher_dir(wildcards)}/shards/{{shard}}", **dict(wildcards.items()))


def get_method_prior(wildcards):
    """The class prior the preset's labeler aligns to."""
    source = config["methods"][wildcards.method].get("prior", "labeled")
    if source == "td":
        return f"{RUN}/prior_td.json".format(**dict(wildcards.items()))
    if source == "sd":
        return dars.paths.source_prior(config["methods"][wildcards.method]["prior_source"])
    if source == "est":
        return f"{ROUND}/prior_est.json".format(**dict(wildcards.items()))
    return f"{RUN}/prior.json".format(**dict(wildcards.items()))


def get_truth_prior(wildcards):
    """Input of the prior rules: the val labels' prior (the truth each prior records its D_KL to,
    after it is fixed), where the dataset has val labels; else nothing."""
    if not _config(dars.inputs.has_val_labels, wildcards.dataset):
        return []
    return f"{RUN}/prior_td.json".format(**dict(wildcards.items()))


def get_truth_arg(wildcards):
    """Arguments (quoted one by one by `:q`): --truth and the val labels' prior, or none."""
    f = get_truth_prior(wildcards)
    return ["--truth", f] if f else []


def get_teacher_shards(wildcards):
    return expand(f"{get_teacher_dir(wildcards)}/shards/{{shard}}", shard=SHARDS, **dict(wildcards.items()))


def shard_output(path):
    """Teacher shards are large (3 bytes per pixel): with temp_shards they are deleted once every
    job of this run that reads them has finished, so disk does not grow with rounds."""
    return temp(directory(path)) if config["temp_shards"] else directory(path)


def get_paper_table_spec(wildcards):
    return json.dumps(_config(dars.paper.table_spec, wildcards.table))


def get_paper_table_inputs(wildcards):
    return dars.specs.spec_inputs(_config(dars.paper.table_spec, wildcards.table))


def get_paper_summary_spec(wildcards):
    return json.dumps(_config(dars.paper.summary_spec))


def get_paper_figure_spec(wildcards):
    return json.dumps(_config(dars.paper.figure_spec, wildcards.figure))


def get_paper_figure_inputs(wildcards):
    return dars.specs.figure_inputs(_config(dars.paper.figure_spec, wildcards.figure))


def get_evidence_spec(wildcards):
    return json.dumps(_config(dars.specs.evidence_spec))


def get_evidence_inputs(wildcards):
    return dars.specs.evidence_inputs(_config(dars.specs.evidence_spec))


def get_finding_spec(wildcards):
    return json.dumps(_config(dars.finding.spec, wildcards.dataset, int(wildcards.split)))


def get_finding_inputs(wildcards):
    return dars.specs.evidence_inputs(_config(dars.finding.spec, wildcards.dataset, int(wildcards.split)))


def get_run_report_spec(wildcards):
    """A table or figure of one dataset/split/round's report (dars.paper.run_specs)."""
    return _config(dars.paper.run_spec, wildcards.dataset, int(wildcards.split), int(wildcards.round),
                   wildcards.item)


def get_run_report_spec_json(wildcards):
    return json.dumps(get_run_report_spec(wildcards))


def get_run_table_inputs(wildcards):
    return dars.specs.spec_inputs(get_run_report_spec(wildcards))


def get_run_figure_inputs(wildcards):
    return dars.specs.figure_inputs(get_run_report_spec(wildcards))
