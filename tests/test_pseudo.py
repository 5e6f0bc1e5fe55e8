"""Pseudo-labelers: exact thresholds from histograms, selection counts, order-free randomness, stats."""
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dars import pseudo
from dars.io import DarsError, read_json, read_label, write_json, write_png
from dars.metrics import kl_divergence
from dars.shards import ShardWriter

F16 = np.float16


def conf_of(values, shape=None):
    a = np.array(values, dtype=F16)
    return a.reshape(shape) if shape else a.reshape(1, -1)


def thresholds_for(pred, conf, labeler, alpha, prior=None, num_classes=None):
    C = num_classes or int(np.max(pred)) + 1
    return pseudo.compute_thresholds(pseudo.confidence_histogram(pred, conf, C), labeler, alpha, prior)


# ---------------------------------------------------------------------------- histogram

def test_histogram_counts_bit_patterns():
    pred = np.array([[0, 1, 1], [2, 1, 0]], np.uint8)
    conf = conf_of([0.5, 1.0, 1.0, 0.0, 0.25, 0.5], (2, 3))
    h = pseudo.confidence_histogram(pred, conf, 4)
    assert h.shape == (4, 65536) and h.dtype == np.int64 and h.sum() == 6
    assert h[0, 0x3800] == 2 and h[1, 0x3C00] == 2 and h[1, 0x3400] == 1 and h[2, 0] == 1
    assert h[3].sum() == 0


# ---------------------------------------------------------------------------- hand-built thresholds

def test_st_ties_thin_to_n():
    # 10 pixels, alpha 0.2: n = 2; three pixels tie at 1.0, so r = 3 and rho = 2/3
    pred = np.array([[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]], np.uint8)
    conf = conf_of([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.1, 0.1])
    th = thresholds_for(pred, conf, "st", 0.2)
    g = th["global"]
    assert (g["n"], g["m"], g["tau"], g["tau_bits"], g["r"]) == (2, 10, 1.0, 0x3C00, 3)
    assert (g["rho_num"], g["rho_den"]) == (2, 3) and g["rho"] == pytest.approx(2 / 3)
    assert [c["m"] for c in th["classes"]] == [4, 3, 3] and [c["r"] for c in th["classes"]] == [1, 1, 1]
    lab = pseudo.label_image("x", pred, conf, th, 0, 0)
    # one image holds all r kept pixels: floor(3 - 3 * 2/3) = 1 dropped, exactly n remain
    assert (lab != 255).sum() == 2 and set(np.flatnonzero(lab != 255)) <= {0, 1, 2}
    # alpha = 1: every pixel
    th1 = thresholds_for(pred, conf, "st", 1.0)
    assert th1["global"]["r"] == 10 and th1["global"]["rho"] == 1.0
    assert (pseudo.label_image("x", pred, conf, th1, 0, 0) == pred).all()


def test_cbst_hand_example():
    pred = np.array([[0, 0, 0, 0, 1, 1, 1]], np.uint8)
    conf = conf_of([0.875, 0.75, 0.75, 0.5, 1.0, 1.0, 1.0])
    th = thresholds_for(pred, conf, "cbst", 0.5, num_classes=3)
    c0, c1, c2 = th["classes"]
    # class 0: m = 4, floor(0.5*4)+1 = 3rd most confident = 0.75, ties -> r = 3
    assert (c0["n"], c0["m"], c0["tau"], c0["r"], c0["rho"]) == (2, 4, 0.75, 3, 1.0)
    # class 1: all tied at 1.0: 2nd most confident is 1.0, all 3 kept
    assert (c1["n"], c1["m"], c1["tau"], c1["r"]) == (1, 3, 1.0, 3)
    # class 2 never predicted
    assert (c2["m"], c2["tau"], c2["tau_bits"], c2["r"]) == (0, None, None, 0)
    lab = pseudo.label_image("x", pred, conf, th, 0, 0)
    assert lab.tolist() == [[0, 0, 0, 255, 1, 1, 1]]
    # alpha = 1: index m+1 clamps to the minimum: everything predicted is kept
    th1 = thresholds_for(pred, conf, "cbst", 1.0, num_classes=3)
    assert th1["classes"][0]["tau"] == 0.5 and th1["classes"][0]["r"] == 4
    assert (pseudo.label_image("x", pred, conf, th1, 0, 0) == pred).all()


