import json

import numpy as np

from dars.infer import sample_pixels
from dars.metrics import kl_divergence
from dars.prior import estimate_prior_em, prior_est_stage, prior_stage
from dars.shards import Shard, ShardWriter


def calibrated_posteriors(true_prior, train_prior, n, rng):
    """Pixels drawn with `true_prior`; posteriors a Bayes-calibrated classifier trained under
    `train_prior` would output for 1-D Gaussian class-conditionals."""
    c = len(true_prior)
    y = rng.choice(c, size=n, p=true_prior)
    x = rng.normal(loc=y * 1.5, scale=1.0)
    lik = np.exp(-0.5 * (x[:, None] - np.arange(c)[None] * 1.5) ** 2)
    post = lik * train_prior
    return post / post.sum(1, keepdims=True)


def test_em_recovers_a_shifted_prior():
    rng = np.random.default_rng(0)
    train_prior = np.array([0.25, 0.25, 0.25, 0.25])
    true_prior = np.array([0.6, 0.25, 0.1, 0.05])
    probs = calibrated_posteriors(true_prior, train_prior, 200_000, rng)
    naive = probs.mean(0)
    est, steps = estimate_prior_em(probs, train_prior)
    assert np.abs(est - true_prior).max() < 0.02 < np.abs(naive - true_prior).max()
    assert steps > 1 and abs(est.sum() - 1) < 1e-9


def test_em_is_a_fixed_point_without_shift():
    rng = np.random.default_rng(1)
    prior = np.array([0.5, 0.3, 0.2])
    est, _ = estimate_prior_em(calibrated_posteriors(prior, prior, 100_000, rng), prior)
    assert np.abs(est - prior).max() < 0.02


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
