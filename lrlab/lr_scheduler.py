"""Drop-in PyTorch schedulers: the one bridge from lrlab's pure schedules to an optimizer.

Both classes are ordinary ``torch.optim.lr_scheduler.LRScheduler`` subclasses: call ``.step()``
after ``optimizer.step()``, once per epoch or once per update (the caller's choice, which decides
what ``t`` counts), and save or restore them with ``state_dict()`` / ``load_state_dict()``. Their
state holds only plain numbers and lists, so ``torch.load(..., weights_only=True)`` reads it back.
The math lives in :mod:`lrlab.schedules`; here it is only applied (as HuggingFace's schedulers
bridge to ``LambdaLR``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from .checks import count, non_negative
from .schedules import WarmupMultiFactorSchedule, checked_rate

__all__ = ["ScheduleLR", "WarmupMultiFactorLR", "trace_scheduler", "RecordingOptimizer", "updates_per_epoch"]


class ScheduleLR(LRScheduler):
    """Drive any optimizer by any schedule: after ``t`` calls of ``.step()`` the lr is ``schedule(t)``.

    ``schedule`` is an lrlab schedule or any callable ``t -> lr`` (``t`` an int >= 0). With one
    param group the lr equals ``schedule(t)`` exactly. With several, each group keeps the ratio of
    its initial lr to the first group's: ``lr_i = schedule(t) * initial_lr_i / initial_lr_0``.
    A list of schedules, one per param group, drives each group by its own: ``lr_i = schedule[i](t)``
    exactly (discriminative rates for fine-tuning, as a list of lambdas does in torch's ``LambdaLR``).

    ``fields``: more param-group fields driven by schedules of the same ``t``, written into every group
    with the rate: ``{"weight_decay": s}``, ``{"momentum": s}``, or any other field the optimizer's groups
    have. ``"momentum"`` is the momentum of SGD and RMSprop and Adam's ``beta1`` (``betas[0]``), what torch's
    ``OneCycleLR(cycle_momentum=True)`` drives; like torch, it writes a momentum even into an SGD built
    without one (``momentum=0``), which turns on SGD's momentum buffer. ``momentum=s`` is short for
    ``fields={"momentum": s}``. A momentum must be in [0, 1); other values finite and >= 0.

    ``state_dict()`` leaves the schedules out (they are configuration, not state): to resume, build a
    new ``ScheduleLR`` with the same schedules and load the saved state into it.

    Example::

        opt = torch.optim.SGD(net.parameters(), lr=0.3)
        sched = ScheduleLR(opt, CosineScheduler(20, base_lr=0.3, final_lr=0.01))
        for epoch in range(20):
            train_one_epoch(net, opt)   # trains at CosineScheduler(...)(epoch)
            sched.step()

        one = OneCycleScheduler(total_steps=30 * len(train_iter), max_lr=0.3)
        sched = ScheduleLR(opt, one, momentum=one.momentum)   # .step() after every update
        wd = ScheduleLR(opt, one, fields={"weight_decay": CosineScheduler(30, base_lr=5e-4, final_lr=5e-5)})
    """

    def __init__(self, optimizer: Optimizer, schedule: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1, *,
                 momentum: Callable[[int], float] | None = None,
                 fields: Mapping[str, Callable[[int], float]] | None = None) -> None:
        if isinstance(schedule, (list, tuple)):
            groups = len(optimizer.param_groups)
            if len(schedule) != groups:
                raise ValueError(f"schedule is a list of {len(schedule)} schedules for {groups} param groups; "
                                 f"give one per group, or a single schedule for all of them")
            for i, each in enumerate(schedule):
                if not callable(each):
                    raise TypeError(f"schedule[{i}] must be callable (t -> learning rate), got {type(each).__name__}")
            schedule = tuple(schedule)
        elif not callable(schedule):
            raise TypeError(f"schedule must be callable (t -> learning rate), got {type(schedule).__name__}")
        fields = dict(fields or {})
        if momentum is not None:
            if "momentum" in fields:
                raise ValueError("give the momentum schedule once: momentum= or fields={'momentum': ...}, not both")
            fields["momentum"] = momentum
        defaults = getattr(optimizer, "defaults", {})
        for name, field_schedule in fields.items():
            if not callable(field_schedule):
                raise TypeError(f"{name} must be callable (t -> {name}) or None, got {type(field_schedule).__name__}")
            if name == "lr":
                raise ValueError("the lr is the schedule itself (the second argument), not one of fields")
            if name == "momentum":
                if "momentum" not in defaults and "betas" not in defaults:
                    raise ValueError(f"momentum= needs an optimizer with a momentum (SGD, RMSprop) or betas (Adam, "
                                     f"AdamW); {type(optimizer).__name__} has neither")
            elif name not in defaults:
                raise ValueError(f"{type(optimizer).__name__}'s param groups have no field {name!r}; its fields are "
                                 f"{sorted(k for k in defaults if k != 'params')}")
        self.schedule = schedule
        self.fields = fields
        super().__init__(optimizer, last_epoch)

    @property
    def momentum(self) -> Callable[[int], float] | None:
        """The momentum schedule (``fields["momentum"]``), or None."""
        return self.fields.get("momentum")

    def get_lr(self) -> list[Any]:
        self._set_fields(self.last_epoch)
        return self._lrs_at(self.last_epoch)

    def _get_closed_form_lr(self) -> list[Any]:
        self._set_fields(self.last_epoch)
        return self._lrs_at(self.last_epoch)

    def _set_fields(self, t: int) -> None:
        """Write every field's schedule at ``t`` into every group (momentum as Adam's beta1 where it has betas)."""
        for name, field_schedule in self.fields.items():
            value = field_schedule(t)
            x = float(value)
            if name == "momentum":
                if not 0.0 <= x < 1.0:
                    raise ValueError(f"momentum({t}) returned {value!r}; a momentum must be in [0, 1)")
            elif not (math.isfinite(x) and x >= 0):
                raise ValueError(f"{name}({t}) returned {value!r}; it must be finite and >= 0")
            for group in self.optimizer.param_groups:
                if name == "momentum" and "betas" in group:
                    group["betas"] = (x, *group["betas"][1:])
                else:
                    group[name] = x

    def _lrs_at(self, t: int) -> list[Any]:
        if isinstance(self.schedule, tuple):
            return [checked_rate(each(t), f"schedule[{i}]({t})") for i, each in enumerate(self.schedule)]
        lr = checked_rate(self.schedule(t), f"schedule({t})")
        first = self.base_lrs[0]
        if len(self.base_lrs) > 1 and first == 0:
            raise ValueError(
                "the first param group's initial lr is 0, so the other groups' ratios to it are undefined; "
                "give the first group a non-zero lr, or drive each group with its own scheduler"
            )
        return [lr] + [lr * (base / first) for base in self.base_lrs[1:]]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.pop("schedule", None)
        state.pop("fields", None)
        return state


class WarmupMultiFactorLR(ScheduleLR):
    """Warmup then multi-step decay, per param group: maskrcnn-benchmark's ``WarmupMultiStepLR``.

    A torch scheduler (its name ends in ``LR``, as torch's do): it *multiplies* each group's initial lr
    by :class:`lrlab.WarmupMultiFactorSchedule` (a pure schedule, with ``base_lr=1``), where
    :class:`ScheduleLR` sets the lr to its schedule's value. The warmup tutorial's class of the same
    shape is ``WarmupMultiFactorScheduler`` (:mod:`lrlab.sources.tutorials`, as published).

    ``lr_i(t) = initial_lr_i * w(t) * gamma ** #{m in milestones : m <= t}``, where during the first
    ``warmup_epochs`` steps ``w`` is ``warmup_factor`` ("constant") or rises linearly from
    ``warmup_factor`` to 1 ("linear"); see :class:`lrlab.schedules.WarmupMultiFactorSchedule`.
    ``t`` counts calls of ``.step()``: call it once per epoch for a per-epoch warmup, or once per
    update (with milestones and ``warmup_epochs`` counted in updates) for the per-iteration warmup
    of the detection codebases. Example (the course's chapter 7)::

        WarmupMultiFactorLR(optimizer, milestones=[50, 75], gamma=0.1,
                            warmup_factor=0.001, warmup_epochs=10, last_epoch=-1)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_factor: float = 1.0 / 3.0,
        warmup_epochs: int = 5,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ) -> None:
        non_negative("warmup_epochs", warmup_epochs)  # checked here to name the parameter as passed
        schedule = WarmupMultiFactorSchedule(milestones, gamma, warmup_factor, warmup_epochs, warmup_method)
        self.milestones = list(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_epochs = warmup_epochs
        self.warmup_method = warmup_method
        super().__init__(optimizer, schedule, last_epoch)

    def _lrs_at(self, t: int) -> list[Any]:
        factor = self.schedule(t)
        return [base * factor for base in self.base_lrs]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.schedule = WarmupMultiFactorSchedule(
            self.milestones, self.gamma, self.warmup_factor, self.warmup_epochs, self.warmup_method
        )


def updates_per_epoch(n_batches: int, accumulation: int = 1, world_size: int = 1, *,
                      partial_update: bool = True) -> int:
    """The optimizer updates in one epoch, the unit of a scheduler stepped once per update.

    ``n_batches`` is ``len(DataLoader(dataset, batch_size=B))`` on one process (``drop_last=False``), at
    the batch size ``B`` of each process. Under ``world_size`` processes, each with a ``DistributedSampler``
    (which pads the dataset to a multiple of ``world_size``), every process sees
    ``ceil(n_batches / world_size)`` batches, and with ``accumulation`` batches per update::

        U = ceil(ceil(n_batches / world_size) / accumulation)    (partial_update=True)
        U = floor(ceil(n_batches / world_size) / accumulation)   (partial_update=False)

    ``partial_update=True`` counts the update a loop makes from the last, short group of batches
    (``if (i + 1) % accumulation == 0 or i + 1 == len(loader)``);
    ``False``, a loop that steps only after full groups. A per-update schedule of ``E`` epochs has
    ``E * U`` steps.
    """
    n = count("n_batches", n_batches)
    k = count("accumulation", accumulation)
    w = count("world_size", world_size)
    per_process = -(-n // w)
    return -(-per_process // k) if partial_update else per_process // k


def trace_scheduler(
    make_scheduler: Callable[[Optimizer], Any],
    num_steps: int,
    lr: float = 0.1,
    metrics: Sequence[float] | None = None,
) -> np.ndarray:
    """The lr that each of ``num_steps`` steps runs at under a torch scheduler, without training.

    ``make_scheduler(optimizer)`` builds the scheduler on a fresh SGD optimizer with one
    parameter and learning rate ``lr``; then ``num_steps`` times the lr is recorded and
    ``optimizer.step()`` and ``scheduler.step()`` are called (with ``metrics[i]`` for
    ``ReduceLROnPlateau``). Entry ``t`` of the result is the lr of step ``t``, the quantity an
    lrlab schedule returns, so the two can be compared and plotted side by side::

        trace_scheduler(lambda opt: torch.optim.lr_scheduler.StepLR(opt, 5, 0.5), 20, lr=0.1)
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    if plateau and (metrics is None or len(metrics) < num_steps):
        raise ValueError("metrics must hold one value per step for ReduceLROnPlateau")
    lrs = []
    for step in range(num_steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        if plateau:
            scheduler.step(metrics[step])
        else:
            scheduler.step()
    return np.asarray(lrs, dtype=np.float64)


class RecordingOptimizer:
    """Wraps an optimizer and records ``param_groups[0]["lr"]`` at every ``step()``: the rate each update used.

    Everything else is forwarded, so a training loop written for an optimizer runs unchanged on it
    (the d2l section's loop, a tutorial's loop); ``lrs`` then holds the rate of each update in order.
    Schedulers must be built on the wrapped optimizer, not on this wrapper.
    """

    def __init__(self, optimizer):
        self._optimizer = optimizer
        self.lrs = []

    @property
    def param_groups(self):
        return self._optimizer.param_groups

    def zero_grad(self, *args, **kwargs):
        return self._optimizer.zero_grad(*args, **kwargs)

    def step(self, *args, **kwargs):
        self.lrs.append(float(self._optimizer.param_groups[0]["lr"]))
        return self._optimizer.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._optimizer, name)