def test_dars_hand_example_ties_overflow_and_empty():
    # N = 20, prior (0.5, 0.3, 0.2, 0), alpha 0.5 -> n = (5, 3, 2, 0)
    c0 = [1.0, 0.875, 0.75, 0.75, 0.75, 0.75, 0.5, 0.25]  # m = 8: 5th largest 0.75, r = 6, rho = 5/6
    c1 = [0.5, 0.25]                                      # m = 2 < n = 3: overflow, tau = min
    c2 = [1.0] * 10                                       # all tied at float16 1.0: r = 10, rho = 2/10
    pred = np.array([[0] * 8 + [1] * 2 + [2] * 10], np.uint8)
    conf = conf_of(c0 + c1 + c2)
    prior = [0.5, 0.3, 0.2, 0.0]
    th = thresholds_for(pred, conf, "dars", 0.5, prior, num_classes=4)
    e = th["classes"]
    assert th["num_pixels"] == 20
    assert [x["n"] for x in e] == [5, 3, 2, 0] and [x["m"] for x in e] == [8, 2, 10, 0]
    assert (e[0]["tau"], e[0]["r"], e[0]["rho_num"], e[0]["rho_den"], e[0]["overflow"]) == (0.75, 6, 5, 6, False)
    assert (e[1]["tau"], e[1]["r"], e[1]["rho"], e[1]["overflow"]) == (0.25, 2, 1.0, True)
    assert (e[2]["tau"], e[2]["tau_bits"], e[2]["r"], e[2]["rho_num"], e[2]["rho_den"]) == (1.0, 0x3C00, 10, 2, 10)
    assert e[3]["tau"] is None and e[3]["r"] == 0
    lab = pseudo.label_image("img", pred, conf, th, 1, 2)
    counts = np.bincount(lab.ravel(), minlength=256)
    assert counts[:4].tolist() == [5, 2, 2, 0]  # one image: exactly n (or m when overflowing)
    assert (lab[0, 6:8] == 255).all()          # below tau never selected
    # DA: same thresholds, no thinning
    da = thresholds_for(pred, conf, "da", 0.5, prior, num_classes=4)
    assert [x["tau_bits"] for x in da["classes"]] == [x["tau_bits"] for x in e]
    counts = np.bincount(pseudo.label_image("img", pred, conf, da, 1, 2).ravel(), minlength=256)
    assert counts[:4].tolist() == [6, 2, 10, 0]


def test_dars_n_zero_and_class_never_predicted():
    pred = np.array([[0, 0, 0, 1]], np.uint8)
    conf = conf_of([1.0, 0.5, 0.5, 0.5])
    th = thresholds_for(pred, conf, "dars", 0.5, [0.2, 0.0, 0.8], num_classes=3)
    e = th["classes"]
    assert e[0]["n"] == 0 and e[0]["tau"] is None  # floor(0.5*0.2*4) = 0: select nothing of class 0
    assert e[1]["n"] == 0 and e[1]["m"] == 1 and e[1]["tau"] is None
    assert e[2]["n"] == 1 and e[2]["m"] == 0 and e[2]["tau"] is None and e[2]["overflow"]  # skipped
    assert (pseudo.label_image("x", pred, conf, th, 0, 0) == 255).all()


def test_alpha_counts_are_exact_decimals():
    # float arithmetic gives 0.29 * 100 = 28.999999999999996
    pred = np.zeros((1, 100), np.uint8)
    conf = conf_of(np.linspace(0, 1, 100))
    assert thresholds_for(pred, conf, "st", 0.29)["global"]["n"] == 29
    assert thresholds_for(pred, conf, "cbst", 0.29)["classes"][0]["n"] == 29



def test_drop_count_is_exact_integer_arithmetic():
    # 25 pixels tied at 1.0, n = 14: float floor(25 - 25 * (14/25)) is 10, the exact drop is 11
    pred = np.zeros((5, 5), np.uint8)
    conf = np.ones((5, 5), F16)
    for labeler, prior in (("st", None), ("dars", [1.0])):
        th = thresholds_for(pred, conf, labeler, 0.56, prior)
        e = th["global"] if labeler == "st" else th["classes"][0]
        assert (e["n"], e["r"], e["rho_num"], e["rho_den"]) == (14, 25, 14, 25)
        assert (pseudo.label_image("x", pred, conf, th, 0, 0) == 0).sum() == 14

