import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, put, snakemake, uda_config

import dars.io
import dars.prior
import dars.shards
from dars.infer import sample_pixels
from dars.inputs import has_val_labels
from dars.metrics import kl_divergence
from dars.prior import estimate_target_prior, posterior_mean, prior_est_stage, prior_stage
from dars.shards import Shard, ShardWriter


def teacher_posteriors(true_prior, train_prior, n, rng, sharpen=1.0, sep=3.0):
    """Pixels drawn with `true_prior`; the posteriors of a Bayes classifier trained under
    `train_prior` for 1-D Gaussian class-conditionals (calibrated), raised to 1 / `sharpen` and
    renormalised (sharpen < 1: over-confident, as a network that fit its labeled images)."""
    c = len(true_prior)
    y = rng.choice(c, size=n, p=true_prior)
    x = rng.normal(loc=y * sep, scale=1.0)
    log_post = (-0.5 * (x[:, None] - np.arange(c)[None] * sep) ** 2 + np.log(train_prior)) / sharpen
    post = np.exp(log_post - log_post.max(1, keepdims=True))
    return post / post.sum(1, keepdims=True)


@pytest.mark.parametrize("sharpen", [1.0, 0.5])
def test_the_estimate_recovers_a_shifted_prior(sharpen):
    rng = np.random.default_rng(0)
    train_prior = np.array([0.4, 0.3, 0.2, 0.1])
    true_prior = np.array([0.1, 0.2, 0.3, 0.4])
    probs = teacher_posteriors(true_prior, train_prior, 200_000, rng, sharpen)
    # The teacher's view (the posterior mean) recovers the shift within the teacher's error
    # (about 7% of the pixels misclassified), calibrated or over-confident: a hundredth of the
    # labeled prior's divergence, the classes in the truth's order.
    seen = posterior_mean(probs)
    assert kl_divergence(true_prior, seen) < kl_divergence(true_prior, train_prior) / 100
    assert np.abs(seen - true_prior).max() < 0.04 and (np.diff(seen) > 0).all()
    # The estimate averages it with the labeled prior (bench/prior_estimators.py: on the teachers
    # of the embedded settings, neither alone is as close), so it goes halfway: under a third of the
    # labeled prior's divergence here.
    est = estimate_target_prior(probs, train_prior)
    assert est == pytest.approx(0.5 * seen + 0.5 * train_prior, abs=1e-12) and abs(est.sum() - 1) < 1e-12
    assert kl_divergence(true_prior, est) < kl_divergence(true_prior, train_prior) / 3


def test_the_estimate_is_the_prior_itself_without_shift():
    rng = np.random.default_rng(1)
    prior = np.array([0.5, 0.3, 0.2])
    est = estimate_target_prior(teacher_posteriors(prior, prior, 100_000, rng), prior)
    assert np.abs(est - prior).max() < 0.01


def write_shards(tmp_path, rng, num_classes=3, images=2, label="missing/label.png"):
    """Two shards of random teacher outputs whose images name a label file (which need not exist)."""
    dirs = []
    for s in range(2):
        with ShardWriter(tmp_path / f"s{s}", num_classes) as w:
            for i in range(images):
                probs = rng.dirichlet([1] * num_classes, size=(4, 5)).astype(np.float32)
                flat = probs.reshape(-1, num_classes)
                iid = f"img{s}_{i}"
                w.add(iid, probs.argmax(-1).astype(np.uint8), probs.max(-1).astype(np.float16),
                      label=label, prob_sample=flat[sample_pixels(iid, 20, k=8)].astype(np.float16))
        dirs.append(tmp_path / f"s{s}")
    return dirs


