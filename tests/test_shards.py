"""Teacher output shards (dars/shards.py): what is written reads back bit for bit, and a shard that
was damaged after it was written is named (with the command that rebuilds it) by its reader and
by the plan-time check of directory outputs (dars.manifest), never consumed."""
import json

import numpy as np
import pytest

from dars.io import DarsError
from dars.manifest import directory_problem
from dars.shards import FORMAT, Shard, ShardWriter

NUM_CLASSES = 5
SIZES = {"a": (3, 4), "b": (2, 6), "c": (5, 1)}


def images(seed=0):
    """(id, pred, conf, prob_sample) of three images of different sizes, random but seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for image_id, (h, w) in SIZES.items():
        pred = rng.integers(0, NUM_CLASSES, size=(h, w)).astype(np.uint8)
        conf = rng.uniform(0.2, 1.0, size=(h, w)).astype(np.float16)
        probs = rng.dirichlet(np.ones(NUM_CLASSES), size=h).astype(np.float16)  # h sampled pixels
        out.append((image_id, pred, conf, probs))
    return out


@pytest.fixture
def shard(tmp_path):
    with ShardWriter(tmp_path / "shard", NUM_CLASSES) as w:
        for image_id, pred, conf, probs in images():
            w.add(image_id, pred, conf, image=f"img/{image_id}.png", label=None, prob_sample=probs)
    return tmp_path / "shard"


def test_a_shard_reads_back_what_was_written(shard):
    s = Shard(shard)
    assert len(s) == 3 and s.num_classes == NUM_CLASSES
    assert sorted(p.name for p in shard.iterdir()) == ["conf.f16", "index.json", "pred.u8", "probs.f16"]
    for (meta, pred, conf), (image_id, want_pred, want_conf, _) in zip(s, images()):
        assert (meta["id"], meta["image"], meta["label"]) == (image_id, f"img/{image_id}.png", None)
        assert (meta["height"], meta["width"]) == want_pred.shape
        assert pred.dtype == np.uint8 and np.array_equal(pred, want_pred)
        assert conf.dtype == np.float16 and np.array_equal(conf, want_conf)
    want_probs = np.concatenate([p for *_, p in images()]).astype(np.float32)
    assert np.array_equal(s.prob_samples(), want_probs)
    assert directory_problem(shard) is None


def test_equal_shards_are_byte_identical(tmp_path, shard):
    with ShardWriter(tmp_path / "again", NUM_CLASSES) as w:
        for image_id, pred, conf, probs in images():
            w.add(image_id, pred, conf, image=f"img/{image_id}.png", prob_sample=probs)
    for name in ("index.json", "pred.u8", "conf.f16", "probs.f16"):
        assert (tmp_path / "again" / name).read_bytes() == (shard / name).read_bytes(), name


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_rewritten_image_is_named_when_read_and_the_others_still_read(shard):
    flip_byte(shard / "conf.f16", 2 * (3 * 4) + 2)  # the second image's second confidence
    s = Shard(shard)
    s.get(0), s.get(2)
    with pytest.raises(DarsError) as e:
        s.get(1)
    message = str(e.value)
    assert message.startswith(f"{shard}: image b: its pred.u8/conf.f16 bytes differ from the digest in index.json")
    assert f"snakemake --forcerun {shard}" in message


def test_rewritten_probability_samples_are_named(shard):
    flip_byte(shard / "probs.f16", 7)
    with pytest.raises(DarsError, match="probs.f16 differs from the digest in its index.json; the shard was "
                                        "modified or is corrupt: rebuild it"):
        Shard(shard).prob_samples()


def test_a_truncated_shard_is_named_by_the_reader_and_the_plan(shard):
    data = (shard / "pred.u8").read_bytes()
    (shard / "pred.u8").write_bytes(data[:-3])
    assert directory_problem(shard) == f"pred.u8 is {len(data) - 3} bytes, its index.json says {len(data)}"
    with pytest.raises(DarsError) as e:
        Shard(shard)
    assert str(e.value).startswith(f"{shard / 'pred.u8'}: {len(data) - 3} bytes, expected {len(data)}; the shard "
                                   "is truncated: rebuild it") and f"--forcerun {shard}" in str(e.value)


def test_a_shard_file_missing_or_edited_after_the_index_is_named_by_the_plan(shard):
    (shard / "probs.f16").unlink()
    assert directory_problem(shard) == "probs.f16, listed in its index.json, is missing"


def test_not_a_shard_and_an_unknown_format_are_named(tmp_path, shard):
    with pytest.raises(DarsError, match=f"^{tmp_path}: not a shard \\(no index.json\\); rerun the infer stage$"):
        Shard(tmp_path)
    index = json.loads((shard / "index.json").read_text())
    (shard / "index.json").write_text(json.dumps(dict(index, format="dars-shard/0")))
    with pytest.raises(DarsError, match=f"unknown shard format 'dars-shard/0', expected {FORMAT}"):
        Shard(shard)


def test_class_ids_beyond_the_class_set_are_refused(tmp_path):
    with ShardWriter(tmp_path / "shard", 3) as w:
        w.add("x", np.full((2, 2), 3, np.uint8), np.ones((2, 2), np.float16))
    with pytest.raises(DarsError, match="image x has class ids >= 3"):
        Shard(tmp_path / "shard").get(0)


def test_a_non_finite_confidence_stops_the_writer_and_leaves_no_shard(tmp_path):
    conf = np.ones((2, 2), np.float16)
    conf[1, 1] = np.nan
    with pytest.raises(DarsError, match="image y has non-finite confidences"):
        with ShardWriter(tmp_path / "shard", NUM_CLASSES) as w:
            w.add("x", np.zeros((2, 2), np.uint8), np.ones((2, 2), np.float16))
            w.add("y", np.zeros((2, 2), np.uint8), conf)
    assert list(tmp_path.iterdir()) == []  # neither the shard nor a temporary directory
