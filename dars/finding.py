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
control, then the gate lines.
"""
import os
import time
from pathlib import Path

from .config import round_methods
from .io import DarsError, atomic_path

FILES = ("md", "csv", "html", "txt")
COLUMNS = ("round 1", "round 2", "tail r1", "vs control r1", "vs control r2")
WIDTHS = (14, 14, 14, 20, 20)  # "42.5 ± 1.2", "+0.4 ± 0.2 [2/2]" fit


FINDING = "results/{dataset}/split{split}/finding"


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
    """The evidence section (dars.evidence.spec) of the finding on `dataset` and `split`; row
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
    from .evidence import spec as evidence_spec
    return evidence_spec(config, section=section(config, dataset, split))


def closing_table(spec_):
    """The console's closing table: one line per row, then the gates (dars.evidence.build)."""
    from .evidence import build
    from .tables import MINUS, fmt
    header, tables, gates = build(spec_)
    results, gains = ({label: vals for label, vals in t.rows} for t in tables[:2])
    control = spec_["control"]
    seeds = ", ".join(map(str, spec_["seeds"]))
    run0, oracle = results["round 0"], results["oracle (all labels)"]
    lines = [f"Finding: {spec_['dataset']}, 1/{spec_['split']} split, seed{'s' if len(spec_['seeds']) > 1 else ''} "
             f"{seeds}: mIoU (%), gains against the compute-matched control `{control}`",
             f"round 0 (labeled images only): {fmt(run0[1])}, tail {fmt(run0[2])}; oracle (every label): "
             f"{fmt(oracle[1])}", "", f"{'method':<12}" + "".join(f"{c:>{w}}" for c, w in zip(COLUMNS, WIDTHS))]
    methods = [row[:-len(" r1")] for row in spec_["rows"] if row.endswith(" r1")]  # the control first
    for label in methods:
        r1, r2 = results.get(f"{label} r1"), results.get(f"{label} r2")
        g1, g2 = (gains.get(f"{label} r{r} {MINUS} {control} r{r}") for r in (1, 2))
        cells = [r1[1] if r1 else None, r2[1] if r2 else None, r1[2] if r1 else None,
                 g1[0] if g1 else None, g2[0] if g2 else None]
        lines.append(f"{label:<12}" + "".join(f"{fmt(v):>{w}}" for v, w in zip(cells, WIDTHS)))
    lines += ["", *(text for _, text in gates.values())]
    return "\n".join(lines) + "\n"


def write(spec_, out_md, out_csv, out_html, out_txt):
    from .evidence import write as write_evidence
    gates = write_evidence(spec_, out_md, out_csv, out_html)
    with atomic_path(out_txt, suffix=".txt") as tmp:
        tmp.write_text(closing_table(spec_))
    return gates


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
    from .tables import load_spec
    gates = write(load_spec(args.spec), args.out_md, args.out_csv, args.out_html, args.out_txt)
    print(open(args.out_txt).read())
    if not all(ok for ok, _ in gates.values()):
        print("a gate failed: see the gate lines above", flush=True)


COMMANDS = {"finding": (add_arguments, main)}
