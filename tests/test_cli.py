"""`python -m dars <stage>` through dars.__main__.main, in this process: every subcommand's help,
argument errors, a stage's own error naming the file (exit 2, one line, no traceback), and real
stage runs on a generated tree writing their outputs."""
import json
import logging

import pytest
from helpers import write_cityscapes_tree

from dars.__main__ import STAGES, build_parser, main

# A few subcommands' options, written out here (not read from the code under test).
OPTIONS = {
    "split": ["--root", "--dataset", "--split", "--seed", "--out-dir", "--list-file", "--layout", "--family",
              "--min-labeled", "--allow-unpaired"],
    "prior": ["--root", "--list", "--source", "--layout", "--truth", "--out"],
    "prior-est": ["--shards", "--prior", "--truth", "--out"],
    "train": ["--settings", "--nproc"],
    "inspect": [],
}


@pytest.fixture(autouse=True)
def logging_restored():
    """main() points the root logger at this test's (captured) stderr: give the next tests theirs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def help_of(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_lists_every_stage(capsys):
    out = " ".join(help_of(["--help"], capsys).split())  # argparse wraps the lines
    for stage, (_, line) in STAGES.items():
        assert stage in out and line in out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_subcommands_help_lists_its_options(stage, capsys):
    """Every stage module's COMMANDS entry loads and its help renders (a stray % in a help string
    would raise here), listing each option its parser has."""
    out = help_of([stage, "--help"], capsys)
    assert out.startswith(f"usage: python -m dars {stage} ")
    parser = build_parser([stage])
    sub = next(a for a in parser._actions if a.dest == "stage").choices[stage]
    options = [o for a in sub._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    assert options and all(o in out for o in options)
    assert all(o in options for o in OPTIONS.get(stage, []))


def test_an_unknown_stage_or_option_exits_2_naming_it(capsys):
    with pytest.raises(SystemExit) as e:
        main(["splitt"])
    assert e.value.code == 2 and "invalid choice: 'splitt'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["split", "--root", "r", "--dataset", "d", "--split", "8", "--seed", "0", "--out-dir", "o", "--sed", "1"])
    assert e.value.code == 2 and "unrecognized arguments: --sed 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["split", "--root", "r", "--dataset", "d", "--split", "eight", "--seed", "0", "--out-dir", "o"])
    assert e.value.code == 2 and "argument --split: invalid int value: 'eight'" in capsys.readouterr().err


def test_a_settings_option_that_is_not_json_exits_2_naming_it(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--settings", "{mode: slide}"])
    assert e.value.code == 2 and "argument --settings: not JSON" in capsys.readouterr().err


def test_a_missing_root_is_one_error_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "no such tree"
    code = main(["split", "--root", str(missing), "--dataset", "tiny", "--split", "4", "--seed", "0",
                 "--out-dir", str(tmp_path / "split")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("dars split: error: ") and str(missing) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "split").exists()


def test_a_directory_that_is_no_shard_is_named(tmp_path, capsys):
    (tmp_path / "prior.json").write_text(json.dumps({"shares": [0.5, 0.5]}))
    (tmp_path / "shard").mkdir()
    code = main(["prior-est", "--shards", str(tmp_path / "shard"), "--prior", str(tmp_path / "prior.json"),
                 "--out", str(tmp_path / "est.json")])
    err = capsys.readouterr().err
    assert err == f"dars prior-est: error: {tmp_path / 'shard'}: not a shard (no index.json); rerun the infer stage\n"
    assert code == 2
    assert not (tmp_path / "est.json").exists()


def test_split_then_prior_on_a_generated_tree(tmp_path, capsys):
    """The split and distribution rules' commands: lists of the labeled and unlabeled images, then
    the labeled set's class prior, counted from its labels."""
    root = write_cityscapes_tree(tmp_path / "cityscapes", num_train=8, num_val=2)
    out = tmp_path / "split"
    assert main(["split", "--root", str(root), "--dataset", "tiny", "--split", "4", "--seed", "0",
                 "--out-dir", str(out)]) == 0
    split = json.loads((out / "split.json").read_text())
    labeled = (out / "labeled.txt").read_text().splitlines()
    unlabeled = (out / "unlabeled.txt").read_text().splitlines()
    assert split["num_labeled"] == len(labeled) == 2 and split["num_unlabeled"] == len(unlabeled) == 6
    assert all(line.split()[0].startswith("leftImg8bit/train/") for line in labeled + unlabeled)
    assert not {line.split()[0] for line in labeled} & {line.split()[0] for line in unlabeled}
    assert main(["prior", "--root", str(root), "--list", str(out / "labeled.txt"), "--out",
                 str(tmp_path / "prior.json")]) == 0
    prior = json.loads((tmp_path / "prior.json").read_text())
    assert len(prior["shares"]) == 19 and abs(sum(prior["shares"]) - 1) < 1e-9
    assert sum(prior["counts"]) == 2 * (32 - 2) * 64  # two labeled 32x64 images, their top 2 rows void
    assert capsys.readouterr().err.count("Traceback") == 0
