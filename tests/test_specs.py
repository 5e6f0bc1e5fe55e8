"""Specs (dars/specs.py, dars/paper.py, dars/finding.py): rows found by role not by printed label,
the schema owning the `paper:` and `evidence:` keys, and spec building without pandas."""
import copy
import subprocess
import sys

import jsonschema
import pytest
import yaml
from helpers import REPO

from dars import finding, paper, specs


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_rows_carry_preset_and_role(config):
    rows = specs.typed_rows(config, config["paper"]["compare"])
    assert [(r.preset, r.role) for r in rows] == [("round0", "round0"), ("supervised", "control"), ("st", "st"),
                                                  ("cbst", "cbst"), ("dars", "dars")]
    assert specs.role(config, "dars_est") == "dars_est" and specs.role(config, "dars_a20") == "dars"


def _rename(mapping, old, new):
    return {new if k == old else k: v for k, v in mapping.items()}


def test_renaming_the_dars_row_keeps_its_gain_rows(config):
    """The DARS row is the preset with labeler dars, whatever config calls it: a renamed row keeps
    its gains against CBST and ST (S4), its S1 reference, its S5 column and its panels."""
    before = {name: paper.table_spec(config, name) for name in ("s1", "s4", "s5")}
    config["paper"]["compare"] = _rename(config["paper"]["compare"], "DARS", "Ours")
    s4 = paper.table_spec(config, "s4")
    assert ["Ours", "CBST"] in s4["gains"] and ["Ours", "ST"] in s4["gains"]
    assert [[a.replace("Ours", "DARS"), b] for a, b in s4["gains"]] == before["s4"]["gains"]
    assert paper.table_spec(config, "s1")["reference"] == before["s1"]["reference"] != {}
    assert paper.table_spec(config, "s5")["columns"] == before["s5"]["columns"]
    panels = paper.figure_spec(config, "panels")["runs"]
    assert list(panels) == ["ST r1", "CBST r1", "Ours r1", "Ours r2"]


def test_renaming_evidence_rows_keeps_their_comparisons(config):
    config["evidence"]["methods"] = _rename(_rename(config["evidence"]["methods"], "DARS", "Ours"), "DARS-est", "est")
    config["evidence"]["round2"] = ["Ours"]
    pairs = [(a, b) for _, a, b in specs.evidence_spec(config)["comparisons"]]
    for pair in [("Ours r1", "CBST r1"), ("Ours r1", "ST r1"), ("est r1", "Ours r1"), ("Ours r2", "Ours r1")]:
        assert pair in pairs
    # The finding takes its labels from evidence.methods: the same pairs under the new label.
    config.update(dataset="synthetic_evidence", split=8)
    found = [(a, b) for _, a, b in finding.spec(config, "synthetic_evidence", 8)["comparisons"]]
    assert ("Ours r1", "CBST r1") in found and ("Ours r1", "ST r1") in found


def test_s6_and_the_run_report_compare_against_round_0_and_the_control_only(config):
    s6 = paper.table_spec(config, "s6")
    assert all(b == "Source only" for _, b in s6["gains"])
    report = paper.run_specs(config, "synthetic", 4, 1)["per_class"]
    assert report["gains"] == [["supervised", "round 0"], ["st", "round 0"], ["cbst", "round 0"],
                               ["dars", "round 0"], ["st", "supervised"], ["cbst", "supervised"],
                               ["dars", "supervised"]]


@pytest.mark.parametrize("section, key", [("paper", "compare"), ("paper", "figure_images"), ("paper", "uda_dataset"),
                                          ("evidence", "round2"), ("evidence", "control")])
def test_the_schema_requires_each_section_key(config, section, key):
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    jsonschema.validate(config, schema)
    broken = copy.deepcopy(config)
    del broken[section][key]
    with pytest.raises(jsonschema.ValidationError, match=repr(key)):
        jsonschema.validate(broken, schema)


@pytest.mark.parametrize("section, key, value, message", [
    ("evidence", "seeds", [1, 1], "non-unique"), ("evidence", "seeds", [1], "too short"),
    ("paper", "compare", {}, "should be non-empty|does not have enough properties"),
    ("paper", "typo", 1, "Additional properties")])
def test_the_schema_refuses_bad_section_values(config, section, key, value, message):
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    config[section][key] = value
    with pytest.raises(jsonschema.ValidationError, match=message):
        jsonschema.validate(config, schema)


def test_cross_references_are_checked_by_name(config):
    from dars.io import DarsError
    config["evidence"]["methods"]["X"] = "nonexistent"
    with pytest.raises(DarsError, match="evidence.methods.X"):
        specs.evidence_spec(config)
    config["paper"]["uda_dataset"] = "nowhere"
    with pytest.raises(DarsError, match="paper.uda_dataset"):
        paper.table_spec(config, "s6")


def test_figure_inputs_are_what_the_figure_reads(config):
    panels = paper.figure_spec(config, "panels")
    inputs = specs.figure_inputs(panels)
    assert panels["pseudo_list"] in inputs and set(panels["runs"].values()) <= set(inputs)
    assert len(inputs) == len(set(inputs))  # the DARS round-1 list is both a run and the image list
    bars = paper.run_specs(config, "synthetic", 4, 1)["iou_bars"]
    assert specs.figure_inputs(bars) == [bars["val_prior"]] + [f for files in bars["runs"].values() for f in files]
    predictions = paper.figure_spec(config, "predictions")
    assert specs.figure_inputs(predictions) == list(predictions["checkpoints"].values())


def test_building_every_spec_imports_no_pandas():
    """What the workflow calls at DAG-build time (paper, evidence and finding specs, their input
    listings) runs without pandas or torch: a dry run never loads the renderers."""
    code = """
import sys, yaml
from dars import finding, paper, specs
config = yaml.safe_load(open("config.yaml"))
for name in paper.TABLES:
    specs.spec_inputs(paper.table_spec(config, name))
for name in paper.FIGURES:
    specs.figure_inputs(paper.figure_spec(config, name))
paper.run_report_files(config, "synthetic", 4, 2)
specs.evidence_inputs(specs.evidence_spec(config))
config.update(dataset="synthetic_evidence", split=8)
specs.evidence_inputs(finding.spec(config, "synthetic_evidence", 8)), finding.files(config)
print([m for m in ("pandas", "torch", "matplotlib", "dars.render", "dars.tables", "dars.evidence")
       if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
