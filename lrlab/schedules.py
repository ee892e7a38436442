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

import numbers
from dataclasses import MISSING, dataclass, field, fields
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import checks as _checks
from .checks import choice, count, fraction, milestones, non_negative, positive
from .checks import schedule as callable_schedule

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
    "ProductScheduler",
    "WarmupMultiFactorSchedule",
    "OneCycleScheduler",
    "OneCycleMomentum",
    "CosineRestartsScheduler",
    "InverseSqrtScheduler",
    "CosineCyclesScheduler",
    "PiecewiseInterpolateScheduler",
    "CyclicScheduler",
    "CyclicMomentum",
    "WSDScheduler",
    "SWAScheduler",
    "checked_rate",
    "param",
]


# --------------------------------------------------------------------------- parameters


def param(check: Callable[[str, Any], Any], default: Any = MISSING, *, kw_only: bool = False) -> Any:
    """A schedule's parameter, checked by ``check(name, value)`` when the schedule is made (see :class:`Schedule`);
    ``kw_only``: it can only be given by name."""
    if default is MISSING:
        return field(metadata={"check": check}, kw_only=kw_only)
    return field(default=default, metadata={"check": check}, kw_only=kw_only)


def _warmup(warmup_steps: float, max_update: float, length: str = "max_update") -> None:
    if warmup_steps > max_update:
        raise ValueError(
            f"warmup_steps ({warmup_steps:g}) must not exceed {length} ({max_update:g}): the warmup is part of "
            f"the schedule; raise {length} or shorten the warmup"
        )


def checked_rate(value: Any, where: str) -> float:
    """A learning rate that a schedule returned, as a float: finite and >= 0, else an error naming ``where``."""
    return _checks.rate(value, where)


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

    Subclasses are frozen dataclasses whose parameters are declared with :func:`param` (a default and a
    check); making one runs every parameter's check, in order, then :meth:`check` for what involves
    several. They implement :meth:`value`, the formula on a float64 array of valid steps.
    ``__call__`` validates ``t``, evaluates element-wise and refuses to return a NaN or an
    infinity (OverflowError), so a schedule never hands an optimizer a silent NaN.
    """

    def __post_init__(self) -> None:
        for f in fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Checks that involve several parameters (run after each parameter's own)."""

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


def _after_warmup(t: np.ndarray, steps: float, begin: float, end: float, after: np.ndarray) -> np.ndarray:
    """The linear warmup from ``begin`` to ``end`` for ``t < steps``, then ``after``: every warmup of the module."""
    return np.where(t < steps, _linear_warmup(t, begin, end, steps), after)


#: Decay shapes ``f`` on the progress ``x`` in [0, 1], from ``f(0) = 1`` to ``f(1) = 0``: the rate is
#: ``final + (peak - final) * f(x)``. Shared by :class:`CosineScheduler` and :class:`WSDScheduler`.
DECAY_SHAPES = {
    "linear": lambda x: 1.0 - x,
    "cosine": lambda x: (1.0 + np.cos(np.pi * x)) / 2.0,
    "1-sqrt": lambda x: 1.0 - np.sqrt(x),
}


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ConstantScheduler(Schedule):
    """The same rate at every step: ``lr(t) = lr``."""

    lr: float = param(non_negative, 0.1)

    def value(self, t: np.ndarray) -> np.ndarray:
        return np.full_like(t, self.lr)


@dataclass(frozen=True)
class SquareRootScheduler(Schedule):
    """Inverse square-root decay: ``lr(t) = lr * (t + 1) ** (-1/2)``.

    d2l, "Learning Rate Scheduling", ``SquareRootScheduler`` (the same closed form: d2l's is
    stateless too).
    """

    lr: float = param(non_negative, 0.1)

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

    factor: float = param(positive, 1.0)
    stop_factor_lr: float = param(non_negative, 1e-7)
    base_lr: float = param(non_negative, 0.1)

    def value(self, t: np.ndarray) -> np.ndarray:
        return np.maximum(self.stop_factor_lr, self.base_lr * np.power(self.factor, t))