# ---------------------------------------------------------------------------- brute-force property test

LEVELS = np.array([0.0, 0.25, 0.5, 0.5009765625, 0.99951171875, 1.0], F16)


def naive_entry(values, n, k, sample):
    """Spec, literally: sort the confidences of a class; keep s >= the k-th largest."""
    s = sorted((float(v) for v in values), reverse=True)
    m = len(s)
    if k == 0 or m == 0:
        return {"n": n, "m": m, "tau": None, "r": 0, "rho": 0.0}
    tau = s[min(k, m) - 1]
    r = sum(1 for v in s if v >= tau)
    rho = Fraction(min(n, r), r) if sample else Fraction(1)
    return {"n": n, "m": m, "tau": tau, "r": r, "rho": float(rho)}


def naive_thresholds(pred, conf, C, labeler, alpha, prior):
    a = Fraction(repr(alpha))
    p, s = pred.ravel(), conf.ravel()
    N = p.size
    if labeler == "st":
        n = int(a * N)
        return [naive_entry(s, n, n, True)]
    out = []
    for c in range(C):
        vals = s[p == c]
        if labeler == "cbst":
            n = int(a * len(vals))
            out.append(naive_entry(vals, n, n + 1 if len(vals) else 0, False))
        else:
            n = int(a * Fraction(repr(prior[c])) * N)
            out.append(naive_entry(vals, n, n, labeler == "dars"))
    return out


@pytest.mark.parametrize("case", range(60))
def test_histogram_thresholds_match_sorting(case):
    rng = np.random.default_rng(case)
    C = int(rng.integers(1, 5))
    images = []
    for _ in range(int(rng.integers(1, 4))):
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 9)))
        levels = LEVELS[: int(rng.integers(1, len(LEVELS) + 1))]  # sometimes one value: all tied
        images.append((rng.integers(0, C, size=shape).astype(np.uint8), rng.choice(levels, size=shape)))
    pred = np.concatenate([p.ravel() for p, _ in images])
    conf = np.concatenate([c.ravel() for _, c in images])
    alpha = float(rng.choice([0.05, 0.2, 0.29, 0.5, 0.77, 1.0]))
    prior = rng.dirichlet(np.ones(C))
    if C > 1 and rng.random() < 0.3:
        prior[int(rng.integers(0, C))] = 0.0  # a class with n_c = 0
    prior = (prior / prior.sum()).tolist()
    hist = sum(pseudo.confidence_histogram(p, c, C) for p, c in images)
    for labeler in pseudo.CONFIDENCE_LABELERS:
        th = pseudo.compute_thresholds(hist, labeler, alpha, prior)
        got = [th["global"]] if labeler == "st" else th["classes"]
        want = naive_thresholds(pred, conf, C, labeler, alpha, prior)
        for g, w in zip(got, want, strict=True):
            assert {k: g[k] for k in w} == w, (labeler, g, w)
        # labels: only candidates (class c, s >= tau_c) selected, per image exactly a - floor(a - a*rho)
        for i, (p, c) in enumerate(images):
            lab = pseudo.label_image(f"im{i}", p, c, th, 7, 1)
            sel = lab != 255
            assert (lab[sel] == p[sel]).all()
            groups = [(np.ones_like(sel), got[0])] if labeler == "st" else [(p == k, got[k]) for k in range(C)]
            for mask, e in groups:
                cand = mask & (c.astype(float) >= e["tau"]) if e["tau"] is not None else np.zeros_like(sel)
                assert not (sel & mask & ~cand).any()
                a = int(cand.sum())
                want_kept = a - a * (e["rho_den"] - e["rho_num"]) // e["rho_den"]
                assert int((sel & cand).sum()) == want_kept


# ---------------------------------------------------------------------------- selection counts over images

