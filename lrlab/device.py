"""The device a notebook trains on: the first GPU when there is one, else the CPU.

Every notebook of the course gets its device through :func:`try_gpu`, so the same cells run on a
CUDA GPU, on Apple silicon (``mps``) or on a laptop CPU without change.

Reference: d2l's ``try_gpu`` (Zhang et al., *Dive into Deep Learning*, section "GPUs"), extended
with Apple's ``mps`` backend.
"""

from __future__ import annotations

import torch

__all__ = ["try_gpu"]


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
