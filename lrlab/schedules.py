"""Learning-rate schedules as pure functions of the step.

A schedule is an immutable callable: ``schedule(t)`` is the learning rate used during step ``t``,
where ``t`` counts completed epochs or updates (a real number ``>= 0``; ``t = 0`` is the first step).
Calling a schedule never changes it, so it can be plotted, tested and composed freely, in any order
(the design of optax's schedules and fvcore's param schedulers). :class:`lrlab.ScheduleLR` is the
one thin adapter that lets a schedule drive a PyTorch optimizer.

``t`` may be a Python number, a NumPy array or a torch tensor; the result is a ``float``, a
``float64`` array or a ``float64`` tensor of the same shape (on the tensor's device). All
arithmetic is done in float64.

The d2l names (``SquareRootScheduler``, ``FactorScheduler``, ``MultiFactorScheduler``,
``CosineScheduler``) follow *Dive into Deep Learning*, section "Learning Rate Scheduling"
(Zhang et al., 2023); their docstrings say where d2l's stateful versions differ.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Schedule",
    "ConstantScheduler",
    "SquareRootScheduler",
    "FactorScheduler",
    "MultiFactorScheduler",
    "StepScheduler",
    "ExponentialScheduler",
    "CosineScheduler",
    "PolyScheduler",
    "LinearWarmup",
    "SequentialScheduler",
    "WarmupMultiFactorSchedule",
]


# --------------------------------------------------------------------------- parameter checks


def _real(name: str, value: Any) -> float:
    """``value`` as a float, or TypeError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _finite(name: str, value: Any) -> float:
    x = _real(name, value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return x


def _non_negative(name: str, value: Any) -> float:
    """A learning rate, a step count or a power: finite and >= 0."""
    x = _finite(name, value)
    if x < 0:
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return x


def _positive(name: str, value: Any) -> float:
    x = _finite(name, value)
    if x <= 0:
        raise ValueError(f"{name} must be > 0, got {x!r}")
    return x


def _milestones(name: str, values: Any) -> tuple[float, ...]:
    """Sorted, non-negative, finite step numbers (repeats allowed: each counts once more)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of step numbers, got {type(values).__name__}")
    out = tuple(_non_negative(f"{name}[{i}]", v) for i, v in enumerate(values))
    if any(b < a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name} must be sorted in increasing order, got {list(values)!r}; sort it")
    return out


def _warmup(warmup_steps: Any, max_update: float) -> float:
    w = _non_negative("warmup_steps", warmup_steps)
    if w > max_update:
        raise ValueError(
            f"warmup_steps ({w:g}) must not exceed max_update ({max_update:g}): the warmup is part of "
            "the schedule; raise max_update or shorten the warmup"
        )
    return w


def _checked_rate(value: Any, where: str) -> float:
    """A learning rate that a schedule returned, as a float: finite and >= 0, else an error naming ``where``."""
    try:
        lr = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where} returned {value!r}, which is not a number; a schedule must return the learning rate") from err
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(f"{where} returned {lr!r}; a learning rate must be finite and >= 0 (check the schedule's parameters)")
    return lr


def _check_schedule(name: str, value: Any) -> Callable:
    if not callable(value):
        raise TypeError(f"{name} must be callable (t -> learning rate), got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- the base class


def _steps_as_array(t: Any) -> tuple[np.ndarray, Any]:
    """Validate steps and return them as float64 array plus a function restoring the input's kind."""
    if isinstance(t, bool):
        raise TypeError("t must be a real number, array or tensor of steps, got bool")
    if isinstance(t, numbers.Real):
        arr = np.array([float(t)])  # 1-d, so scalars take the same NumPy loops as arrays (same digits)

        def restore(values: np.ndarray) -> Any:
            return float(values[0])

    elif type(t).__module__.startswith("torch"):
        import torch

        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be a real number, array or tensor of steps, got {type(t).__name__}")
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must hold real step numbers, got a tensor of {t.dtype}")
        arr = t.detach().to("cpu", torch.float64).numpy()
        device = t.device

        def restore(values: np.ndarray) -> Any:
            return torch.from_numpy(np.asarray(values, dtype=np.float64)).to(device)

    else:
        arr = np.asarray(t)
        if arr.dtype == object or arr.dtype.kind not in "iuf":
            raise TypeError(f"t must be a real number, array or tensor of steps, got {type(t).__name__}")
        arr = arr.astype(np.float64)

        def restore(values: np.ndarray) -> Any:
            return np.asarray(values, dtype=np.float64)

    if not np.all(np.isfinite(arr)):
        raise ValueError("t must be finite (no NaN or inf steps)")
    if np.any(arr < 0):
        raise ValueError(f"t must be >= 0 (t = 0 is the first step), got {float(arr.min())!r}")
    return arr, restore


class Schedule:
    """Base class: a learning rate as a pure function of the step ``t``.

    Subclasses implement :meth:`value`, the formula on a float64 array of valid steps.
    ``__call__`` validates ``t``, evaluates element-wise and refuses to return a NaN or an
    infinity (OverflowError), so a schedule never hands an optimizer a silent NaN.
    """

    def value(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, t: Any) -> Any:
        arr, restore = _steps_as_array(t)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = np.asarray(self.value(arr), dtype=np.float64)
        if not np.all(np.isfinite(out)):
            bad = arr[~np.isfinite(out)]
            raise OverflowError(
                f"{self!r} is not finite at t = {float(np.min(bad))!r}; "
                "use parameters whose learning rate stays bounded"
            )
        return restore(out)


def _eval(schedule: Callable, t: np.ndarray) -> np.ndarray:
    """Any schedule on an array of steps: vectorised for lrlab schedules, element-wise otherwise."""
    if isinstance(schedule, Schedule):
        return schedule.value(t)
    flat = [float(schedule(float(x))) for x in t.ravel()]
    return np.asarray(flat, dtype=np.float64).reshape(t.shape)


def _linear_warmup(t: np.ndarray, begin: float, end: float, steps: float) -> np.ndarray:
    """``begin + (end - begin) * t / steps`` (only used where ``t < steps``, so ``steps > 0``)."""
    return begin + (end - begin) * (t / steps if steps > 0 else 0.0)


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ConstantScheduler(Schedule):
    """The same rate at every step: ``lr(t) = lr``."""

    lr: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _non_negative("lr", self.lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        return np.full_like(t, self.lr)


@dataclass(frozen=True)
class SquareRootScheduler(Schedule):
    """Inverse square-root decay: ``lr(t) = lr * (t + 1) ** (-1/2)``.

    d2l, "Learning Rate Scheduling", ``SquareRootScheduler`` (the same closed form: d2l's is
    stateless too).
    """

    lr: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _non_negative("lr", self.lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.lr * np.power(t + 1.0, -0.5)


@dataclass(frozen=True)
class FactorScheduler(Schedule):
    """Multiplicative decay with a floor: ``lr(t) = max(stop_factor_lr, base_lr * factor ** t)``.

    d2l's ``FactorScheduler`` keeps ``base_lr`` as state and multiplies it by ``factor`` on every
    call, whatever ``t`` it is given: its n-th call (n = 1, 2, ...) returns this schedule's value at
    ``t = n``. Plotted with ``[scheduler(t) for t in range(50)]`` it is therefore shifted one step
    left (it starts at ``base_lr * factor``), and calling it again continues where it stopped.
    """

    factor: float = 1.0
    stop_factor_lr: float = 1e-7
    base_lr: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor", _positive("factor", self.factor))
        object.__setattr__(self, "stop_factor_lr", _non_negative("stop_factor_lr", self.stop_factor_lr))
        object.__setattr__(self, "base_lr", _non_negative("base_lr", self.base_lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        return np.maximum(self.stop_factor_lr, self.base_lr * np.power(self.factor, t))


@dataclass(frozen=True)
class MultiFactorScheduler(Schedule):
    """Piecewise constant: ``lr(t) = base_lr * factor ** k``, ``k = #{s in steps : s <= t}``.

    The convention of ``torch.optim.lr_scheduler.MultiStepLR``: the rate changes *at* each step
    ``s``, so step ``s`` already trains at the reduced rate (MXNet's ``MultiFactorScheduler``, which
    d2l's MXNet tab uses, changes one update later: ``s < t``). A step listed twice counts twice.
    """

    steps: Sequence[float] = ()
    factor: float = 1.0
    base_lr: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _milestones("steps", self.steps))
        object.__setattr__(self, "factor", _positive("factor", self.factor))
        object.__setattr__(self, "base_lr", _non_negative("base_lr", self.base_lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(np.asarray(self.steps, dtype=np.float64), t, side="right")
        return self.base_lr * np.power(self.factor, k)


@dataclass(frozen=True)
class StepScheduler(Schedule):
    """Decay every ``step_size`` steps: ``lr(t) = base_lr * gamma ** floor(t / step_size)``.

    The closed form of ``torch.optim.lr_scheduler.StepLR``.
    """

    step_size: float = 1
    gamma: float = 0.1
    base_lr: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "step_size", _positive("step_size", self.step_size))
        object.__setattr__(self, "gamma", _positive("gamma", self.gamma))
        object.__setattr__(self, "base_lr", _non_negative("base_lr", self.base_lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.base_lr * np.power(self.gamma, np.floor(t / self.step_size))


@dataclass(frozen=True)
class ExponentialScheduler(Schedule):
    """Exponential decay: ``lr(t) = base_lr * gamma ** t``.

    The closed form of ``torch.optim.lr_scheduler.ExponentialLR`` (at integer ``t``).
    """

    gamma: float = 0.9
    base_lr: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", _positive("gamma", self.gamma))
        object.__setattr__(self, "base_lr", _non_negative("base_lr", self.base_lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.base_lr * np.power(self.gamma, t)


@dataclass(frozen=True)
class CosineScheduler(Schedule):
    """Cosine decay with an optional linear warmup (d2l; Loshchilov & Hutter, 2016).

    With ``w = warmup_steps`` and ``T = max_update``::

        t < w       : warmup_begin_lr + (base_lr - warmup_begin_lr) * t / w
        w <= t <= T : final_lr + (base_lr - final_lr) * (1 + cos(pi * (t - w) / (T - w))) / 2
        t > T       : final_lr

    The warmup is part of the ``T`` steps (use :class:`LinearWarmup` to put one in front). With
    ``w == T`` the cosine part is empty: ``base_lr`` at ``t = T``, ``final_lr`` after.
    d2l's ``CosineScheduler`` returns the same values when called in increasing ``t``, but it
    stores the last value as state: called first with ``t > max_update`` it raises
    ``AttributeError``, and with ``warmup_steps == max_update`` it divides by zero.
    """

    max_update: float = 1
    base_lr: float = 0.01
    final_lr: float = 0.0
    warmup_steps: float = 0
    warmup_begin_lr: float = 0.0

    def __post_init__(self) -> None:
        _decay_init(self)

    def value(self, t: np.ndarray) -> np.ndarray:
        return _decay_with_warmup(self, t, lambda x: (1.0 + np.cos(np.pi * x)) / 2.0)


@dataclass(frozen=True)
class PolyScheduler(Schedule):
    """Polynomial ("poly") decay with an optional linear warmup.

    With ``w = warmup_steps`` and ``T = max_update``::

        t < w       : warmup_begin_lr + (base_lr - warmup_begin_lr) * t / w
        w <= t <= T : final_lr + (base_lr - final_lr) * (1 - (t - w) / (T - w)) ** power
        t > T       : final_lr

    With ``final_lr = 0`` and no warmup this is the poly policy
    ``lr = base_lr * (1 - epoch / num_epoch) ** power`` and the closed form of
    ``torch.optim.lr_scheduler.PolynomialLR(total_iters=max_update, power=power)``.
    ``power = 0`` keeps ``base_lr`` up to ``T``; ``power = 1`` is a linear decay.
    """

    max_update: float = 1
    base_lr: float = 0.01
    final_lr: float = 0.0
    power: float = 1.0
    warmup_steps: float = 0
    warmup_begin_lr: float = 0.0

    def __post_init__(self) -> None:
        _decay_init(self)
        object.__setattr__(self, "power", _non_negative("power", self.power))

    def value(self, t: np.ndarray) -> np.ndarray:
        return _decay_with_warmup(self, t, lambda x: np.power(1.0 - x, self.power))


def _decay_init(s: Any) -> None:
    """Shared checks of CosineScheduler and PolyScheduler."""
    object.__setattr__(s, "max_update", _positive("max_update", s.max_update))
    object.__setattr__(s, "base_lr", _non_negative("base_lr", s.base_lr))
    object.__setattr__(s, "final_lr", _non_negative("final_lr", s.final_lr))
    object.__setattr__(s, "warmup_begin_lr", _non_negative("warmup_begin_lr", s.warmup_begin_lr))
    object.__setattr__(s, "warmup_steps", _warmup(s.warmup_steps, s.max_update))


def _decay_with_warmup(s: Any, t: np.ndarray, shape: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Warmup, then ``final + (base - final) * shape(progress)`` with progress 0 -> 1, then ``final``.

    ``shape(0) = 1`` and ``shape(1) = 0``, so the value is continuous at the end of the warmup.
    """
    w, span = s.warmup_steps, s.max_update - s.warmup_steps
    progress = np.clip((t - w) / span, 0.0, 1.0) if span > 0 else np.zeros_like(t)
    decay = s.final_lr + (s.base_lr - s.final_lr) * shape(progress)
    warm = _linear_warmup(t, s.warmup_begin_lr, s.base_lr, w)
    return np.where(t < w, warm, np.where(t > s.max_update, s.final_lr, decay))


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """A linear warmup put in front of any schedule, which then starts afresh.

    With ``w = warmup_steps``::

        t < w  : warmup_begin_lr + (schedule(0) - warmup_begin_lr) * t / w
        t >= w : schedule(t - w)

    The same as ``SequentialLR([LinearLR(start_factor, total_iters=w), S], milestones=[w])`` in
    torch (Goyal et al., 2017, gradual warmup).
    """

    schedule: Callable[[Any], Any]
    warmup_steps: float
    warmup_begin_lr: float = 0.0

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        object.__setattr__(self, "warmup_steps", _non_negative("warmup_steps", self.warmup_steps))
        object.__setattr__(self, "warmup_begin_lr", _non_negative("warmup_begin_lr", self.warmup_begin_lr))

    def value(self, t: np.ndarray) -> np.ndarray:
        w = self.warmup_steps
        target = float(_eval(self.schedule, np.zeros(1))[0])
        after = _eval(self.schedule, np.maximum(t - w, 0.0))
        return np.where(t < w, _linear_warmup(t, self.warmup_begin_lr, target, w), after)


@dataclass(frozen=True)
class SequentialScheduler(Schedule):
    """Schedules one after another, each starting afresh at its milestone.

    ``schedules[0]`` runs for ``t < milestones[0]``; ``schedules[i]`` runs from ``milestones[i-1]``
    and is called with ``t - milestones[i-1]``. As torch's ``SequentialLR`` and optax's
    ``join_schedules``. Warmup-stable-decay, for example, is::

        SequentialScheduler([LinearWarmup(ConstantScheduler(0.1), 5), PolyScheduler(20, base_lr=0.1)],
                            milestones=[80])
    """

    schedules: Sequence[Callable[[Any], Any]]
    milestones: Sequence[float]

    def __post_init__(self) -> None:
        if isinstance(self.schedules, (str, bytes)) or not isinstance(self.schedules, Sequence):
            raise TypeError(f"schedules must be a sequence of schedules, got {type(self.schedules).__name__}")
        schedules = tuple(_check_schedule(f"schedules[{i}]", s) for i, s in enumerate(self.schedules))
        milestones = _milestones("milestones", self.milestones)
        if not schedules:
            raise ValueError("schedules must hold at least one schedule")
        if len(milestones) != len(schedules) - 1:
            raise ValueError(
                f"milestones must have one entry fewer than schedules: got {len(milestones)} milestones "
                f"for {len(schedules)} schedules"
            )
        object.__setattr__(self, "schedules", schedules)
        object.__setattr__(self, "milestones", milestones)

    def value(self, t: np.ndarray) -> np.ndarray:
        starts = np.asarray((0.0,) + self.milestones)
        index = np.searchsorted(starts, t, side="right") - 1
        out = np.empty_like(t)
        for i, schedule in enumerate(self.schedules):
            mask = index == i
            if np.any(mask):
                out[mask] = _eval(schedule, t[mask] - starts[i])
        return out


_WARMUP_METHODS = ("constant", "linear")


@dataclass(frozen=True)
class WarmupMultiFactorSchedule(Schedule):
    """Multi-step decay times a warmup factor, the rule of the detection codebases.

    maskrcnn-benchmark's ``WarmupMultiStepLR`` (Goyal et al., 2017), as a pure schedule::

        lr(t) = base_lr * w(t) * gamma ** #{m in milestones : m <= t}
        w(t)  = warmup_factor                                  t < W, "constant"
              = warmup_factor * (1 - t / W) + t / W            t < W, "linear"
              = 1                                              t >= W

    with ``W = warmup_steps``. The warmup *multiplies* the rate (it rises from
    ``base_lr * warmup_factor`` to ``base_lr``); the milestones count from ``t = 0``.
    :class:`lrlab.WarmupMultiFactorScheduler` applies it to every param group of an optimizer.
    """

    milestones: Sequence[float] = ()
    gamma: float = 0.1
    warmup_factor: float = 1.0 / 3.0
    warmup_steps: float = 5
    warmup_method: str = "linear"
    base_lr: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", _milestones("milestones", self.milestones))
        object.__setattr__(self, "gamma", _positive("gamma", self.gamma))
        object.__setattr__(self, "warmup_factor", _positive("warmup_factor", self.warmup_factor))
        object.__setattr__(self, "warmup_steps", _non_negative("warmup_steps", self.warmup_steps))
        object.__setattr__(self, "base_lr", _non_negative("base_lr", self.base_lr))
        if self.warmup_method not in _WARMUP_METHODS:
            raise ValueError(
                f"warmup_method must be one of {_WARMUP_METHODS}, got {self.warmup_method!r}"
            )

    def value(self, t: np.ndarray) -> np.ndarray:
        W, wf = self.warmup_steps, self.warmup_factor
        if self.warmup_method == "linear":
            alpha = t / W if W > 0 else np.ones_like(t)
            warm = wf * (1.0 - alpha) + alpha
        else:
            warm = np.full_like(t, wf)
        factor = np.where(t < W, warm, 1.0)
        k = np.searchsorted(np.asarray(self.milestones, dtype=np.float64), t, side="right")
        return self.base_lr * factor * np.power(self.gamma, k)
