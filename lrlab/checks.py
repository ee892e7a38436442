"""Parameter checks shared by the library: each returns the value in its canonical type or raises an
error that names the parameter, so a bad argument fails where it is given, not epochs later.

Each check takes ``(name, value)``: ``name`` is how the caller spells the parameter, and goes into the
message.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["real", "finite", "non_negative", "positive", "count", "fraction", "milestones", "schedule", "rate",
           "choice"]


def real(name: str, value: Any) -> float:
    """``value`` as a float, or TypeError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def finite(name: str, value: Any) -> float:
    """A finite real number."""
    x = real(name, value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return x


def non_negative(name: str, value: Any) -> float:
    """A learning rate, a step count or a power: finite and >= 0."""
    x = finite(name, value)
    if x < 0:
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return x


def positive(name: str, value: Any) -> float:
    """Finite and > 0 (a length, a factor)."""
    x = finite(name, value)
    if x <= 0:
        raise ValueError(f"{name} must be > 0, got {x!r}")
    return x


def count(name: str, value: Any, low: int = 1) -> int:
    """An int >= ``low`` (a number of steps or processes; a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def fraction(name: str, value: Any) -> float:
    """A number in [0, 1]."""
    x = finite(name, value)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {x!r}")
    return x


def milestones(name: str, values: Any) -> tuple[float, ...]:
    """Sorted, non-negative, finite step numbers (repeats allowed: each counts once more)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of step numbers, got {type(values).__name__}")
    out = tuple(non_negative(f"{name}[{i}]", v) for i, v in enumerate(values))
    if any(b < a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name} must be sorted in increasing order, got {list(values)!r}; sort it")
    return out


def schedule(name: str, value: Any) -> Callable:
    """A callable ``t -> value`` (a schedule)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable (t -> learning rate), got {type(value).__name__}")
    return value


def choice(options: Sequence[str]) -> Callable[[str, Any], str]:
    """A check that the value is one of ``options``."""
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
        return value
    return check


def rate(value: Any, where: str) -> float:
    """A learning rate that a schedule returned, as a float: finite and >= 0, else an error naming ``where``."""
    try:
        lr = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where} returned {value!r}, which is not a number; a schedule must return the learning "
                        f"rate") from err
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(f"{where} returned {lr!r}; a learning rate must be finite and >= 0 (check the schedule's "
                         f"parameters)")
    return lr
