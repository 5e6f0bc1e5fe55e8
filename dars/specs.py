"""Specs: what a report reads, resolved from config.yaml into the per-run files (dars.paths) at
DAG-build time, so this module imports no pandas, numpy or torch of its own (the renderers, dars.tables
and dars.evidence, do).

A row of a spec is a `Row`: its printed label (config's, free to change), its method preset and
its `role`, which the preset's config says (round 0, the compute-matched control, or its
labeler and prior). Comparisons between rows (DARS against CBST, ...) are chosen by role, never
by label, so renaming a row in config never drops one.

The `evidence` spec (`evidence_spec`): per-seed miou.json of each row (and the pseudo_stats.json
of the rows that trained on pseudo labels), the comparisons, the files of the gates and
diagnostics; `evidence_inputs` lists every file it reads."""
import json
from dataclasses import dataclass

from .io import DarsError, read_json
from .paths import Stage, run_file, seed_file, source_prior

ROUND0 = "round0"  # the preset name of round 0 (the supervised baseline / source-only model)
CONTROL = "control"  # a preset with labeler none: labeled images only, the students' compute
# Method-against-method comparisons (a, b) by role, in their order in a table.
VERSUS = (("dars", "cbst"), ("dars", "st"), ("dars_est", "dars"))


@dataclass(frozen=True)
class Row:
    label: str  # as printed
    preset: str  # a method preset, or round0
    role: str  # round0, control, or the labeler (with its prior when not the labeled one: dars_est)


def role(config, preset):
    """What a preset is, whatever a table calls it: round0, control, or its labeler (st, cbst,
    dars, da, truth), with `_<prior>` for a dars/da labeler aligned to another prior than the
    labeled one (dars_est, dars_td, dars_sd)."""
    if preset == ROUND0:
        return ROUND0
    method = config["methods"][preset]
    if method["labeler"] == "none":
        return CONTROL
    prior = method.get("prior", "labeled")
    return method["labeler"] if prior == "labeled" or method["labeler"] not in ("dars", "da") \
        else f"{method['labeler']}_{prior}"


def typed_rows(config, presets):
    """[Row] of a {label: preset} mapping from config, in its order."""
    return [Row(label, preset, role(config, preset)) for label, preset in presets.items()]


def preset_stage(preset, round_):
    """The stage of a row's preset at `round_`: a round0 row is round 0's model at every round."""
    return Stage.round0() if preset == ROUND0 else Stage(preset, round_)


def first(rows_, role_):
    """The first row of a role, or None."""
    return next((r for r in rows_ if r.role == role_), None)


def versus(rows_):
    """[(row a, row b)] of the VERSUS comparisons both of whose roles have a row."""
    pairs = [(first(rows_, a), first(rows_, b)) for a, b in VERSUS]
    return [(a, b) for a, b in pairs if a and b]


def load_spec(text):
    """A spec given inline as JSON or as the path of a JSON file."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise DarsError(f"--spec: not valid JSON ({e})") from e
    return read_json(text)


def spec_inputs(spec):
    """Every file a table spec reads, for a Snakemake rule's input: the spec lists them all (the
    pseudo_stats.json files of a KL table included)."""
    found = []

    def walk(x):
        if isinstance(x, str) and x.endswith(".json"):
            found.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk({k: v for k, v in spec.items() if k not in ("kind", "title", "corner", "label", "gains", "method")})
    return list(dict.fromkeys(found))


def figure_inputs(spec):
    """Every file a figure spec reads, for a Snakemake rule's input: the spec lists them all (a
    panels figure names its runs' pseudo_labels.txt, a predictions figure its checkpoints)."""
    found = []
    for key in ("pseudo_list", "prior", "val_prior"):
        found += [spec[key]] if isinstance(spec.get(key), str) else list(spec.get(key) or [])
    for value in (spec.get("runs") or {}).values():
        found += [value] if isinstance(value, str) else list(value)
    found += list((spec.get("checkpoints") or {}).values())
    return list(dict.fromkeys(map(str, found)))


def method_prior(config, ds, split, seed, preset, round_=1):
    """The prior.json a preset's labeler aligned to at `round_` (the files the rules wire, see
    common.smk get_method_prior), or None for a preset that uses no prior (round 0, ST, CBST)."""
    m = config["methods"].get(preset) if preset != ROUND0 else None
    if not m or m["labeler"] not in ("dars", "da"):
        return None
    source = m.get("prior", "labeled")
    if source == "sd":
        return source_prior(m["prior_source"])
    if source == "est":
        return run_file(ds, split, seed, Stage(preset, round_), "prior_est.json")
    return seed_file(ds, split, seed, "prior_td.json" if source == "td" else "prior.json")


# ---------------------------------------------------------------- evidence