def test_dars_total_selected_within_images_of_n():
    rng = np.random.default_rng(3)
    C, K = 3, 9
    images = [(rng.integers(0, C, size=(16, 20)).astype(np.uint8), rng.choice(LEVELS, size=(16, 20)))
              for _ in range(K)]
    hist = sum(pseudo.confidence_histogram(p, c, C) for p, c in images)
    prior = [0.2, 0.5, 0.3]
    for alpha in (0.1, 0.3, 0.5, 1.0):
        th = pseudo.compute_thresholds(hist, "dars", alpha, prior)
        totals = sum(np.bincount(pseudo.label_image(f"i{k}", p, c, th, 0, 0).ravel(), minlength=256)[:C]
                     for k, (p, c) in enumerate(images))
        for c, e in enumerate(th["classes"]):
            if e["rho_num"] == e["rho_den"]:
                # no thinning: all r kept; that is exactly n when r == n, and m < n on overflow
                assert totals[c] == e["r"]
                assert e["r"] == e["n"] or (e["overflow"] and e["r"] == e["m"]) or e["n"] == 0
            else:
                # each image keeps ceil(a_i * n / r): the sum is n plus less than one per image
                assert e["n"] <= totals[c] < e["n"] + K


# ---------------------------------------------------------------------------- shards, stages, order

def make_images(n, C=4, seed=0, shape=(12, 10)):
    rng = np.random.default_rng(seed)
    return [(f"city_{i:06d}_000019", rng.integers(0, C, size=shape).astype(np.uint8),
             rng.choice(LEVELS, size=shape)) for i in range(n)]


def write_shards(root, images, parts, C=4, labels=None):
    dirs = []
    for k, chunk in enumerate(np.array_split(np.arange(len(images)), parts)):
        d = Path(root) / str(k)
        with ShardWriter(d, C) as w:
            for i in chunk:
                iid, p, c = images[i]
                w.add(iid, p, c, image=f"leftImg8bit/train/city/{iid}_leftImg8bit.png",
                      label=labels[i] if labels else None)
        dirs.append(d)
    return dirs


def run_pipeline(root, shard_dirs, labeler, alpha, prior_json, seed=5, rnd=1, dataset_root=None):
    root = Path(root)
    hists = []
    for k, d in enumerate(shard_dirs):
        pseudo.stats_stage(d, root / "hist" / f"{k}.npy")
        hists.append(root / "hist" / f"{k}.npy")
    pseudo.thresholds_stage(hists, root / "thresholds.json", labeler, alpha, prior_json)
    label_dirs = []
    for k, d in enumerate(shard_dirs):
        pseudo.label_stage(d, root / "thresholds.json", root / "pseudo" / str(k), seed, rnd, dataset_root)
        label_dirs.append(root / "pseudo" / str(k))
    pseudo.merge_stage(root / "thresholds.json", label_dirs, root / "pseudo_stats.json",
                       root / "pseudo_labels.txt", prior_json, dataset_root)
    return label_dirs


@pytest.mark.parametrize("labeler", pseudo.CONFIDENCE_LABELERS)
def test_one_shard_equals_four_shards(tmp_path, labeler):
    images = make_images(11)
    prior = tmp_path / "prior.json"
    write_json(prior, {"shares": [0.4, 0.3, 0.2, 0.1]})
    out = {}
    for parts in (1, 4):
        dirs = write_shards(tmp_path / f"shards{parts}", images, parts)
        run = tmp_path / f"run{parts}"
        label_dirs = run_pipeline(run, dirs, labeler, 0.35, prior)
        pngs = {p.name: p.read_bytes() for d in label_dirs for p in sorted(d.glob("*.png"))}
        lines = (run / "pseudo_labels.txt").read_text().splitlines()
        out[parts] = (pngs, read_json(run / "pseudo_stats.json"), [ln.split()[0] for ln in lines],
                      [(run / ln.split()[1]).name for ln in lines])
        for ln in lines:  # png paths are relative to the list's directory
            assert (run / ln.split()[1]).is_file()
    assert out[1][0] == out[4][0] and len(out[1][0]) == 11
    assert out[1][1] == out[4][1]
    assert out[1][2] == out[4][2] == [f"leftImg8bit/train/city/{i}_leftImg8bit.png" for i, _, _ in images]
    assert out[1][3] == out[4][3]


