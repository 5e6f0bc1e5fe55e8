# dars: self-training with re-distributed pseudo labels, as a Snakemake workflow.
# Read top to bottom: configuration, one rule file per stage, then the targets.
#   snakemake --cores 2                                   # the config's dataset/split, all rounds
#   snakemake --cores 8 results/cityscapes/split8/round2/miou.json
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"
validate(config, "workflow/schemas/config.schema.yaml")

include: "workflow/rules/common.smk"     # config checks, wildcard constraints, input functions
include: "workflow/rules/data.smk"       # synthesize the embedded dataset
include: "workflow/rules/split.smk"      # labeled / unlabeled lists
include: "workflow/rules/distribution.smk"  # class prior from labeled ground truth
include: "workflow/rules/pretrain.smk"   # round 0: supervised on labeled images
include: "workflow/rules/infer.smk"      # teacher inference -> shards
include: "workflow/rules/pseudolabel.smk"  # histograms -> thresholds -> pseudo labels
include: "workflow/rules/train.smk"      # round k student
include: "workflow/rules/evaluate.smk"   # mIoU on val
include: "workflow/rules/export.smk"     # official-format predictions (val check, test submission)
include: "workflow/rules/report.smk"     # mean/std over seeds, per-method tables
include: "workflow/rules/paper.smk"      # the supplementary's tables and figures (config paper:)
include: "workflow/rules/evidence.smk"   # gates + paired gains on a converged, label-limited setting

report: "workflow/report/workflow.rst"

onsuccess:
    dars.console.show_warnings(log)  # stages' warnings (e.g. classes without labeled pixels)
    dars.finding.show(config, dars.finding.START)  # the closing table, when this run built it

onerror:
    dars.console.show_warnings(log)
    dars.console.show_failed_logs(log)  # each failed stage's own message, on the console
    dars.console.show_progress(log)  # how far each failed or unfinished job got


rule all:
    input:
        expand(f"{AGG}/{{file}}",
               dataset=config["dataset"], split=config["split"],
               round=range(1, config["rounds"] + 1), file=["miou.json", "methods.md"]),
        dars.paper.run_report_files(config, config["dataset"], config["split"], config["rounds"]),
        dars.finding.files(config),  # gates and gains against the control: the closing table


rule paper:
    input:
        expand(f"{PAPER}/{{table}}.html", table=dars.paper.TABLES),
        expand(f"{PAPER}/{{figure}}.png", figure=dars.paper.FIGURES),
        f"{PAPER}/summary.html",  # each table beside the published one, with a direction verdict


rule evidence:
    input:
        f"{EVIDENCE}/evidence.md",