def evidence_section(config):
    """config.yaml's `evidence:` section, checked for what the schema cannot say (its keys and
    types are the schema's): the dataset and presets it names exist, the control has no labeler."""
    e = config.get("evidence")
    if not e:
        raise DarsError("config key evidence: missing; the evidence target needs it (see config.yaml)")
    if e["dataset"] not in config["datasets"]:
        raise DarsError(f"config key evidence.dataset: {e['dataset']!r} is not under datasets:")
    for label, name in [("control", e["control"])] + list(e["methods"].items()):
        if name not in config["methods"]:
            raise DarsError(f"config key evidence.methods.{label}: {name!r} is not a method preset")
    if config["methods"][e["control"]]["labeler"] != "none":
        raise DarsError(f"config key evidence.control: {e['control']!r} must be a preset with labeler none")
    for label in e["round2"]:
        if label not in e["methods"]:
            raise DarsError(f"config key evidence.round2: {label!r} is not a label of evidence.methods")
    if e["round2"] and config["rounds"] < 2:
        raise DarsError("config key evidence.round2: needs rounds >= 2")
    return e


def _comparisons(methods, control, round2):
    """[gate name or None, row a, row b]: the two gates, then every method against the control and
    round 0 (per round), the VERSUS pairs at round 1, and each round 2 against its round 1.
    `methods`: [Row] of the section's methods."""
    comparisons = [["converged", f"{control} r1", "round 0"], ["label_limited", "oracle (all labels)", "round 0"]]
    for r in (1, 2):
        labels = [m.label for m in methods if r == 1 or m.label in round2]
        comparisons += [[None, f"{label} r{r}", f"{control} r{r}"] for label in labels]
        comparisons += [[None, f"{label} r{r}", "round 0"] for label in labels]
    comparisons += [[None, f"{a.label} r1", f"{b.label} r1"] for a, b in versus(methods)]
    comparisons += [[None, f"{label} r2", f"{label} r1"] for label in round2]
    return comparisons


def _evidence_stages(control, methods, split, round2):
    """row label -> (stage, split) of its runs."""
    stages = {"round 0": (Stage.round0(), split), "oracle (all labels)": (Stage.round0(), 1),
              f"{control} r1": (Stage(control, 1), split)}
    stages.update({f"{label} r1": (Stage(name, 1), split) for label, name in methods.items()})
    if round2:
        stages[f"{control} r2"] = (Stage(control, 2), split)
        stages.update({f"{label} r2": (Stage(methods[label], 2), split) for label in round2})
    return stages


def evidence_spec(config, num_shards=None, section=None):
    """The evidence spec: row label -> per-seed miou.json files (and, for the methods' rows, their
    pseudo_stats.json files), the comparisons, the files of the gates and diagnostics. `section`:
    the experiment (dataset, split, seeds, control, methods, round2); default config `evidence:`."""
    e = section or evidence_section(config)
    ds, split, seeds, control, methods = e["dataset"], e["split"], e["seeds"], e["control"], dict(e["methods"])
    stages = _evidence_stages(control, methods, split, e["round2"])

    def cells(stage_, s, file="miou.json"):
        return [run_file(ds, s, seed, stage_, file) for seed in seeds]
    shards = range(num_shards if num_shards is not None else config["num_shards"])
    presets = {f"{label} r{r}": name for label, name in methods.items() for r in (1, 2)}
    priors = {k: [method_prior(config, ds, s, seed, presets[k], int(k[-1])) for seed in seeds]
              for k, (_, s) in stages.items() if k in presets}
    return {"priors": {k: f for k, f in priors.items() if f[0] is not None},
            "dataset": ds, "split": split, "seeds": seeds, "control": control,
            "rows": {k: cells(*v) for k, v in stages.items()},
            "pseudo_stats": {k: cells(*v, "pseudo_stats.json") for k, v in stages.items() if k in presets},
            "comparisons": _comparisons(typed_rows(config, methods), control, e["round2"]),
            "root": config["datasets"][ds]["root"],
            "val_prior": seed_file(ds, split, seeds[0], "prior_td.json"),
            "split_json": [seed_file(ds, split, seed, "split/split.json") for seed in seeds],
            "teacher_shards": [[run_file(ds, split, seed, Stage.round0(), f"shards/{k}") for k in shards]
                               for seed in seeds]}


def evidence_inputs(spec):
    """Every file and directory the evidence stage reads (a Snakemake rule's input)."""
    out = [f for files in spec["rows"].values() for f in files]
    out += [f for files in spec["pseudo_stats"].values() for f in files]
    out += [f for files in spec.get("priors", {}).values() for f in files]
    out += [spec["val_prior"]] + spec["split_json"] + [d for dirs in spec["teacher_shards"] for d in dirs]
    return out
