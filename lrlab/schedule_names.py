"""Schedules by name: HuggingFace transformers' scheduler names, built as lrlab's pure schedules.

``get_schedule("cosine", peak_lr=3e-4, num_warmup_steps=500, num_training_steps=10_000)`` takes the name
and the arguments of ``transformers.get_scheduler(name, optimizer, num_warmup_steps, num_training_steps,
scheduler_specific_kwargs)``, with the optimizer's rate as ``peak_lr``, and returns the lrlab schedule
that gives the same rate at every step up to ``num_training_steps`` (the tests trace both, transformers
5.24.0). A config file that names its schedule the HuggingFace way thus drives any loop, through
:class:`lrlab.ScheduleLR`. Where the two part ways, the docstring of :func:`get_schedule` says so.
"""

from __future__ import annotations

from typing import Any, Optional

from .checks import count, non_negative
from .schedules import (ConstantScheduler, CosineRestartsScheduler, CosineScheduler, InverseSqrtScheduler,
                        LinearWarmup, PolyScheduler, Schedule, SequentialScheduler, WSDScheduler)

__all__ = ["get_schedule", "SCHEDULE_NAMES"]

#: The transformers names :func:`get_schedule` builds, each with its own keyword arguments and defaults.
SCHEDULE_NAMES = {
    "linear": {},
    "cosine": {"num_cycles": 0.5},
    "cosine_with_restarts": {"num_cycles": 1},
    "polynomial": {"lr_end": 1e-7, "power": 1.0},
    "constant": {},
    "constant_with_warmup": {},
    "inverse_sqrt": {"timescale": None},
    "cosine_with_min_lr": {"num_cycles": 0.5, "min_lr": None, "min_lr_rate": None},
    "warmup_stable_decay": {"num_decay_steps": None, "num_stable_steps": None, "warmup_type": "linear",
                            "decay_type": "cosine", "min_lr_ratio": 0.0, "num_cycles": 0.5},
}

#: transformers names that are not a function of the step, or not built here, and why.
_NOT_BUILT = {
    "reduce_lr_on_plateau": "it reacts to a measured loss and is no function of the step: use "
                            "torch.optim.lr_scheduler.ReduceLROnPlateau",
    "greedy": "it reacts to a measured loss and is no function of the step",
    "cosine_warmup_with_min_lr": "its warmup and decay are shifted by one step against the other names'; "
                                 "not built by lrlab",
}


def _needs(name: str, value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"get_schedule({name!r}) needs {what}")
    return value