@dataclass(frozen=True)
class MultiFactorScheduler(Schedule):
    """Piecewise constant: ``lr(t) = base_lr * factor ** k``, ``k = #{s in steps : s <= t}``.

    The convention of ``torch.optim.lr_scheduler.MultiStepLR``: the rate changes *at* each step
    ``s``, so step ``s`` already trains at the reduced rate (MXNet's ``MultiFactorScheduler``, which
    d2l's MXNet tab uses, changes one update later: ``s < t``). A step listed twice counts twice.
    """

    steps: Sequence[float] = param(milestones, ())
    factor: float = param(positive, 1.0)
    base_lr: float = param(non_negative, 0.1)

    def value(self, t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(np.asarray(self.steps, dtype=np.float64), t, side="right")
        return self.base_lr * np.power(self.factor, k)


@dataclass(frozen=True)
class StepScheduler(Schedule):
    """Decay every ``step_size`` steps: ``lr(t) = base_lr * gamma ** floor(t / step_size)``.

    The closed form of ``torch.optim.lr_scheduler.StepLR``.
    """

    step_size: float = param(positive, 1)
    gamma: float = param(positive, 0.1)
    base_lr: float = param(non_negative, 0.1)

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.base_lr * np.power(self.gamma, np.floor(t / self.step_size))


@dataclass(frozen=True)
class ExponentialScheduler(Schedule):
    """Exponential decay: ``lr(t) = base_lr * gamma ** t``.

    The closed form of ``torch.optim.lr_scheduler.ExponentialLR`` (at integer ``t``).
    """

    gamma: float = param(positive, 0.9)
    base_lr: float = param(non_negative, 0.1)

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.base_lr * np.power(self.gamma, t)


@dataclass(frozen=True)
class _DecayWithWarmup(Schedule):
    """The parameters and formula shared by :class:`CosineScheduler` and :class:`PolyScheduler`: an optional
    linear warmup over ``warmup_steps`` of the ``max_update`` steps, then a decay of shape :meth:`shape` from
    ``base_lr`` to ``final_lr``, then ``final_lr``."""

    max_update: float = param(positive, 1)
    base_lr: float = param(non_negative, 0.01)
    final_lr: float = param(non_negative, 0.0)
    warmup_steps: float = param(non_negative, 0)
    warmup_begin_lr: float = param(non_negative, 0.0)

    def check(self) -> None:
        _warmup(self.warmup_steps, self.max_update)

    def shape(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self, t: np.ndarray) -> np.ndarray:
        return _decay_with_warmup(self, t, self.shape)


@dataclass(frozen=True)
class CosineScheduler(_DecayWithWarmup):
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

    def shape(self, x: np.ndarray) -> np.ndarray:
        return DECAY_SHAPES["cosine"](x)


@dataclass(frozen=True)
class PolyScheduler(_DecayWithWarmup):
    """Polynomial ("poly") decay with an optional linear warmup.

    With ``w = warmup_steps`` and ``T = max_update``::

        t < w       : warmup_begin_lr + (base_lr - warmup_begin_lr) * t / w
        w <= t <= T : final_lr + (base_lr - final_lr) * (1 - (t - w) / (T - w)) ** power
        t > T       : final_lr

    With ``final_lr = 0`` and no warmup this is the poly policy
    ``lr = base_lr * (1 - epoch / num_epoch) ** power`` and the closed form of
    ``torch.optim.lr_scheduler.PolynomialLR(total_iters=max_update, power=power)``.
    ``power = 0`` keeps ``base_lr`` up to ``T``; ``power = 1`` is a linear decay; ``power`` is given by name.
    """

    power: float = param(non_negative, 1.0, kw_only=True)

    def shape(self, x: np.ndarray) -> np.ndarray:
        return np.power(1.0 - x, self.power)


def _decay_with_warmup(s: Any, t: np.ndarray, shape: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Warmup, then ``final + (base - final) * shape(progress)`` with progress 0 -> 1, then ``final``.

    ``shape(0) = 1`` and ``shape(1) = 0``, so the value is continuous at the end of the warmup.
    """
    w, span = s.warmup_steps, s.max_update - s.warmup_steps
    progress = np.clip((t - w) / span, 0.0, 1.0) if span > 0 else np.zeros_like(t)
    decay = s.final_lr + (s.base_lr - s.final_lr) * shape(progress)
    return _after_warmup(t, w, s.warmup_begin_lr, s.base_lr, np.where(t > s.max_update, s.final_lr, decay))


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """A linear warmup put in front of any schedule, which then starts afresh.

    With ``w = warmup_steps``::

        t < w  : warmup_begin_lr + (schedule(0) - warmup_begin_lr) * t / w
        t >= w : schedule(t - w)

    The same as ``SequentialLR([LinearLR(start_factor, total_iters=w), S], milestones=[w])`` in
    torch (Goyal et al., 2017, gradual warmup).
    """

    schedule: Callable[[Any], Any] = param(callable_schedule)
    warmup_steps: float = param(non_negative)
    warmup_begin_lr: float = param(non_negative, 0.0)

    def value(self, t: np.ndarray) -> np.ndarray:
        w = self.warmup_steps
        target = float(_eval(self.schedule, np.zeros(1))[0])
        return _after_warmup(t, w, self.warmup_begin_lr, target, _eval(self.schedule, np.maximum(t - w, 0.0)))


def _schedules(name: str, values: Any) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of schedules, got {type(values).__name__}")
    if not values:
        raise ValueError(f"{name} must hold at least one schedule")
    return tuple(callable_schedule(f"{name}[{i}]", s) for i, s in enumerate(values))


@dataclass(frozen=True)
class SequentialScheduler(Schedule):
    """Schedules one after another, each starting afresh at its milestone.

    ``schedules[0]`` runs for ``t < milestones[0]``; ``schedules[i]`` runs from ``milestones[i-1]``
    and is called with ``t - milestones[i-1]``. As torch's ``SequentialLR`` and optax's
    ``join_schedules``. Warmup-stable-decay, for example, is::

        SequentialScheduler([LinearWarmup(ConstantScheduler(0.1), 5), PolyScheduler(20, base_lr=0.1)],
                            milestones=[80])
    """

    schedules: Sequence[Callable[[Any], Any]] = param(_schedules)
    milestones: Sequence[float] = param(milestones)

    def check(self) -> None:
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(
                f"milestones must have one entry fewer than schedules: got {len(self.milestones)} milestones "
                f"for {len(self.schedules)} schedules"
            )

    def value(self, t: np.ndarray) -> np.ndarray:
        starts = np.asarray((0.0,) + self.milestones)
        index = np.searchsorted(starts, t, side="right") - 1
        out = np.empty_like(t)
        for i, schedule in enumerate(self.schedules):
            mask = index == i
            if np.any(mask):
                out[mask] = _eval(schedule, t[mask] - starts[i])
        return out


@dataclass(frozen=True)
class ProductScheduler(Schedule):
    """The product of schedules, step by step: ``lr(t) = schedules[0](t) * schedules[1](t) * ...``.

    Give the rate to one factor and make the others multipliers (1.0 where they leave the rate alone),
    e.g. a warmup factor from 0.1 to 1 over 5 steps times an exponential decay from 0.3::

        ProductScheduler([LinearWarmup(ConstantScheduler(1.0), 5, warmup_begin_lr=0.1),
                          ExponentialScheduler(gamma=0.9, base_lr=0.3)])

    As torch's ``ChainedScheduler`` of multiplicative schedulers (``LinearLR``, ``ExponentialLR``, ...),
    each of which multiplies the rate by its own factor.
    """

    schedules: Sequence[Callable[[Any], Any]] = param(_schedules)

    def value(self, t: np.ndarray) -> np.ndarray:
        out = np.ones_like(t)
        for schedule in self.schedules:
            out = out * _eval(schedule, t)
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
    :class:`lrlab.WarmupMultiFactorLR` applies it to every param group of an optimizer.
    """

    milestones: Sequence[float] = param(milestones, ())
    gamma: float = param(positive, 0.1)
    warmup_factor: float = param(positive, 1.0 / 3.0)
    warmup_steps: float = param(non_negative, 5)
    warmup_method: str = param(choice(_WARMUP_METHODS), "linear")
    base_lr: float = param(non_negative, 1.0)

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


# --------------------------------------------------------------------------- schedules practice uses today


_ANNEAL_STRATEGIES = ("cos", "linear")


def _anneal(start: Any, end: Any, pct: np.ndarray, strategy: str) -> np.ndarray:
    """From ``start`` (pct = 0) to ``end`` (pct = 1): torch's ``OneCycleLR`` annealing functions."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1.0)
    return (end - start) * pct + start


@dataclass(frozen=True)
class OneCycleScheduler(Schedule):
    """The one-cycle policy (Smith & Topin, 2018), the closed form of torch's ``OneCycleLR``.

    With ``T = total_steps``, ``p = pct_start``, ``initial = max_lr / div_factor`` and
    ``min = initial / final_div_factor``, the rate is annealed (cosine or linear) between
    phase ends, each ``(end step, from, to)``::

        two phases   : (p*T - 1, initial, max_lr),  (T - 1, max_lr, min)
        three phases : (p*T - 1, initial, max_lr),  (2*p*T - 2, max_lr, initial),  (T - 1, initial, min)

    At step ``t`` the phase is the first whose end step is ``>= t`` (else the last), and
    ``pct = (t - previous end) / (end - previous end)`` (the first phase starts at 0);
    cosine annealing is ``to + (from - to) / 2 * (cos(pi * pct) + 1)``, linear ``from + (to - from) * pct``.
    Exactly torch's rule, including its value at ``t = T`` (the last phase continued a step past
    its end); for ``t > T``, where torch raises, the rate stays at ``min``.

    :attr:`momentum` is the momentum (SGD) or Adam's ``beta1`` that ``OneCycleLR(cycle_momentum=True)``
    sets in the same steps: from ``max_momentum`` down to ``base_momentum`` while the rate rises, and
    back up while it falls (three phases: ``max -> base -> max -> max``). Drive both with
    ``ScheduleLR(optimizer, sched, momentum=sched.momentum)``.
    """

    total_steps: int = param(count)
    max_lr: float = param(non_negative)
    pct_start: float = param(fraction, 0.3)
    anneal_strategy: str = param(choice(_ANNEAL_STRATEGIES), "cos")
    div_factor: float = param(positive, 25.0)
    final_div_factor: float = param(positive, 1e4)
    three_phase: bool = False
    base_momentum: float = param(non_negative, 0.85)
    max_momentum: float = param(non_negative, 0.95)

    def check(self) -> None:
        pct = self.pct_start
        ends = [end for end, _, _ in self._phases("lr")]
        starts = [0.0] + ends[:-1]
        if any(e <= s for s, e in zip(starts, ends)):
            raise ValueError(
                f"pct_start={pct!r} with total_steps={self.total_steps} leaves a phase without steps (phase ends "
                f"{ends}); torch's OneCycleLR would divide by zero there: raise total_steps or move pct_start "
                "away from 0 and 1"
            )

    @property
    def initial_lr(self) -> float:
        return self.max_lr / self.div_factor

    @property
    def min_lr(self) -> float:
        return self.initial_lr / self.final_div_factor

    @property
    def momentum(self) -> "OneCycleMomentum":
        """The momentum (or Adam's beta1) schedule that goes with this rate schedule."""
        return OneCycleMomentum(self)

    def _phases(self, what: str) -> list:
        T, p = self.total_steps, self.pct_start
        if what == "lr":
            lo, hi, end = self.initial_lr, self.max_lr, self.min_lr
        else:  # momentum moves against the rate
            lo, hi, end = self.max_momentum, self.base_momentum, self.max_momentum
        if self.three_phase:
            return [(float(p * T) - 1, lo, hi), (float(2 * p * T) - 2, hi, lo), (T - 1, lo, end)]
        return [(float(p * T) - 1, lo, hi), (T - 1, hi, end)]

    def _values(self, t: np.ndarray, what: str) -> np.ndarray:
        phases = self._phases(what)
        ends = np.array([e for e, _, _ in phases])
        index = np.minimum(np.searchsorted(ends, t, side="left"), len(phases) - 1)
        out = np.empty_like(t)
        for i, (end, start_value, end_value) in enumerate(phases):
            mask = index == i
            if np.any(mask):
                begin = phases[i - 1][0] if i else 0.0
                pct = (t[mask] - begin) / (end - begin)
                out[mask] = _anneal(start_value, end_value, pct, self.anneal_strategy)
        final = self.min_lr if what == "lr" else phases[-1][2]
        return np.where(t > self.total_steps, final, out)

    def value(self, t: np.ndarray) -> np.ndarray:
        return self._values(t, "lr")


@dataclass(frozen=True)
class OneCycleMomentum(Schedule):
    """The momentum half of a :class:`OneCycleScheduler` (its ``.momentum``): see there."""

    cycle: OneCycleScheduler

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.cycle._values(t, "momentum")


@dataclass(frozen=True)
class CosineRestartsScheduler(Schedule):
    """Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter, 2017).

    The ``i``-th cycle (``i = 0, 1, ...``) lasts ``T_i = T_0 * T_mult ** i`` steps and starts at
    ``S_i = T_0 * (T_mult ** i - 1) / (T_mult - 1)`` (``i * T_0`` when ``T_mult = 1``); inside it::

        lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * (t - S_i) / T_i)) / 2

    so the rate jumps back to ``base_lr`` at every ``S_i``. The closed form of torch's
    ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``, at integer steps (``.step()``) and at
    fractional ones (``.step(epoch)``, e.g. ``epoch + i / iters`` per update).
    """

    T_0: int = param(count)
    T_mult: int = param(count, 1)
    eta_min: float = param(non_negative, 0.0)
    base_lr: float = param(non_negative, 0.1)

    def cycle(self, t: np.ndarray) -> tuple:
        """``(start S_i, length T_i)`` of the cycle that each step ``t`` is in."""
        T0, m = float(self.T_0), self.T_mult
        if m == 1:
            i = np.floor(t / T0)
            return i * T0, np.full_like(t, T0)
        # the cycle index by counting, not by a logarithm (exact at the restarts)
        i = np.floor(np.log(t / T0 * (m - 1) + 1) / np.log(m))
        start = T0 * (np.power(float(m), i) - 1) / (m - 1)
        i = np.where(start > t, i - 1, np.where(T0 * (np.power(float(m), i + 1) - 1) / (m - 1) <= t, i + 1, i))
        start = T0 * (np.power(float(m), i) - 1) / (m - 1)
        return start, T0 * np.power(float(m), i)

    def value(self, t: np.ndarray) -> np.ndarray:
        start, length = self.cycle(t)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + np.cos(np.pi * (t - start) / length)) / 2.0


@dataclass(frozen=True)
class CosineCyclesScheduler(Schedule):
    """Cosine cycles with decaying peaks and a cycle limit: the closed form of timm's ``CosineLRScheduler``.

    timm's names (Wightman, ``timm/scheduler/cosine_lr.py``, version 1.0.31). With ``W = warmup_t``, the
    step counted from the warmup's end ``s = t - W`` when ``warmup_prefix`` (else ``s = t``), the first
    cycle's length ``T_0 = t_initial`` and ``m = cycle_mul``, the cycle ``i`` that ``s`` is in, its length
    ``T_i`` and the steps into it ``c`` are::

        m = 1 : i = floor(s / T_0),                       T_i = T_0,         c = s - i T_0
        m != 1: i = floor(log_m(1 - s / T_0 * (1 - m))),  T_i = m^i T_0,     c = s - (1 - m^i) / (1 - m) T_0

    and the rate::

        t < W                  : warmup_lr_init + t * (base_lr - warmup_lr_init) / W
        i < cycle_limit        : lr_min + (base_lr * cycle_decay^i - lr_min) * (1 + cos(pi c^k / T_i^k)) / 2
        otherwise              : lr_min

    with ``k = k_decay``. Each cycle restarts at its own peak, ``cycle_decay`` times the last one's (a
    peak decayed below ``lr_min`` rises from below it to ``lr_min``, as timm's does); after
    ``cycle_limit`` cycles the rate stays at ``lr_min``. Without ``warmup_prefix`` the warmup
    overlaps the first cycle: the cosine takes over at step ``W`` from where it has got to by then.
    timm's optional noise is left out.
    """

    t_initial: float = param(positive)
    base_lr: float = param(non_negative, 0.1)
    lr_min: float = param(non_negative, 0.0)
    cycle_mul: float = param(positive, 1.0)
    cycle_decay: float = param(positive, 1.0)
    cycle_limit: int = param(count, 1)
    warmup_t: float = param(non_negative, 0)
    warmup_lr_init: float = param(non_negative, 0.0)
    warmup_prefix: bool = False
    k_decay: float = param(positive, 1.0)

    def cycle(self, t: np.ndarray) -> tuple:
        """``(i, T_i, c)``: the cycle each step is in (from 0), its length and the steps into it."""
        s = np.maximum(t - self.warmup_t if self.warmup_prefix else t, 0.0)
        T0, m = self.t_initial, self.cycle_mul
        if m == 1:
            i = np.floor(s / T0)
            return i, np.full_like(s, T0), s - T0 * i
        i = np.floor(np.log(1 - s / T0 * (1 - m)) / np.log(m))
        return i, m ** i * T0, s - (1 - m ** i) / (1 - m) * T0

    def value(self, t: np.ndarray) -> np.ndarray:
        i, length, into = self.cycle(t)
        peak = self.base_lr * self.cycle_decay ** i
        k = self.k_decay
        cosine = self.lr_min + 0.5 * (peak - self.lr_min) * (1 + np.cos(np.pi * into ** k / length ** k))
        after = np.where(i < self.cycle_limit, cosine, self.lr_min)
        return _after_warmup(t, self.warmup_t, self.warmup_lr_init, self.base_lr, after)


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else check(name, value)


@dataclass(frozen=True)
class InverseSqrtScheduler(Schedule):
    """A linear warmup, then inverse square-root decay with a timescale (Vaswani et al., 2017; big_vision's
    ``rsqrt``, Zhai et al., 2022).

    In the course's vocabulary, ``W = warmup_steps`` and ``tau = timescale`` (default ``W``, or 10,000
    when ``W = 0``, as HuggingFace's)::

        t < W  : peak_lr * t / W
        t >= W : peak_lr / sqrt((t + tau - W) / tau)

    so the rate is ``peak_lr`` at ``t = W`` and has halved at ``t = W + 3 tau``. The values of HuggingFace
    transformers' ``get_inverse_sqrt_schedule(optimizer, num_warmup_steps=W, timescale=tau)`` with the
    optimizer's rate ``peak_lr`` (``transformers/optimization.py``, version 5.24.0). With ``W = 0`` and
    ``tau = 1`` it is d2l's :class:`SquareRootScheduler`, ``peak_lr / sqrt(t + 1)``.
    """

    peak_lr: float = param(non_negative)
    warmup_steps: float = param(non_negative, 0)
    timescale: Any = param(_optional(positive), None)

    @property
    def tau(self) -> float:
        """The timescale in use: ``timescale``, else ``warmup_steps``, else 10,000."""
        if self.timescale is not None:
            return self.timescale
        return self.warmup_steps or 10_000.0

    def value(self, t: np.ndarray) -> np.ndarray:
        W, tau = self.warmup_steps, self.tau
        decay = self.peak_lr / np.sqrt((np.maximum(t, W) + tau - W) / tau)
        return _after_warmup(t, W, 0.0, self.peak_lr, decay)


def _boundaries_and_scales(name: str, value: Any) -> tuple:
    """``{step: scale}`` (or its items) as sorted ``((step, scale), ...)``: steps and scales finite and >= 0."""
    items = value.items() if isinstance(value, dict) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, type({}.items()))):
        raise TypeError(f"{name} must be a dict {{step: scale}}, got {type(value).__name__}")
    pairs = []
    for pair in items:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name} must be a dict {{step: scale}}, got an item {pair!r}")
        step, scale = pair
        pairs.append((non_negative(f"{name} step", step), non_negative(f"{name}[{step!r}]", scale)))
    steps = [s for s, _ in pairs]
    if len(set(steps)) != len(steps):
        raise ValueError(f"{name} names a step twice: {sorted(steps)!r}")
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class PiecewiseInterpolateScheduler(Schedule):
    """Scales accumulated at boundaries, interpolated between them: optax's ``piecewise_interpolate_schedule``.

    With boundaries ``b_1 < ... < b_n`` (and ``b_0 = 0``) and scales ``s_1, ..., s_n`` from
    ``boundaries_and_scales = {b_i: s_i}``, the values ``v_0 = init_value`` and ``v_i = v_(i-1) * s_i``
    are reached at the boundaries; for ``b_i <= t < b_(i+1)``, with ``p = (t - b_i) / max(b_(i+1) - b_i, 1)``::

        linear : v_i + (v_(i+1) - v_i) * p
        cosine : v_(i+1) + (v_i - v_(i+1)) * (1 + cos(pi * p)) / 2

    and ``v_n`` from ``b_n`` on. The scales multiply: ``{4: 0.1, 8: 0.1}`` ends at ``init_value / 100``.
    optax 0.2.8, ``optax/schedules/_schedule.py``; the names are optax's.
    """

    interpolate_type: str = param(choice(("linear", "cosine")))
    init_value: float = param(non_negative)
    boundaries_and_scales: Any = param(_boundaries_and_scales, ())

    def value(self, t: np.ndarray) -> np.ndarray:
        pairs = self.boundaries_and_scales
        bounds = np.array((0.0,) + tuple(b for b, _ in pairs))
        values = np.cumprod((self.init_value,) + tuple(s for _, s in pairs))
        if len(bounds) < 2:
            return np.full_like(t, values[-1])
        i = np.searchsorted(bounds, t, side="right") - 1
        last = i >= len(bounds) - 1
        j = np.minimum(i, len(bounds) - 2)  # the interval (unused where last)
        pct = (t - bounds[j]) / np.maximum(bounds[j + 1] - bounds[j], 1.0)
        inside = _anneal(values[j], values[j + 1], pct, "cos" if self.interpolate_type == "cosine" else "linear")
        return np.where(last, values[-1], inside)


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


