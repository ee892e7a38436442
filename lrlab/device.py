"""The device a notebook trains on: the first GPU when there is one, else the CPU.

Every notebook of the course gets its device through :func:`try_gpu`, so the same cells run on a
CUDA GPU, on Apple silicon (``mps``) or on a laptop CPU without change. :func:`check_device` refuses a
device this machine does not have, with the list of those it has; :func:`to_device` moves a batch.

Reference: d2l's ``try_gpu`` (Zhang et al., *Dive into Deep Learning*, section "GPUs"), extended
with Apple's ``mps`` backend.
"""

from __future__ import annotations

import torch

__all__ = ["try_gpu", "check_device", "to_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def try_gpu(i: int = 0) -> torch.device:
    """Return the device to train on: ``cuda:i``, else ``mps``, else ``cpu``.

    - CUDA present and ``i < torch.cuda.device_count()``: ``torch.device(f"cuda:{i}")``.
    - No CUDA, Apple's Metal backend present and ``i == 0``: ``torch.device("mps")`` (there is one
      such device).
    - Otherwise ``torch.device("cpu")``.

    As in d2l's ``try_gpu(i)`` ("return gpu(i) if exists, otherwise return cpu()"), asking for a GPU
    index that does not exist falls back to the CPU rather than failing, so a notebook written on a
    multi-GPU machine still runs on a laptop. A negative or non-integer ``i`` is a programming error
    and raises ``ValueError``.

    >>> try_gpu().type in {"cuda", "mps", "cpu"}
    True
    """
    if isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise ValueError(f"try_gpu(i): i must be a GPU index, an int >= 0; got i={i!r}")
    if torch.cuda.is_available():
        if i < torch.cuda.device_count():
            return torch.device(f"cuda:{i}")
        return torch.device("cpu")
    if i == 0 and _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device``, checked to exist on this machine; else ValueError naming it and the fix.

    ``"cuda:7"`` on a machine with two GPUs, ``"cuda"`` without CUDA, ``"mps"`` off Apple silicon, or a
    name torch does not know, fail here, before any data is loaded or any net is built.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a device name ({err}); use 'cpu', 'cuda', 'cuda:0' or 'mps'") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if device.index is None else device.index
        if index >= count:
            have = f"{count} CUDA GPU(s): cuda:0..cuda:{count - 1}" if count else "no CUDA GPU"
            raise ValueError(f"device '{device}' is not on this machine, which has {have}; use "
                             f"{'cuda:0 or ' if count else ''}cpu")
    elif device.type == "mps" and not _mps_available():
        raise ValueError("device 'mps' (Apple silicon) is not available on this machine; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device '{device}' is not supported by the course; use cpu, cuda or mps")
    return device


def to_device(x, device: torch.device):
    """A tensor (or a list or tuple of them, nested) on ``device``; anything else as it is."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x
