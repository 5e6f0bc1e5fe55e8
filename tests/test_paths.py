"""The results tree (dars.paths): its stage identity, its layout, and paths with spaces and non-ASCII
characters through every rule's shell command (all quoted)."""
import json
import re

import pytest
from helpers import snakemake, tiny_config, uda_config, write_cityscapes_tree

from dars.paths import (
    EVIDENCE,
    FINDING,
    PAPER,
    Stage,
    generated_root,
    report_file,
    run_file,
    seed_file,
    source_prior,
    stage_pattern,
)


@pytest.mark.e2e
def test_pipeline_runs_with_spaces_and_non_ascii_in_every_path(tmp_path):
    workdir = tmp_path / "mes données ü"
    # The root is absolute (as a real dataset's is); the dataset's name puts a space and
    # non-ASCII characters into every output, log and input path the rules pass on.
    root = write_cityscapes_tree(workdir / "jeu de données é" / "cityscapes", num_train=8, num_val=2,
                                 height=64, width=128)
    name = "cités ü"
    config = tiny_config(dataset=name, seeds=[0], rounds=1, split=4, default_method="dars",
                         compare_methods=["dars"])
    config["datasets"][name] = {"root": str(root), "layout": "cityscapes"}
    config["train"].update(batch_size=2, pretrain_epochs=3, round_epochs=1)
    target = f"results/{name}/split4/round1/miou.json"  # aggregate over seeds: every stage up to it
    proc = snakemake(workdir, "--cores", "2", target, config=config, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads((workdir / target).read_text())
    assert result["method"] == "dars" and result["round"] == 1 and result["seeds"] == [0]
    assert 0 <= result["miou_mean"] <= 1


# The stage identity (dars.paths.Stage) and the results tree.

def test_a_stage_is_one_value_with_one_directory():
    assert Stage.round0().directory == "round0" and str(Stage.round0()) == "round0"
    assert Stage.round0("none").directory == "round0_none"
    assert Stage("dars", 2).directory == "dars/round2"
    assert Stage.parse("dars_a30/round2") == Stage("dars_a30", 2)
    assert Stage.parse("round0_none") == Stage(None, 0, "none")
    assert {Stage("dars", 1): 1}[Stage.parse("dars/round1")] == 1  # frozen: usable as a key


@pytest.mark.parametrize("directory", ["round1", "dars/round0", "dars", "dars/round", "round0_", "",
                                       "seed0/dars/round1", "dars/round1/pseudo"])
def test_a_path_that_is_no_stage_is_refused(directory):
    with pytest.raises(ValueError, match="not a stage"):
        Stage.parse(directory)


@pytest.mark.parametrize("fields", [("dars", 0, None), (None, 1, None), ("dars", 1, "none")])
def test_a_stage_that_cannot_exist_is_refused(fields):
    with pytest.raises(ValueError, match="not a stage"):
        Stage(*fields)


def test_the_teacher_of_a_round_is_the_previous_round_of_its_chain():
    config = {"methods": {"dars": {"labeler": "dars"}, "dars_a30": {"labeler": "dars", "continues": "dars"}}}
    assert Stage.round0().teacher(config) is None and Stage.round0("none").teacher(config) is None
    assert Stage("dars", 1).teacher(config) == Stage.round0()
    assert Stage("dars_a30", 1).teacher(config) == Stage.round0()
    assert Stage("dars", 3).teacher(config) == Stage("dars", 2)
    assert Stage("dars_a30", 2).teacher(config) == Stage("dars", 1)  # branches off the chain it continues


def test_the_stage_pattern_matches_exactly_the_configured_stages():
    pattern = stage_pattern(["dars", "st"], ["none"])
    for directory in ("round0", "round0_none", "dars/round1", "st/round12"):
        assert re.fullmatch(pattern, directory), directory
    for directory in ("round0_scaling", "cbst/round1", "dars/roundx", "round1"):
        assert not re.fullmatch(pattern, directory), directory
    assert re.fullmatch(stage_pattern(presets=[]), "round0") and not re.fullmatch(stage_pattern(presets=[]), "round0_x")
    assert not re.fullmatch(stage_pattern(presets=["none"]), "dars/round1")


def test_the_results_tree():
    assert run_file("cs", 8, 1, Stage("dars", 2)) == "results/cs/split8/seed1/dars/round2/miou.json"
    assert run_file("cs", 8, 1, "round0", "model.pt") == "results/cs/split8/seed1/round0/model.pt"
    assert seed_file("cs", 8, 1, "prior.json") == "results/cs/split8/seed1/prior.json"
    assert report_file("cs", 8, 2, "iou_bars", "png") == "results/cs/split8/round2/report/iou_bars.png"
    assert generated_root("synthetic") == "results/synthetic/data"
    assert source_prior("gta5") == "results/gta5/prior_sd.json"
    assert FINDING.format(dataset="cs", split=8) == "results/cs/split8/finding"
    assert (PAPER, EVIDENCE) == ("results/paper", "results/evidence")


def planned_jobs(tmp_path, config, *targets):
    """(rule, inputs, outputs) of every job `snakemake -n` plans."""
    proc = snakemake(tmp_path, "-n", *targets, config=config)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", proc.stdout + proc.stderr)[1:]:
        field = dict(re.findall(r"^\s+(input|output): (.*)$", block, flags=re.M))
        jobs.append((block.split(":")[0][5:], field.get("input", "").split(", "), field.get("output", "").split(", ")))
    return jobs


def test_every_stage_the_dag_plans_parses_back_to_its_directory_and_teacher(tmp_path):
    """Stage.parse round-trips every stage directory of the default target and the supplementary
    (round-0 presets, continued chains, UDA), and each student's planned teacher is Stage.teacher's."""
    config = uda_config()
    jobs = planned_jobs(tmp_path, config, "all", "paper")
    model = re.compile(r"results/[^/]+/split\d+/seed\d+/(.+)/model\.pt")
    stages = {model.fullmatch(out)[1] for _, _, outs in jobs for out in outs if model.fullmatch(out)}
    assert {"round0", "round0_none", "dars/round2", "dars_a30/round2", "dars_td/round1"} <= stages
    for directory in stages:
        assert Stage.parse(directory).directory == directory
    students = [(ins, outs) for rule, ins, outs in jobs if rule == "train"]
    assert len(students) > 10
    for ins, outs in students:
        student = Stage.parse(model.fullmatch(outs[0])[1])
        teacher = [model.fullmatch(i)[1] for i in ins if model.fullmatch(i)]
        assert teacher == [student.teacher(config).directory], (student, ins)