def test_merge_kl_precision_coverage(tmp_path):
    C = 3
    pred = [np.array([[0, 0, 1], [1, 2, 2]], np.uint8), np.array([[0, 1, 2]], np.uint8),
            np.array([[2, 2]], np.uint8)]
    conf = [np.ones(p.shape, F16) for p in pred]
    gt = [np.array([[0, 1, 1], [255, 2, 0]], np.uint8),
          np.full((1, 3), 255, np.uint8),  # only void: contributes nothing to precision or coverage
          None]                            # no ground truth at all
    data = tmp_path / "data"
    labels = []
    for i, g in enumerate(gt):
        if g is None:
            labels.append(None)
        else:
            write_png(data / f"gt{i}.png", g)
            labels.append(f"gt{i}.png")
    images = [(f"im{i}", p, c) for i, (p, c) in enumerate(zip(pred, conf))]
    for iid, _, _ in images:
        write_png(data / f"leftImg8bit/train/city/{iid}_leftImg8bit.png", np.zeros((2, 2), np.uint8))
    dirs = write_shards(tmp_path / "shards", images, 2, C=C, labels=labels)
    prior = tmp_path / "prior.json"
    write_json(prior, {"shares": [0.5, 0.25, 0.25]})
    run_pipeline(tmp_path / "run", dirs, "cbst", 1.0, prior, dataset_root=data)  # alpha 1: pseudo = pred
    s = read_json(tmp_path / "run" / "pseudo_stats.json")
    assert s["pseudo_counts"] == [3, 3, 5] and s["selected_pixels"] == 11 and s["coverage"] == 1.0
    assert s["kl_prior_pseudo"] == pytest.approx(kl_divergence([0.5, 0.25, 0.25], [3, 3, 5]))
    assert s["kl_pseudo_prior"] == pytest.approx(kl_divergence([3, 3, 5], [0.5, 0.25, 0.25]))
    g = s["gt"]
    # image 0 only: pseudo 0 on gt{0,1}: 1 right of 2; pseudo 1 on gt{1}: 1 of 1 (other pseudo 1 on void);
    # pseudo 2 on gt{2,0}: 1 of 2. gt pixels: 0 -> 2, 1 -> 2, 2 -> 1
    assert g["images"] == 2 and g["tp"] == [1, 1, 1] and g["pseudo_on_gt"] == [2, 1, 2]
    assert g["gt_pixels"] == [2, 2, 1]
    assert g["precision"] == [0.5, 1.0, 0.5] and g["coverage"] == [0.5, 0.5, 1.0]
    # a class absent from the ground truth and the pseudo labels: null
    assert pseudo._ratio([0], [0]) == [None]


def test_void_only_ground_truth(tmp_path):
    data = tmp_path / "data"
    write_png(data / "gt.png", np.full((2, 2), 255, np.uint8))
    images = [("a", np.zeros((2, 2), np.uint8), np.ones((2, 2), F16))]
    dirs = write_shards(tmp_path / "shards", images, 1, C=2, labels=["gt.png"])
    run_pipeline(tmp_path / "run", dirs, "st", 1.0, None, dataset_root=None)
    pseudo.label_stage(dirs[0], tmp_path / "run" / "thresholds.json", tmp_path / "p", 0, 0, data)
    st = read_json(tmp_path / "p" / "stats.json")
    assert st["gt"] == {"images": 1, "tp": [0, 0], "pseudo_on_gt": [0, 0], "gt_pixels": [0, 0]}
    assert read_label(tmp_path / "p" / "a.png").tolist() == [[0, 0], [0, 0]]
    pseudo.merge_stage(tmp_path / "run" / "thresholds.json", [tmp_path / "p"], tmp_path / "s.json", tmp_path / "l.txt")
    s = read_json(tmp_path / "s.json")
    assert s["gt"]["precision"] == [None, None] and s["gt"]["coverage"] == [None, None]
    assert s["kl_prior_pseudo"] is None


# ---------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("alpha", [0, 0.0, 1.5, -0.1, float("nan"), True, "0.5"])
def test_bad_alpha(alpha):
    with pytest.raises(DarsError, match="alpha"):
        pseudo.compute_thresholds(np.zeros((2, 65536), np.int64), "st", alpha)


