"""On a real (single-node) Slurm cluster: the tiny pipeline runs every stage as a Slurm job
through `--profile slurm` (GPU stages asking for one of the cluster's two stand-in GPUs) and
gives exactly the mIoU of a local run; a failing job's Slurm log and error reach Snakemake's
output.

Needs root: .ci/slurm-up.sh installs slurm-wlm + munge with apt if missing and starts
munged, slurmctld and slurmd on localhost (and the tests stop them again if they started
them). Without root, apt, or a cluster that comes up, the tests are skipped and say why;
DARS_REQUIRE_SLURM=1 turns such a skip into a failure."""
import importlib.util
import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers import REPO, SNAKEMAKE, tiny_config, write_cityscapes_tree

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]  # every test runs Snakemake jobs through Slurm
# The repository's profile, then the test cluster's overrides (small limits, one thread per
# stage, squeue for job states, ...).
PROFILES = ["--profile", str(REPO / "slurm"), "--profile", str(REPO / "tests/slurm-ci")]
STAGES = {"synthesize", "split", "distribution", "pretrain", "infer", "pseudo_stats", "pseudo_thresholds",
          "pseudo_label", "pseudo_merge", "train", "evaluate", "aggregate", "method_table"}
GPU_STAGES = {"pretrain", "train", "infer", "evaluate"}  # gpu: 1 in slurm/config.yaml


def skip(reason):
    if os.environ.get("DARS_REQUIRE_SLURM") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def pid_alive(pidfile):
    try:
        os.kill(int(Path(pidfile).read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def cluster():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        skip('snakemake-executor-plugin-slurm is not installed (pip install -e ".[slurm]")')
    if os.geteuid() != 0:
        skip("the Slurm tests start a single-node cluster and need root")
    was_up = pid_alive("/run/slurm/slurmctld.pid") and pid_alive("/run/slurm/slurmd.pid")
    try:
        up = subprocess.run([str(REPO / ".ci/slurm-up.sh")], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        skip(".ci/slurm-up.sh did not finish within 300 s")
    if up.returncode != 0:
        skip(f"could not start Slurm with .ci/slurm-up.sh: {(up.stdout + up.stderr).strip()[-1500:]}")
    yield
    if not was_up:
        subprocess.run([str(REPO / ".ci/slurm-down.sh")], capture_output=True, timeout=120)


def snakemake(workdir, *args, timeout, env=None):
    """Start Snakemake in `workdir` under `timeout -k 30` (a hung status loop must not hang CI);
    its output goes to workdir/snakemake.out."""
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    with open(workdir / "snakemake.out", "w") as out:
        proc = subprocess.Popen(["timeout", "-k", "30", str(timeout), *SNAKEMAKE, *args], cwd=workdir,
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    proc.output, proc.limit = workdir / "snakemake.out", timeout
    return proc


def finish(proc):
    proc.wait(timeout=proc.limit + 60)
    return proc.returncode, proc.output.read_text()


def slurm_job(jobid):
    """`scontrol show job` as a dict (finished jobs stay known for MinJobAge, 900 s here)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True,
                         timeout=30).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def test_pipeline_on_slurm_runs_every_stage_as_a_job_and_matches_a_local_run(cluster, tmp_path):
    config = yaml.safe_dump(tiny_config(seeds=[0], compare_methods=["supervised", "dars"], rounds=1))
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    for d in (on_slurm, local):
        d.mkdir()
        (d / "config.yaml").write_text(config)
    # The local reference runs meanwhile (the Slurm run mostly waits on job-state polls). Both
    # give every stage one thread, so the CPU results must be bit-identical.
    reference = snakemake(local, "--cores", "1", timeout=600)
    proc = snakemake(on_slurm, *PROFILES, timeout=480, env={"DARS_SLURM_PARTITION": "debug"})
    rc, out = finish(proc)
    ref_rc, ref_out = finish(reference)
    assert rc == 0, out[-6000:]
    assert ref_rc == 0, ref_out[-3000:]

    # Every job the local run ran (but `all`) ran on Slurm, as its own job, in partition debug,
    # and completed; only `all` ran in the submitting process.
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", out)
    on_slurm_jobs = Counter(re.search(r"slurm_logs/rule_(\w+)/", log).group(1) for _, log in submitted)
    local_jobs = Counter(re.findall(r"^localrule (\w+):", ref_out, re.M))
    assert local_jobs.pop("all") == 1
    assert on_slurm_jobs == local_jobs, out[-6000:]
    assert STAGES <= set(on_slurm_jobs)
    assert re.findall(r"^localrule (\w+):", out, re.M) == ["all"]
    for jobid, log in submitted:
        assert Path(log).is_file(), log  # kept by slurm-keep-successful-logs
        job = slurm_job(jobid)
        assert job["JobState"] == "COMPLETED" and job["Partition"] == "debug", job
        rule = re.search(r"slurm_logs/rule_(\w+)/", log).group(1)
        # GPU stages got one (stand-in) GPU from Slurm, the others none.
        assert (job.get("TresPerJob") == "gres:gpu:1") == (rule in GPU_STAGES), (rule, job)

    res = "results/synthetic/split4/seed0"
    for stage in ("round0", "supervised/round1", "dars/round1"):
        a = json.loads((on_slurm / res / stage / "miou.json").read_text())
        b = json.loads((local / res / stage / "miou.json").read_text())
        assert a["miou"] == b["miou"], stage
        assert a == b, stage
    assert (on_slurm / "results/synthetic/split4/round1/methods.md").read_text() == \
        (local / "results/synthetic/split4/round1/methods.md").read_text()


def test_a_failing_slurm_job_shows_its_log_and_error(cluster, tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes")
    (tmp_path / "bad_list.txt").write_text(
        "leftImg8bit/train/nowhere/x_leftImg8bit.png gtFine/train/nowhere/x_gtFine_labelTrainIds.png\n")
    config = tiny_config()
    config["datasets"]["cityscapes"].update(root=str(root), split_lists={8: "bad_list.txt"})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rc, out = finish(snakemake(tmp_path, *PROFILES, "results/cityscapes/split8/seed0/split/split.json",
                               timeout=240, env={"DARS_SLURM_PARTITION": "debug"}))
    assert rc != 0, out[-4000:]
    jobid, slurm_log = re.search(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", out).groups()
    assert "Error in rule split" in out
    assert re.search(rf"SLURM-job '{jobid}' failed, SLURM status is: '(FAILED|COMPLETED)'", out) \
        or f"external_jobid: {jobid}" in out, out[-4000:]
    assert slurm_log in out and Path(slurm_log).is_file()
    # The stage's own error (its rule log, printed by show-failed-logs) names the bad entry.
    assert "does not exist under dataset root" in out and "bad_list.txt" in out, out[-4000:]
    assert "logs/cityscapes/split8/seed0/split.log" in out
