"""Where and how a stage's network runs (dars/runtime.py), on a CPU: the amp, channels_last and
workers options resolved (an unknown value named with the valid ones), autocast really computing
in bf16 when asked, and a training run's runtime set up without a GPU or torchrun."""
import pytest
import torch
from helpers import TRAIN_SETTINGS

from dars.io import DarsError
from dars.runtime import for_training, resolve_amp, resolve_channels_last, resolve_workers
from dars.settings import TrainSettings

CPU = torch.device("cpu")


@pytest.mark.parametrize("value, dtype", [("auto", None), (None, None), ("bf16", torch.bfloat16), ("off", None),
                                          (False, None)])  # False: YAML reads a bare `off` so
def test_amp_on_cpu(value, dtype):
    assert resolve_amp(value, CPU) is dtype
    assert resolve_amp(value, "cpu") is dtype  # a device name works as the device


def test_amp_auto_means_bf16_on_a_cuda_device():
    """Decided from the device alone where no GPU reports that it lacks bf16 (the check that
    falls back to float32 needs a GPU to ask)."""
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16: auto falls back to float32 here")
    assert resolve_amp("auto", torch.device("cuda")) is torch.bfloat16
    assert resolve_amp("off", "cuda") is None


@pytest.mark.parametrize("value", ["fp16", "on", True, "BF16", 16])
def test_an_unknown_amp_is_named_with_the_valid_values(value):
    with pytest.raises(DarsError) as e:
        resolve_amp(value, CPU)
    assert str(e.value) == f"amp={value!r} unknown: use 'auto', 'bf16' or 'off'"


def test_channels_last():
    assert resolve_channels_last("auto", CPU) is False and resolve_channels_last(None, "cuda") is True
    assert resolve_channels_last("auto", CPU, auto=True) is True  # inference decides per mode
    assert resolve_channels_last(True, CPU) is True and resolve_channels_last(False, "cuda") is False
    with pytest.raises(DarsError, match=r"^channels_last='yes' unknown: use 'auto', true or false$"):
        resolve_channels_last("yes", CPU)


def test_workers():
    assert resolve_workers("auto", 8, CPU) == 0  # the CPU's threads compute
    cuda = torch.device("cuda")
    assert resolve_workers("auto", 8, cuda) == 7 and resolve_workers(None, None, cuda) == 0  # one process feeds it
    assert resolve_workers(3, 8, CPU) == 3
    for bad in (-1, True, "2", 1.5):
        with pytest.raises(DarsError, match=f"^train setting workers={bad!r}: use 'auto' or an integer >= 0$"):
            resolve_workers(bad, 8, CPU)


@pytest.fixture
def threads():
    """for_training sets torch's thread count: give the other tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), ("off", torch.float32)])
def test_a_training_runtime_on_cpu_computes_in_the_dtype_asked_for(threads, monkeypatch, amp, dtype):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    messages = []
    rt = for_training(TrainSettings.of(dict(TRAIN_SETTINGS, amp=amp, workers="auto")), 1, messages.append)
    assert rt.device == CPU and not rt.ranks.active and rt.workers == 0 and torch.get_num_threads() == 1
    assert rt.channels_last is False and rt.image_format == torch.contiguous_format
    assert rt.amp_dtype is (torch.bfloat16 if amp == "bf16" else None)
    with rt.autocast():
        out = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert out.dtype == dtype
    rt.log("said")
    assert messages == ["said"]


def test_a_global_batch_that_does_not_divide_over_the_ranks_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(DarsError, match=r"^batch_size 3 is the global batch and must divide evenly over the 2 ranks"):
        for_training(TrainSettings.of(dict(TRAIN_SETTINGS, batch_size=3)), 1, print)
