import json

import pytest
import torch
from helpers import TRAIN_SETTINGS

from dars.data.splits import make_split
from dars.evaluate import evaluate_stage
from dars.infer import infer_stage, shard_slice
from dars.io import DarsError
from dars.settings import PredictSettings, TrainSettings
from dars.shards import Shard
from dars.train import poly_lr, train


@pytest.fixture
def split_dir(tiny_cityscapes, tmp_path):
    make_split(tiny_cityscapes, 2, 0, tmp_path / "split", "tiny")
    return tmp_path / "split"


def test_train_settings_give_back_the_dict_they_were_built_from():
    """Checkpoints store to_dict() and the resume fingerprint digests it: the same keys in the
    same order, the same value objects, optional keys only where the source had them."""
    source = json.loads(json.dumps(dict(TRAIN_SETTINGS, amp="bf16", future_key=[1, 2])))
    s = TrainSettings.of(source)
    out = s.to_dict()
    assert out == source and list(out) == list(source)
    assert all(out[k] is source[k] for k in source) and all(a is b for a, b in zip(out, source))
    assert s.amp == "bf16" and s.compile is False and s.extra == {"future_key": [1, 2]}
    assert TrainSettings.of(s) is s
    digest = TrainSettings.of(TRAIN_SETTINGS).digest()
    assert TrainSettings.of(dict(TRAIN_SETTINGS, compile=True)).digest() == digest  # runtime only
    assert TrainSettings.of(dict(TRAIN_SETTINGS, epochs=4)).digest() != digest
    assert TrainSettings(**TRAIN_SETTINGS).to_dict() == TRAIN_SETTINGS
    with pytest.raises(DarsError, match="lack base_lr"):
        TrainSettings.of({k: v for k, v in TRAIN_SETTINGS.items() if k != "base_lr"})


def test_predict_settings_are_parsed_once_with_defaults():
    assert PredictSettings.of(None) == PredictSettings() == PredictSettings.of({})
    s = PredictSettings.of({"mode": "slide", "window": [48, 96], "teacher_fusion": "logits"})
    assert (s.mode, s.window, s.flip, s.batch_windows, s.teacher_fusion) == ("slide", [48, 96], True, 8, "logits")
    with pytest.raises(DarsError, match="windw"):
        PredictSettings.of({"windw": 48})


def test_poly_schedule_continues_across_rounds():
    assert poly_lr(1.0, 0, 0, 100, 0.9) == 1.0
    assert abs(poly_lr(1.0, 1, 0, 100, 0.9) - 0.5 ** 0.9) < 1e-12      # 0.536
    assert abs(poly_lr(1.0, 2, 0, 100, 0.9) - (1 / 3) ** 0.9) < 1e-12  # 0.372


class Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted_run(tiny_cityscapes, split_dir, tmp_path):
    labeled = split_dir / "labeled.txt"
    train(TRAIN_SETTINGS, tmp_path / "a.pt", tiny_cityscapes, labeled, work_dir=tmp_path / "wa", log=lambda m: None)

    def crash_after_first_epoch(msg):
        if msg.startswith('{"epoch": 1'):
            raise Interrupt
    with pytest.raises(Interrupt):
        train(TRAIN_SETTINGS, tmp_path / "b.pt", tiny_cityscapes, labeled, work_dir=tmp_path / "wb",
              log=crash_after_first_epoch)
    assert (tmp_path / "wb/last.pt").is_file() and not (tmp_path / "b.pt").exists()
    messages = []
    train(TRAIN_SETTINGS, tmp_path / "b.pt", tiny_cityscapes, labeled, work_dir=tmp_path / "wb", log=messages.append)
    assert any(m.startswith("resuming") for m in messages)
    a = torch.load(tmp_path / "a.pt", weights_only=False)
    b = torch.load(tmp_path / "b.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["history"] == b["history"]
    assert not (tmp_path / "wb/last.pt").exists()


def test_student_round_continues_teacher_and_inference_and_evaluation(tiny_cityscapes, split_dir, tmp_path):
    labeled, unlabeled = split_dir / "labeled.txt", split_dir / "unlabeled.txt"
    train(TRAIN_SETTINGS, tmp_path / "r0.pt", tiny_cityscapes, labeled, log=lambda m: None)
    for k in range(2):
        infer_stage(tmp_path / "r0.pt", tiny_cityscapes, unlabeled, tmp_path / f"shards/{k}", 2, k)
    shards = [Shard(tmp_path / f"shards/{k}") for k in range(2)]
    assert sum(len(s) for s in shards) == 4
    meta, pred, conf = shards[0].get(0)
    assert pred.shape == (32, 64) and conf.dtype == "float16" and 0 < conf.min() and conf.max() <= 1
    # A supervised-control round continues from the teacher's optimizer state.
    student = dict(TRAIN_SETTINGS, round=1, mode="supervised", epochs=1)
    train(student, tmp_path / "r1.pt", tiny_cityscapes, labeled, unlabeled_list=unlabeled,
          init_ckpt=tmp_path / "r0.pt", log=lambda m: None)
    ck = torch.load(tmp_path / "r1.pt", weights_only=False)
    assert ck["round"] == 1 and ck["history"][0]["lr"] < 0.01 * 0.54
    result = evaluate_stage(tmp_path / "r1.pt", tiny_cityscapes, tmp_path / "miou.json",
                            run={"method": "supervised", "round": 1})
    saved = json.loads((tmp_path / "miou.json").read_text())
    assert saved["method"] == "supervised" and saved["num_images"] == 2
    assert 0 <= result["miou"] <= 1 and len(saved["iou"]) == 19


def test_shard_slices_cover_every_item_once():
    for n in (0, 1, 7, 100):
        for k in (1, 3, 8):
            items = [i for s in range(k) for i in shard_slice(n, k, s)]
            assert items == list(range(n))


def test_decoding_workers_change_nothing(tiny_cityscapes, split_dir, tmp_path, monkeypatch):
    """Inference stages decode ahead in worker processes on a GPU (threads - 1 of them); forced
    on here, shards and miou.json are byte-identical to decoding inline."""
    train(dict(TRAIN_SETTINGS, epochs=1), tmp_path / "m.pt", tiny_cityscapes, split_dir / "labeled.txt",
          log=lambda m: None)
    outputs = {}
    for workers in (0, 2):
        monkeypatch.setattr("dars.runtime.resolve_workers", lambda value, threads, device, workers=workers: workers)
        base = tmp_path / f"w{workers}"
        infer_stage(tmp_path / "m.pt", tiny_cityscapes, split_dir / "unlabeled.txt", base / "shard", 2, 1, threads=3)
        evaluate_stage(tmp_path / "m.pt", tiny_cityscapes, base / "miou.json", threads=3)
        outputs[workers] = {p.relative_to(base): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}
    assert outputs[0].keys() == outputs[2].keys() and len(outputs[0]) == 5
    for name, data in outputs[0].items():
        assert data == outputs[2][name], name


def test_identical_runs_write_byte_identical_checkpoints(tiny_cityscapes, split_dir, tmp_path):
    """Checksums of artifacts mean something: same settings and data, same model.pt bytes."""
    for name in ("a", "b"):
        train(dict(TRAIN_SETTINGS, epochs=1), tmp_path / name / "model.pt", tiny_cityscapes, split_dir / "labeled.txt",
              work_dir=tmp_path / name / "work", log=lambda m: None)
    assert (tmp_path / "a/model.pt").read_bytes() == (tmp_path / "b/model.pt").read_bytes()
