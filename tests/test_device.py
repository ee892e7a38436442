"""try_gpu: cuda:i, else mps, else cpu; the hardware is faked with monkeypatch so every branch runs here."""

import pytest
import torch

from lrlab import try_gpu


def fake_hardware(monkeypatch, cuda_devices=0, mps=False):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_devices > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_devices)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_cpu_only(monkeypatch):
    fake_hardware(monkeypatch)
    assert try_gpu() == torch.device("cpu")
    assert try_gpu(3) == torch.device("cpu")


@pytest.mark.parametrize("i", [0, 1])
def test_cuda_index_that_exists(monkeypatch, i):
    fake_hardware(monkeypatch, cuda_devices=2, mps=True)
    assert try_gpu(i) == torch.device(f"cuda:{i}")


def test_cuda_index_that_does_not_exist_falls_back_to_cpu_like_d2l(monkeypatch):
    fake_hardware(monkeypatch, cuda_devices=1)
    assert try_gpu(1) == torch.device("cpu")


def test_mps_when_no_cuda(monkeypatch):
    fake_hardware(monkeypatch, mps=True)
    assert try_gpu() == torch.device("mps")
    assert try_gpu(1) == torch.device("cpu")  # there is a single mps device


def test_cuda_preferred_over_mps(monkeypatch):
    fake_hardware(monkeypatch, cuda_devices=1, mps=True)
    assert try_gpu() == torch.device("cuda:0")


@pytest.mark.parametrize("bad", [-1, 0.0, "0", True, None])
def test_bad_index_is_an_error_naming_i(bad):
    with pytest.raises(ValueError, match=r"try_gpu\(i\)"):
        try_gpu(bad)


def test_real_machine_gives_a_usable_device():
    device = try_gpu()
    assert torch.ones(2, device=device).sum().item() == 2.0
