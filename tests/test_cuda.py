"""The CUDA path end to end: run where a GPU is (bench/gpu_check.sh runs this file there),
skipped elsewhere. CPU tests cover the same code with CUDA's options forced on; these check
what only a GPU shows: pinned batches with loader workers, bf16 autocast + channels_last,
torch.compile with Triton kernels, BatchNorm folded at load, the stages on the device."""
import json

import pytest
import torch
from helpers import TRAIN_SETTINGS

from dars.data.splits import make_split
from dars.evaluate import evaluate_stage
from dars.io import read_image
from dars.slide import load_model, predict_probs
from dars.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture
def split_dir(tiny_cityscapes, tmp_path):
    make_split(tiny_cityscapes, 2, 0, tmp_path / "split", "tiny")
    return tmp_path / "split"


def _train(settings, out, root, split_dir, **kw):
    messages = []
    train(settings, out, root, split_dir / "labeled.txt", threads=4, log=messages.append, **kw)
    return torch.load(out, weights_only=False), messages


def test_cuda_trainer_auto_path_resumes(tiny_cityscapes, split_dir, tmp_path):
    """workers/amp/channels_last "auto" on CUDA: 3 pinned-memory workers, bf16, NHWC; an
    interrupted run resumes from last.pt to the same step count and finite losses."""
    settings = dict(TRAIN_SETTINGS, workers="auto", epochs=2)  # 4 labeled images, batch 2: 4 steps
    ck, messages = _train(settings, tmp_path / "a.pt", tiny_cityscapes, split_dir)
    assert any("amp torch.bfloat16, channels_last True" in m and "loader workers 3" in m for m in messages)
    assert ck["iteration"] == 4 and all(h["loss_labeled"] < 10 for h in ck["history"])

    class Stop(Exception):
        pass

    def stop_after_epoch_1(message):
        if message.startswith('{"epoch": 1'):
            raise Stop
    with pytest.raises(Stop):
        train(settings, tmp_path / "b.pt", tiny_cityscapes, split_dir / "labeled.txt", threads=4,
              work_dir=tmp_path / "work", log=stop_after_epoch_1)
    resumed, messages = _train(settings, tmp_path / "b.pt", tiny_cityscapes, split_dir, work_dir=tmp_path / "work")
    assert any(m.startswith("resuming") for m in messages) and resumed["iteration"] == 4


def test_cuda_compiled_training_tracks_eager(tiny_cityscapes, split_dir, tmp_path):
    settings = dict(TRAIN_SETTINGS, epochs=1, batch_size=4, workers=0, amp="off")
    eager, _ = _train(settings, tmp_path / "eager.pt", tiny_cityscapes, split_dir)
    compiled, messages = _train(dict(settings, compile=True), tmp_path / "compiled.pt", tiny_cityscapes, split_dir)
    assert any("compile True" in m for m in messages)
    assert compiled["model"].keys() == eager["model"].keys()
    assert compiled["history"][0]["loss_labeled"] == pytest.approx(eager["history"][0]["loss_labeled"], rel=1e-2)


def test_cuda_folded_inference_and_evaluation(tiny_cityscapes, split_dir, tmp_path):
    """The stages' model on CUDA has its BatchNorms folded and, in bf16, predicts what the
    float32 CPU model predicts; evaluation runs on the device and records how."""
    ck, _ = _train(dict(TRAIN_SETTINGS, epochs=2, batch_size=4, workers=0), tmp_path / "m.pt", tiny_cityscapes,
                   split_dir)
    gpu_model, _ = load_model(tmp_path / "m.pt", "cuda")
    cpu_model, _ = load_model(tmp_path / "m.pt", "cpu")
    assert gpu_model.folded_batchnorms > 0 and not hasattr(cpu_model, "folded_batchnorms")
    image = read_image(next(tiny_cityscapes.glob("leftImg8bit/val/*/*.png")))
    fast = predict_probs(gpu_model, image, device="cuda", mode="slide", window=[32, 48]).cpu()
    exact = predict_probs(cpu_model, image, mode="slide", window=[32, 48])
    assert (fast - exact).abs().max() < 0.05
    assert (fast.argmax(0) == exact.argmax(0)).float().mean() > 0.97
    evaluate_stage(tmp_path / "m.pt", tiny_cityscapes, tmp_path / "miou.json", {"mode": "slide"})
    saved = json.loads((tmp_path / "miou.json").read_text())
    assert saved["precision"].startswith("bf16") and 0 <= saved["miou"] <= 1
