"""The default target's finding: what pseudo labels add, against the compute-matched control,
on the configured dataset, split and seeds, with the two gates that say whether the comparison
means anything (round 0 converged, labels the limit).

It is the `evidence` comparison (dars.evidence: same rows, gates, paired gains and pseudo-label
diagnostics) on the top-level `dataset`, `split` and `seeds` of config.yaml: the rows are
`compare_methods` at round 1 (the first preset without a labeler is the control) and
`later_rounds` at round 2, plus round 0 and the oracle (every label, round 0's recipe). Its runs
are the same files as evidence's where the settings agree, so `snakemake` (seed 0) and
`snakemake evidence` (seeds 0-4) never train a run twice.

Besides evidence's md/csv/html it writes `finding.txt`, the closing table that Snakemake's
onsuccess prints: per method, round-1 and round-2 mIoU, tail mIoU, the gain against the
control, then the gate lines (dars.evidence.write_finding renders them all). This module only
builds the spec and lists the files, so planning imports no renderer.
"""
import os
import time
from pathlib import Path

from .config import round_methods
from .io import DarsError
from .paths import FINDING
from .specs import evidence_spec, load_spec

FILES = ("md", "csv", "html", "txt")


def finding_file(config, ext):
    """results/{dataset}/split{split}/finding.{ext} of the configured dataset and split."""
    return f"{FINDING.format(dataset=config['dataset'], split=config['split'])}.{ext}"


def files(config):
    """The finding's files, or [] where there is none: a domain-adaptation setting (split 0) has
    no oracle split to gate on."""
    ds = config["datasets"][config["dataset"]]
    if config["split"] < 2 or ds.get("source"):
        return []
    return [finding_file(config, ext) for ext in FILES]


def section(config, dataset, split):
    """The evidence section (dars.specs.evidence_spec) of the finding on `dataset` and `split`; row
    labels are evidence's (`evidence.methods`: ST, CBST, DARS) where a preset has one, else the
    preset's name."""
    compare = list(config["compare_methods"])
    controls = [m for m in compare if config["methods"][m]["labeler"] == "none"]
    if not controls:
        raise DarsError("config key compare_methods: the finding needs a control (a preset with labeler none, "
                        f"e.g. supervised) among {compare}")
    control = controls[0]
    labels = {preset: label for label, preset in (config.get("evidence") or {}).get("methods", {}).items()}
    methods = {labels.get(m, m): m for m in compare if m != control}
    later = round_methods(config, 2) if config["rounds"] >= 2 else []
    if dataset not in config["datasets"] or int(split) < 2 or config["datasets"][dataset].get("source"):
        raise DarsError(f"finding of {dataset} split {split}: needs a semi-supervised dataset under datasets: "
                        "and a split of at least 2 (the oracle gate trains on every label)")
    return {"dataset": dataset, "split": int(split), "seeds": list(config["seeds"]),
            "control": control, "methods": methods, "round2": [labels.get(m, m) for m in later if m != control]}


def spec(config, dataset, split):
    return evidence_spec(config, section=section(config, dataset, split))


def show(config, since):
    """Print the closing table when this run (started at `since`, a time.time()) wrote it."""
    paths = files(config)
    txt = Path(paths[-1]) if paths else None
    if txt is not None and txt.is_file() and os.path.getmtime(txt) >= since:
        print(f"\n{txt.read_text()}\n(all tables: {finding_file(config, 'md')}; five seeds: "
              "`snakemake --cores 2 evidence`)\n", flush=True)


START = time.time()  # when the Snakefile imported this module: the run's start, for show()


def add_arguments(parser):
    """the default target's finding: evidence tables plus the console's closing table"""
    parser.add_argument("--spec", required=True, help="the spec as inline JSON or a JSON file (dars.finding.spec)")
    for ext in FILES:
        parser.add_argument(f"--out-{ext}", required=True)


def main(args):
    from .evidence import write_finding  # the renderer: pandas, imported for this command only
    gates = write_finding(load_spec(args.spec), args.out_md, args.out_csv, args.out_html, args.out_txt)
    print(open(args.out_txt).read())
    if not all(ok for ok, _ in gates.values()):
        print("a gate failed: see the gate lines above", flush=True)


COMMANDS = {"finding": (add_arguments, main)}
