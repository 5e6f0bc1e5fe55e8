"""dars.config: the checks a schema cannot make (each error names its config key), and what one
run resolves to (settings, identity, teacher)."""
import pytest
from helpers import REPO, tiny_config
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from dars import config as cfg
from dars import pseudo
from dars.io import DarsError

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def validated(**overrides):
    """The tiny config as the Snakefile sees it: validated against the schema, defaults filled in."""
    config = tiny_config(**overrides)
    validate(config, str(SCHEMA))
    return config


def test_the_schema_offers_exactly_the_labelers_pseudo_implements():
    """config.check leaves the labeler to the schema's enum: it must not drift from dars.pseudo."""
    import yaml
    schema = yaml.safe_load(SCHEMA.read_text())
    enum = schema["properties"]["methods"]["additionalProperties"]["properties"]["labeler"]["enum"]
    assert sorted(enum) == sorted(("none",) + pseudo.LABELERS)


def test_an_unknown_labeler_is_refused_by_the_schema():
    config = tiny_config()
    config["methods"]["mine"] = {"labeler": "otsu"}
    with pytest.raises(WorkflowError, match="otsu"):
        validate(config, str(SCHEMA))


def _preset(name, **preset):
    return lambda c: c["methods"].__setitem__(name, preset)


BAD = {  # what is wrong -> the config key its error names
    "dataset": (lambda c: c.update(dataset="nowhere"), "config key dataset:"),
    "split0": (lambda c: c.update(split=0), "config key split: split0 means no labeled target image"),
    "default_method": (lambda c: c.update(default_method="nope"), "config key default_method:"),
    "compare_methods": (lambda c: c.update(compare_methods=["st", "nope"]), "config key compare_methods:"),
    "reserved_name": (_preset("round0", labeler="st"), "config key methods.round0:"),
    "prior_of_st": (_preset("x", labeler="st", prior="td"), "config key methods.x.prior:"),
    "sd_source": (_preset("x", labeler="dars", prior="sd"), "config key methods.x.prior_source:"),
    "continues_control": (_preset("x", labeler="dars", continues="supervised"), "config key methods.x.continues:"),
    "short_alpha": (lambda c: c["schedule"].update(alpha=[0.2]), r"config key schedule.alpha: lists 1 rounds"),
    "alpha_range": (lambda c: c["schedule"].update(alpha=[0.2, 1.5]), r"schedule.alpha: 1.5 is outside"),
    "beta": (lambda c: c["schedule"].update(scale_enlarge=[[0, 0], [1, 0]]), r"schedule.scale_enlarge: \[1, 0\]"),
    "synthetic_root": (lambda c: c["datasets"]["synthetic"].update(root="data/mine"),
                       "config key datasets.synthetic.root: a synthetic dataset is generated into "
                       "results/synthetic/data"),
    "source": (lambda c: c["datasets"]["synthetic"].update(source="nowhere"), "config key datasets.synthetic.source:"),
}


@pytest.mark.parametrize("what", BAD)
def test_a_config_error_names_its_key(what):
    config = validated()
    cfg.check(config)  # the tiny config itself passes
    change, message = BAD[what]
    change(config)
    with pytest.raises(DarsError, match=message):
        cfg.check(config)


def test_an_unconfigured_dataset_or_root_is_named():
    config = validated()
    with pytest.raises(DarsError, match=r"dataset 'nope' is not configured; add it under datasets:"):
        cfg.dataset(config, "nope")
    config["datasets"]["mine"] = {"root": "/nonexistent/mine", "layout": "cityscapes"}
    with pytest.raises(DarsError, match=r"config key datasets.mine.root: /nonexistent/mine does not exist"):
        cfg.dataset_root(config, "mine")


def test_a_pretrain_preset_must_be_configured():
    with pytest.raises(DarsError, match="pretrain preset 'nope' is not under pretrain_presets"):
        cfg.train_settings(validated(), "synthetic", None, 0, 0, "nope")


def test_a_pretrain_preset_may_shorten_round_0_and_keeps_everything_else():
    config = validated()
    full = cfg.train_settings(config, "synthetic", None, 0, 0)
    none = cfg.train_settings(config, "synthetic", None, 0, 0, "none")
    assert config["pretrain_presets"]["none"]["pretrain_budget"] == 0.5
    assert (full["epochs"], none["epochs"]) == (3, 2)  # 3 epochs at half: rounded, at least 1
    assert "steps" not in none and none["base_lr"] == full["base_lr"]
    config["datasets"]["synthetic"]["train"] = {"pretrain_steps": 8000}
    assert cfg.train_settings(config, "synthetic", None, 0, 0, "none")["steps"] == 4000
    assert cfg.train_settings(config, "synthetic", None, 0, 0)["steps"] == 8000
    assert "pretrain_budget" not in cfg.train_settings(config, "synthetic", "dars", 1, 0, split=4)


def test_the_run_identity_names_the_method_and_its_teacher():
    config = validated()
    config["methods"]["dars_a30"] = {"labeler": "dars", "continues": "dars", "alpha": [0.2, 0.3]}
    identity = lambda *stage: cfg.run_identity(config, "synthetic", 4, 0, *stage)  # noqa: E731
    assert (identity(None, 0)["method"], identity(None, 0)["teacher"]) == ("baseline", None)
    none = identity(None, 0, "none")
    assert (none["method"], none["pretrain_preset"], none["teacher"]) == ("baseline_none", "none", None)
    assert none["augment"] == {"rotate": 0, "blur": False, "flip": False}
    assert identity("dars", 1)["teacher"] == "round0"
    assert identity("dars", 2)["teacher"] == "dars/round1"
    a30 = identity("dars_a30", 2)
    assert (a30["teacher"], a30["alpha"], a30["labeler"]) == ("dars/round1", 0.3, "dars")
    assert identity("supervised", 2)["alpha"] is None and identity("supervised", 2)["labeler"] == "none"


def test_round_k_enlarges_round_0s_scale_range():
    config = validated()
    config["schedule"]["scale_enlarge"] = [[0.0, 0.0], [0.5, 1.0]]
    lo, hi = cfg.train_settings(config, "synthetic", None, 0, 0)["scale_range"]
    assert cfg.train_settings(config, "synthetic", "dars", 1, 0, split=4)["scale_range"] == [lo, hi]
    assert cfg.train_settings(config, "synthetic", "dars", 2, 0, split=4)["scale_range"] == [
        round(lo * 0.5, 6), round(hi * 2.0, 6)]
    assert cfg.train_settings(config, "synthetic", "supervised", 2, 0, split=4)["mode"] == "supervised"


def test_later_rounds_keep_the_compared_methods_they_name():
    config = validated(compare_methods=["supervised", "st", "dars"], later_rounds=["dars", "cbst"])
    assert cfg.round_methods(config, 1) == ["supervised", "st", "dars"]
    assert cfg.round_methods(config, 2) == ["dars"]
    assert cfg.round_methods(validated(later_rounds=None), 3) == validated()["compare_methods"]