@dataclass(frozen=True)
class CyclicScheduler(Schedule):
    """Cyclical learning rates (Smith, 2017), the closed form of torch's ``CyclicLR``.

    A cycle lasts ``L = step_size_up + step_size_down`` steps (``step_size_down`` defaults to
    ``step_size_up``): the rate rises linearly from ``base_lr`` to ``max_lr`` in ``step_size_up`` steps,
    then falls back in ``step_size_down``. With ``r = step_size_up / L``, ``c = floor(1 + t / L)`` (the
    cycle, from 1) and ``x = 1 + t / L - c`` (the position in it, from 0 to 1)::

        h(t)  = x / r                 if x <= r
                (x - 1) / (r - 1)     otherwise
        lr(t) = base_lr + (max_lr - base_lr) * h(t) * s

    where the amplitude's scale ``s`` is ``1`` ("triangular"), ``1 / 2 ** (c - 1)`` ("triangular2",
    halved every cycle) or ``gamma ** t`` ("exp_range"). :attr:`momentum` is ``CyclicLR``'s
    ``cycle_momentum``: ``max_momentum - (max_momentum - base_momentum) * h(t) * s``, low when the rate
    is high. Torch's names and defaults (``mode``, ``gamma``, ``base_momentum = 0.8``,
    ``max_momentum = 0.9``); torch's custom ``scale_fn`` is left out (compose a schedule instead).
    """

    base_lr: float = param(non_negative)
    max_lr: float = param(non_negative)
    step_size_up: float = param(positive, 2000)
    step_size_down: Any = param(_optional(positive), None)
    mode: str = param(choice(_CYCLIC_MODES), "triangular")
    gamma: float = param(positive, 1.0)
    base_momentum: float = param(non_negative, 0.8)
    max_momentum: float = param(non_negative, 0.9)

    @property
    def cycle_length(self) -> float:
        """``L``, the steps of one cycle (up and down)."""
        return self.step_size_up + (self.step_size_up if self.step_size_down is None else self.step_size_down)

    @property
    def momentum(self) -> "CyclicMomentum":
        """The momentum (or Adam's beta1) schedule that goes with this rate schedule."""
        return CyclicMomentum(self)

    def _height(self, t: np.ndarray) -> np.ndarray:
        """``h(t) * s``: the fraction of the way from the base to the peak, scaled by the mode."""
        L = self.cycle_length
        r = self.step_size_up / L
        c = np.floor(1.0 + t / L)
        x = 1.0 + t / L - c
        h = np.where(x <= r, x / r, (x - 1.0) / (r - 1.0))
        if self.mode == "triangular":
            return h * 1.0
        if self.mode == "triangular2":
            return h * (1.0 / 2.0 ** (c - 1.0))
        return h * self.gamma ** t

    def value(self, t: np.ndarray) -> np.ndarray:
        return self.base_lr + (self.max_lr - self.base_lr) * self._height(t)


