"""Device and precision choice, shared by training and inference (no GPU needed)."""

import pytest
import torch

from pipeline.config import ConfigError
from pipeline.network import device
from pipeline.network.device import autocast_dtype, inference_dtype, pick_device


def test_device_and_precision_choices_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"train\.device"):
        pick_device("cuda")
    with pytest.raises(ConfigError, match=r"infer\.device"):
        pick_device("cuda", "infer.device")
    assert autocast_dtype("auto", torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto", local_rank=3) == torch.device("cuda", 3)
    assert pick_device("cpu") == torch.device("cpu")
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert autocast_dtype("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype("auto", cuda) == torch.float16
    assert autocast_dtype("off", cuda) is None


def test_inference_autocast_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (True, False):
        monkeypatch.setattr(device, "cpu_has_native_bf16", lambda native=native: native)
        assert inference_dtype("auto", cpu) == (torch.bfloat16 if native else None)
    assert inference_dtype("off", cpu) is None and inference_dtype("bf16", cpu) == torch.bfloat16
    for bf16 in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        assert inference_dtype("auto", cuda) == (torch.bfloat16 if bf16 else torch.float16)
    assert inference_dtype("fp16", cuda) == torch.float16 and inference_dtype("off", cuda) is None