def get_schedule(name: str, peak_lr: float, num_warmup_steps: int = 0, num_training_steps: Optional[int] = None,
                 **kwargs) -> Schedule:
    """The lrlab schedule that ``transformers.get_scheduler(name, ...)`` gives an optimizer at ``peak_lr``.

    With ``W = num_warmup_steps`` and ``T = num_training_steps`` (a linear warmup from 0 over ``W`` steps
    in each, except ``constant``):

    * ``linear``: down to 0 at ``T``: :class:`PolyScheduler` with ``power=1``.
    * ``cosine`` (``num_cycles=0.5``, the only value built): a half cosine to 0 at ``T``:
      :class:`CosineScheduler`. Equal up to ``T``; after it transformers' cosine rises again, lrlab's
      stays at 0.
    * ``cosine_with_restarts`` (``num_cycles`` cosines to 0, each ``(T - W) / num_cycles`` steps; that
      must be a whole number here), 0 from ``T`` on: :class:`CosineRestartsScheduler` after the warmup.
    * ``polynomial`` (``lr_end=1e-7``, ``power=1.0``): :class:`PolyScheduler` to ``lr_end``.
    * ``constant`` and ``constant_with_warmup``: :class:`ConstantScheduler`, behind a :class:`LinearWarmup`.
    * ``inverse_sqrt`` (``timescale``): :class:`InverseSqrtScheduler`.
    * ``cosine_with_min_lr`` (``min_lr`` or ``min_lr_rate`` times ``peak_lr``, ``num_cycles=0.5``): the
      cosine to that floor. Equal up to ``T``; after it transformers' rises again.
    * ``warmup_stable_decay`` (``num_decay_steps``; ``num_stable_steps``, else ``T - W - num_decay_steps``;
      ``decay_type`` "linear", "cosine" or "1-sqrt"; ``min_lr_ratio``; ``warmup_type="linear"`` and
      ``num_cycles=0.5``, the only values built): :class:`WSDScheduler`, warming up from the floor.

    An unknown name is refused with the list of known ones; so are names that are no function of the
    step (``reduce_lr_on_plateau``, ``greedy``), and keyword arguments that the name does not take.
    """
    if name in _NOT_BUILT:
        raise ValueError(f"get_schedule({name!r}): {_NOT_BUILT[name]}")
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"get_schedule: unknown schedule name {name!r}; known: {', '.join(SCHEDULE_NAMES)}")
    unknown = sorted(set(kwargs) - set(SCHEDULE_NAMES[name]))
    if unknown:
        raise TypeError(f"get_schedule({name!r}) takes no argument {', '.join(unknown)}; its own are "
                        f"{', '.join(SCHEDULE_NAMES[name]) or 'none'}")
    args = {**SCHEDULE_NAMES[name], **kwargs}
    peak = non_negative("peak_lr", peak_lr)
    W = count("num_warmup_steps", num_warmup_steps, low=0)
    if name == "constant":
        return ConstantScheduler(peak)
    if name == "constant_with_warmup":
        return LinearWarmup(ConstantScheduler(peak), W)
    if name == "inverse_sqrt":
        return InverseSqrtScheduler(peak, warmup_steps=W, timescale=args["timescale"])
    if name == "warmup_stable_decay":
        if args["warmup_type"] != "linear" or args["num_cycles"] != 0.5:
            raise ValueError("get_schedule('warmup_stable_decay') builds warmup_type='linear' and num_cycles=0.5 only")
        D = count("num_decay_steps", _needs(name, args["num_decay_steps"], "num_decay_steps"))
        S = args["num_stable_steps"]
        if S is None:
            total = _needs(name, num_training_steps, "num_training_steps or num_stable_steps")
            S = count("num_training_steps", total) - W - D
        S = count("num_stable_steps", S, low=0)
        floor = non_negative("min_lr_ratio", args["min_lr_ratio"]) * peak
        return WSDScheduler(W + S + D, peak_lr=peak, final_lr=floor, warmup_steps=W, decay_steps=D,
                            decay_shape=args["decay_type"], warmup_begin_lr=floor)
    T = count("num_training_steps", _needs(name, num_training_steps, "num_training_steps"))
    if T <= W:
        raise ValueError(f"num_training_steps ({T}) must exceed num_warmup_steps ({W})")
    if name == "linear":
        return PolyScheduler(T, base_lr=peak, final_lr=0.0, warmup_steps=W, power=1.0)
    if name == "polynomial":
        return PolyScheduler(T, base_lr=peak, final_lr=non_negative("lr_end", args["lr_end"]), warmup_steps=W,
                             power=args["power"])
    if name in ("cosine", "cosine_with_min_lr"):
        if args["num_cycles"] != 0.5:
            raise ValueError(f"get_schedule({name!r}) builds num_cycles=0.5 only (a half cosine), "
                             f"got {args['num_cycles']!r}")
        floor = 0.0
        if name == "cosine_with_min_lr":
            if (args["min_lr"] is None) == (args["min_lr_rate"] is None):
                raise ValueError("get_schedule('cosine_with_min_lr') needs exactly one of min_lr or min_lr_rate")
            floor = (non_negative("min_lr", args["min_lr"]) if args["min_lr"] is not None
                     else non_negative("min_lr_rate", args["min_lr_rate"]) * peak)
        return CosineScheduler(T, base_lr=peak, final_lr=floor, warmup_steps=W)
    # cosine_with_restarts
    cycles = count("num_cycles", args["num_cycles"])
    if (T - W) % cycles:
        raise ValueError(f"get_schedule('cosine_with_restarts') needs num_training_steps - num_warmup_steps "
                         f"({T - W}) to be a multiple of num_cycles ({cycles})")
    restarts = CosineRestartsScheduler((T - W) // cycles, eta_min=0.0, base_lr=peak)
    return SequentialScheduler([LinearWarmup(restarts, W), ConstantScheduler(0.0)], milestones=[T])
