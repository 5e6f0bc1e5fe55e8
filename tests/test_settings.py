"""Stage settings (dars/settings.py): built from the dicts dars.config writes, given back unchanged,
digested without the runtime-only keys, and a missing, unknown or contradictory key named."""
import argparse
import json

import pytest
import yaml
from helpers import REPO, TRAIN_SETTINGS
from snakemake.utils import validate

from dars.config import train_settings
from dars.io import DarsError
from dars.settings import RUNTIME_ONLY, PredictSettings, TrainSettings, json_argument


@pytest.fixture(scope="module")
def config():
    """config.yaml as the workflow sees it: validated, schema defaults filled in."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    return config


@pytest.mark.parametrize("method, round_", [(None, 0), ("dars", 1), ("supervised", 2)])
def test_settings_from_the_config_go_through_json_unchanged(config, method, round_):
    """What the train rule passes as `--settings` JSON builds a TrainSettings whose to_dict() is
    that JSON again, key order included (checkpoints store it, the fingerprint digests it)."""
    resolved = train_settings(config, "synthetic_evidence", method, round_, 0)
    source = json.loads(json.dumps(resolved))
    s = TrainSettings.of(source)
    assert json.dumps(s.to_dict()) == json.dumps(source)
    assert (s.model, s.round, s.seed) == (resolved["model"], round_, 0)
    assert s.mode == {0: "pretrain"}.get(round_, resolved["mode"])


def test_compile_changes_the_settings_but_not_the_digest():
    plain = TrainSettings.of(TRAIN_SETTINGS)
    compiled = TrainSettings.of(dict(TRAIN_SETTINGS, compile=True))
    assert RUNTIME_ONLY == ("compile",)
    assert compiled != plain and compiled.to_dict()["compile"] is True and "compile" not in plain.to_dict()
    assert compiled.digest() == plain.digest()


@pytest.mark.parametrize("key", sorted(TRAIN_SETTINGS))
def test_every_other_setting_changes_the_digest(key):
    value = TRAIN_SETTINGS[key]
    changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v * 2, str: lambda v: v + "x",
               list: lambda v: v + [1], type(None): lambda v: [64, 128]}[type(value)](value)
    digest = TrainSettings.of(TRAIN_SETTINGS).digest()
    assert TrainSettings.of(dict(TRAIN_SETTINGS, **{key: changed})).digest() != digest


def test_the_digest_does_not_depend_on_the_key_order():
    reordered = dict(reversed(list(TRAIN_SETTINGS.items())))
    assert list(TrainSettings.of(reordered).to_dict()) == list(reordered)
    assert TrainSettings.of(reordered).digest() == TrainSettings.of(TRAIN_SETTINGS).digest()


def test_optional_fields_appear_in_the_dict_only_when_set_to_a_non_default():
    fields = TrainSettings(**TRAIN_SETTINGS).to_dict()
    assert fields == TRAIN_SETTINGS
    s = TrainSettings(**dict(TRAIN_SETTINGS, amp="bf16", reinit=False))
    assert s.to_dict() == dict(TRAIN_SETTINGS, amp="bf16")  # reinit=False is its default


@pytest.mark.parametrize("missing", ["base_lr", "crop", "model"])
def test_a_missing_train_setting_is_named(missing):
    with pytest.raises(DarsError, match=f"train settings lack {missing} "):
        TrainSettings.of({k: v for k, v in TRAIN_SETTINGS.items() if k != missing})


def test_predict_settings_defaults_and_values():
    assert PredictSettings.of(None) == PredictSettings.of({}) == PredictSettings()
    s = PredictSettings.of({"mode": "slide", "window": [32, 48], "flip": False})
    assert (s.mode, s.window, s.flip, s.batch_windows, s.amp) == ("slide", [32, 48], False, 8, "auto")
    assert PredictSettings.of(s) is s


def test_an_unknown_prediction_setting_is_named_with_the_known_ones():
    with pytest.raises(DarsError) as e:
        PredictSettings.of({"mode": "slide", "windw": [32, 48]})
    assert "['windw'] unknown" in str(e.value) and "'window'" in str(e.value) and "'resize_long'" in str(e.value)


def test_resize_and_resize_long_exclude_each_other_by_name():
    with pytest.raises(DarsError, match="resize .* and resize_long .* exclude each other"):
        PredictSettings.of({"resize": [64, 128], "resize_long": 128})


def test_a_json_option_that_is_not_json_is_an_argparse_error():
    assert json_argument('{"flip": false}') == {"flip": False}
    with pytest.raises(argparse.ArgumentTypeError, match="^not JSON: "):
        json_argument("{flip: false}")