@dataclass(frozen=True)
class CyclicMomentum(Schedule):
    """The momentum half of a :class:`CyclicScheduler` (its ``.momentum``): see there."""

    cycle: CyclicScheduler

    def value(self, t: np.ndarray) -> np.ndarray:
        c = self.cycle
        return c.max_momentum - (c.max_momentum - c.base_momentum) * c._height(t)


def _decay_fraction(name: str, value: Any) -> float:
    x = fraction(name, value)
    if x == 0.0:
        raise ValueError(f"{name} must be in (0, 1], got {x!r}")
    return x


@dataclass(frozen=True)
class WSDScheduler(Schedule):
    """Warmup, stable, decay (MiniCPM, Hu et al., 2024; Hägele et al., 2024).

    In the course's vocabulary for the schedules beyond d2l and torch: ``T = total_steps``,
    ``W = warmup_steps``, the peak ``peak_lr``, the floor ``final_lr``, and ``D`` decay steps
    (``decay_steps``, or ``decay_fraction * T``)::

        t < W           : warmup_begin_lr + (peak_lr - warmup_begin_lr) * t / W
        W <= t < T - D  : peak_lr
        T - D <= t < T  : final_lr + (peak_lr - final_lr) * f((t - (T - D)) / D)
        t >= T          : final_lr

    with ``f`` from :data:`DECAY_SHAPES`: ``1 - x`` ("linear"), ``(1 + cos(pi x)) / 2`` ("cosine") or
    ``1 - sqrt(x)`` ("1-sqrt", Hägele et al.'s best shape). The stable phase does not depend on ``T``: one
    run at ``peak_lr`` can be cooled down from any of its checkpoints, which is why the schedule suits a
    budget that is not known in advance. With ``warmup_begin_lr = final_lr`` these are the values of
    HuggingFace's ``get_wsd_schedule`` (linear warmup, ``min_lr_ratio = final_lr / peak_lr``).
    """

    total_steps: float = param(positive)
    peak_lr: float = param(non_negative)
    final_lr: float = param(non_negative, 0.0)
    warmup_steps: float = param(non_negative, 0)
    decay_steps: Any = param(_optional(positive), None)
    decay_fraction: Any = param(_optional(_decay_fraction), None)
    decay_shape: str = param(choice(tuple(DECAY_SHAPES)), "1-sqrt")
    warmup_begin_lr: float = param(non_negative, 0.0)

    def check(self) -> None:
        T = self.total_steps
        _warmup(self.warmup_steps, T, "total_steps")
        if (self.decay_steps is None) == (self.decay_fraction is None):
            raise ValueError("give the decay's length as exactly one of decay_steps (a step count) or "
                             "decay_fraction (of total_steps), e.g. decay_fraction=0.2")
        if self.warmup_steps + self.decay_length > T:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps:g}) + the decay ({self.decay_length:g} steps) exceed total_steps "
                f"({T:g}): shorten one of them or raise total_steps"
            )

    @property
    def decay_length(self) -> float:
        """``D``, the decay's number of steps."""
        return self.decay_fraction * self.total_steps if self.decay_steps is None else self.decay_steps

    @property
    def decay_start(self) -> float:
        """``T - D``: the last step of the stable phase is just before it."""
        return self.total_steps - self.decay_length

    def value(self, t: np.ndarray) -> np.ndarray:
        W, D, start = self.warmup_steps, self.decay_length, self.decay_start
        x = np.clip((t - start) / D, 0.0, 1.0)
        decay = self.final_lr + (self.peak_lr - self.final_lr) * DECAY_SHAPES[self.decay_shape](x)
        return _after_warmup(t, W, self.warmup_begin_lr, self.peak_lr,
                             np.where(t < start, self.peak_lr, np.where(t < self.total_steps, decay, self.final_lr)))