def test_the_estimate_never_reads_labels_and_is_deterministic(tmp_path, monkeypatch):
    dirs = write_shards(tmp_path, np.random.default_rng(3))
    (tmp_path / "prior.json").write_text(json.dumps({"shares": [0.5, 0.3, 0.2]}))

    def no_labels(path, *a, **k):
        raise AssertionError(f"the estimator read a label: {path}")
    for module in (dars.io, dars.prior, dars.shards):
        monkeypatch.setattr(module, "read_label", no_labels, raising=False)
    prior_est_stage(dirs, tmp_path / "prior.json", tmp_path / "a.json")
    prior_est_stage(dirs, tmp_path / "prior.json", tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    # The truth is read after the estimate: whatever it says, the estimate is the same.
    for i, truth in enumerate(([0.1, 0.1, 0.8], [0.8, 0.1, 0.1])):
        (tmp_path / f"td{i}.json").write_text(json.dumps({"shares": truth}))
        prior_est_stage(dirs, tmp_path / "prior.json", tmp_path / f"t{i}.json", truth_json=tmp_path / f"td{i}.json")
        est = json.loads((tmp_path / f"t{i}.json").read_text())
        assert est["shares"] == json.loads((tmp_path / "a.json").read_text())["shares"]
        assert est["kl_true_prior"] == kl_divergence(truth, est["shares"])


def test_prior_est_runs_with_the_val_labels_unreadable(tiny_cityscapes, tmp_path):
    """A target whose val labels cannot be read (here: gone) still gets its estimate."""
    for label in (tiny_cityscapes / "gtFine/val").rglob("*.png"):
        label.unlink()
    dirs = write_shards(tmp_path, np.random.default_rng(4), label=None)
    (tmp_path / "prior.json").write_text(json.dumps({"shares": [0.5, 0.3, 0.2]}))
    subprocess.run([sys.executable, "-m", "dars", "prior-est", "--shards", *map(str, dirs), "--prior",
                    str(tmp_path / "prior.json"), "--out", str(tmp_path / "est.json")], check=True, cwd=REPO)
    est = json.loads((tmp_path / "est.json").read_text())
    samples = np.concatenate([Shard(d).prob_samples() for d in dirs]).astype(np.float64)
    mean = samples.mean(0) / samples.mean(0).sum()
    assert est["posterior_mean"] == pytest.approx(mean, abs=1e-12)
    assert est["shares"] == pytest.approx(0.5 * mean + 0.5 * np.array([0.5, 0.3, 0.2]), abs=1e-12)
    assert "kl_true_prior" not in est


def test_prior_est_stage_reads_shard_samples(tmp_path):
    rng = np.random.default_rng(2)
    with ShardWriter(tmp_path / "s0", 3) as w:
        for i in range(2):
            probs = rng.dirichlet([1, 1, 1], size=(4, 5)).astype(np.float32)
            flat = probs.reshape(-1, 3)
            pick = sample_pixels(f"img{i}", 20, k=8)
            w.add(f"img{i}", probs.argmax(-1).astype(np.uint8), probs.max(-1).astype(np.float16),
                  prob_sample=flat[pick].astype(np.float16))
    shard = Shard(tmp_path / "s0")
    assert shard.prob_samples().shape == (16, 3)
    (tmp_path / "prior.json").write_text(json.dumps({"shares": [0.5, 0.3, 0.2]}))
    prior_est_stage([tmp_path / "s0"], tmp_path / "prior.json", tmp_path / "est.json")
    est = json.loads((tmp_path / "est.json").read_text())
    assert est["source"] == "est" and est["num_samples"] == 16 and abs(sum(est["shares"]) - 1) < 1e-9


def test_sample_pixels_is_seeded_by_image_id():
    a, b = sample_pixels("x", 10_000), sample_pixels("x", 10_000)
    assert (a == b).all() and len(np.unique(a)) == 1024 and (np.diff(a) > 0).all()
    assert not (a == sample_pixels("y", 10_000)).all()
    assert (sample_pixels("x", 100) == np.arange(100)).all()


def test_td_prior_counts_val_labels(tiny_cityscapes, tmp_path):
    prior_stage(tiny_cityscapes, None, tmp_path / "td.json", source="td")
    td = json.loads((tmp_path / "td.json").read_text())
    assert td["source"] == "td" and td["list"] == "val" and td["num_pixels"] == 2 * (32 * 64 - 2 * 64)


def test_sd_prior_counts_train_labels_of_the_source(tiny_cityscapes, tmp_path):
    prior_stage(tiny_cityscapes, None, tmp_path / "sd.json", source="sd")
    sd = json.loads((tmp_path / "sd.json").read_text())
    assert sd["source"] == "sd" and sd["list"] == "train" and sd["num_pixels"] == 8 * (32 * 64 - 2 * 64)


def test_every_prior_records_its_distance_to_the_val_truth(tiny_cityscapes, tmp_path):
    prior_stage(tiny_cityscapes, None, tmp_path / "td.json", source="td")
    prior_stage(tiny_cityscapes, None, tmp_path / "sd.json", source="sd", truth_json=tmp_path / "td.json")
    td, sd = (json.loads((tmp_path / f).read_text()) for f in ("td.json", "sd.json"))
    assert td["kl_true_prior"] == 0.0 and td["truth"] == "itself"
    assert sd["truth"] == str(tmp_path / "td.json")
    assert sd["kl_true_prior"] == kl_divergence(td["shares"], sd["shares"]) > 0
    # Without a truth nothing is claimed.
    prior_stage(tiny_cityscapes, None, tmp_path / "plain.json", source="sd")
    assert "kl_true_prior" not in json.loads((tmp_path / "plain.json").read_text())


def test_the_truth_is_measurable_where_val_labels_exist(tiny_cityscapes):
    import yaml
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert has_val_labels(config, "synthetic_uda") and has_val_labels(config, "synthetic_evidence")
    assert not has_val_labels(config, "synthetic_game")  # the GTA5 stand-in has no val split
    config["datasets"]["mine"] = {"root": str(tiny_cityscapes)}
    assert has_val_labels(config, "mine")
    config["datasets"]["no_val"] = {"root": str(tiny_cityscapes.parent / "no_val")}
    shutil.copytree(tiny_cityscapes, tiny_cityscapes.parent / "no_val",
                    ignore=lambda d, names: ["val"] if "val" in names else [])
    assert not has_val_labels(config, "no_val")


def test_tables_show_each_rows_prior_distance(tmp_path):
    """S6/S7 (dars.tables) add D_KL(true || prior) of the prior each row aligned to: mean ± std over
    the seeds' prior.json kl_true_prior, – for rows without a prior (round 0, ST, CBST)."""
    import pandas as pd

    from dars import render, tables
    from dars.io import write_json
    base = [put(tmp_path, "baseline", s, 0, [0.9, 0.6, 0.1, None]) for s in range(3)]
    dars = [put(tmp_path, "dars", s, 1, [0.9, 0.6, 0.2, None], labeler="dars", alpha=0.2, kl=0.01) for s in range(3)]
    priors = []
    for s, kl in enumerate([0.10, 0.12, 0.17]):
        priors.append(str(tmp_path / f"seed{s}/prior.json"))
        write_json(priors[-1], {"shares": [0.7, 0.2, 0.1, 0.0], "kl_true_prior": kl})
    spec = {"kind": "kl", "title": "S7", "baseline": "Source only", "rows": {"Source only": base, "DARS": dars},
            "pseudo_stats": {"DARS": [f.replace("miou.json", "pseudo_stats.json") for f in dars]},
            "priors": {"DARS": priors}}
    tables.write_table(spec, tmp_path / "s7.csv", tmp_path / "s7.md")
    md = (tmp_path / "s7.md").read_text().splitlines()
    assert md[2] == "| method | D_KL(true ‖ prior) | D_KL(true ‖ pseudo) | mIoU (%) | gain (mIoU) |"
    assert md[4].startswith("| Source only | – | – |") and md[5].startswith("| DARS | 0.1300 ± 0.0361 | 0.0100")
    csv = pd.read_csv(tmp_path / "s7.csv")
    hit = csv[(csv.row == "DARS") & (csv.column == "D_KL(true ‖ prior)")].iloc[0]
    assert hit["metric"] == "kl_true_prior" and hit["values"] == "0.1;0.12;0.17"
    assert set(priors) <= set(tables.spec_inputs(spec))
    spec.update(kind="per_class", gains=[["DARS", "Source only"]])
    table = tables.build_table(spec)
    assert table.columns[-1] == "D_KL(true ‖ prior)"
    assert [render.fmt(vals[-1]) for _, vals in table.rows] == ["–", "0.1300 ± 0.0361", "–"]


@pytest.mark.e2e
def test_the_workflow_records_every_priors_distance_on_the_uda_chain(tmp_path):
    """prior.json (the source prior, DARS(SD)), prior_td.json and prior_est.json of a UDA run record
    D_KL to the target's val labels; the estimate is built from the round-0 teacher's shards."""
    run = tmp_path / "results/synthetic_uda/split0/seed0"
    est_json = run / "dars_est/round1/prior_est.json"
    proc = snakemake(tmp_path, "--cores", "1", str(est_json.relative_to(tmp_path)), config=uda_config())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    sd, td, est = (json.loads(f.read_text()) for f in (run / "prior.json", run / "prior_td.json", est_json))
    truth = str(run.relative_to(tmp_path) / "prior_td.json")
    assert td["kl_true_prior"] == 0.0 and sd["truth"] == est["truth"] == truth
    assert sd["kl_true_prior"] == kl_divergence(td["shares"], sd["shares"]) > 0
    assert est["kl_true_prior"] == kl_divergence(td["shares"], est["shares"])
    assert est["source"] == "est" and est["num_samples"] == 16 * 1024 and est["shards"][0].endswith("round0/shards/0")