def test_bad_labeler_and_prior():
    h = np.zeros((2, 65536), np.int64)
    with pytest.raises(DarsError, match="unknown labeler 'foo'"):
        pseudo.compute_thresholds(h, "foo", 0.5)
    with pytest.raises(DarsError, match="dars needs a class prior"):
        pseudo.compute_thresholds(h, "dars", 0.5)
    with pytest.raises(DarsError, match="da needs a class prior"):
        pseudo.compute_thresholds(h, "da", 0.5)
    with pytest.raises(DarsError, match="3 shares but the histogram has 2"):
        pseudo.compute_thresholds(h, "dars", 0.5, [0.2, 0.3, 0.5])
    with pytest.raises(DarsError, match="sum to 1"):
        pseudo.compute_thresholds(h, "dars", 0.5, [0.2, 0.3])
    with pytest.raises(DarsError, match="non-negative"):
        pseudo.compute_thresholds(h, "dars", 0.5, [1.5, -0.5])
    pseudo.compute_thresholds(h, "dars", 0.5, [0.5, 0.49999])  # rounded published shares are fine
    with pytest.raises(DarsError, match="histogram"):
        pseudo.compute_thresholds(np.zeros((2, 10), np.int64), "st", 0.5)


def test_non_finite_and_negative_confidences(tmp_path):
    pred = np.zeros((2, 2), np.uint8)
    with pytest.raises(DarsError, match="image x.*not in \\[0, 1\\]"):
        pseudo.confidence_histogram(pred, np.array([[0.5, np.nan], [0, 1]], F16), 2, where="image x")
    with pytest.raises(DarsError, match="image y"):
        pseudo.label_image("y", pred, np.array([[0.5, -0.5], [0, 1]], F16), {"num_classes": 2}, 0, 0)
    with pytest.raises(DarsError, match="float16"):
        pseudo.confidence_histogram(pred, np.ones((2, 2), np.float32), 2)
    # negative values pass the shard writer; the histogram names shard and image
    images = [("good", pred, np.ones((2, 2), F16)), ("bad", pred, np.array([[0.5, -0.5], [0, 1]], F16))]
    d = write_shards(tmp_path / "s", images, 1, C=2)[0]
    with pytest.raises(DarsError, match=f"{d}.*image bad"):
        pseudo.stats_stage(d, tmp_path / "h.npy")
    assert not (tmp_path / "h.npy").exists()
    # NaN written behind the writer's back (corrupt file): still named
    raw = bytearray((d / "conf.f16").read_bytes())
    raw[2:4] = np.array([np.nan], "<f2").tobytes()
    (d / "conf.f16").write_bytes(bytes(raw))
    with pytest.raises(DarsError, match=f"{d}.*image good"):
        pseudo.shard_histogram(d)


def test_histogram_shape_mismatch(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 65536), np.int64))
    np.save(tmp_path / "b.npy", np.zeros((3, 65536), np.int64))
    with pytest.raises(DarsError, match="b.npy.*differs"):
        pseudo.thresholds_stage([tmp_path / "a.npy", tmp_path / "b.npy"], tmp_path / "t.json", "st", 0.5)
    with pytest.raises(DarsError, match="c.npy: histogram missing"):
        pseudo.thresholds_stage([tmp_path / "c.npy"], tmp_path / "t.json", "st", 0.5)
    with pytest.raises(DarsError, match="no histogram"):
        pseudo.thresholds_stage([], tmp_path / "t.json", "st", 0.5)
    assert not (tmp_path / "t.json").exists()


def test_merge_rejects_missing_shards(tmp_path):
    images = make_images(4, C=4)
    dirs = write_shards(tmp_path / "s", images, 2)
    run_pipeline(tmp_path / "run", dirs, "cbst", 0.5, None)
    with pytest.raises(DarsError, match="pixels"):
        pseudo.merge_stage(tmp_path / "run" / "thresholds.json", [tmp_path / "run" / "pseudo" / "0"],
                           tmp_path / "x.json", tmp_path / "x.txt")
    with pytest.raises(DarsError, match="more than one shard"):
        pseudo.merge_stage(tmp_path / "run" / "thresholds.json", [tmp_path / "run" / "pseudo" / "0"] * 2,
                           tmp_path / "x.json", tmp_path / "x.txt")