#: SWALR's annealing from the schedule's rate (alpha = 0) to ``swa_lr`` (alpha = 1), on the progress ``x`` in [0, 1].
_SWA_ANNEAL = {"cos": lambda x: (1.0 - np.cos(np.pi * x)) / 2.0, "linear": lambda x: x}


@dataclass(frozen=True)
class SWAScheduler(Schedule):
    """A schedule, then stochastic weight averaging's rate (Izmailov et al., 2018): torch's ``SWALR`` as a pure schedule.

    With ``S = swa_start``, ``A = anneal_steps`` and ``r = schedule(S)``::

        t < S  : schedule(t)
        t >= S : swa_lr * a + r * (1 - a),   a = f(min(1, (t - S) / A))   (a = 1 when A = 0)

    ``f(x) = (1 - cos(pi x)) / 2`` (``"cos"``) or ``x`` (``"linear"``). These are the rates of
    ``SWALR(optimizer, swa_lr, anneal_epochs=A, anneal_strategy)`` made at step ``S`` (after the schedule's
    scheduler has stepped ``S`` times) and stepped after every later step, as torch's SWA recipe does;
    ``A`` counts what the schedule counts (epochs, or updates). The averaging itself is
    :class:`lrlab.averaging.WeightAverage` (``kind="swa"``, from ``S``).
    """

    schedule: Callable[[Any], Any] = param(callable_schedule)
    swa_start: float = param(non_negative)
    swa_lr: float = param(non_negative)
    anneal_steps: int = param(lambda name, v: count(name, v, low=0), 10)
    anneal_strategy: str = param(choice(tuple(_SWA_ANNEAL)), "cos")

    def value(self, t: np.ndarray) -> np.ndarray:
        S = self.swa_start
        start = float(_eval(self.schedule, np.array([S]))[0])
        x = np.clip((t - S) / max(1, self.anneal_steps), 0.0, 1.0) if self.anneal_steps else np.ones_like(t)
        a = _SWA_ANNEAL[self.anneal_strategy](x)
        return np.where(t < S, _eval(self.schedule, np.minimum(t, S)), self.swa_lr * a + start * (1.0 - a))
