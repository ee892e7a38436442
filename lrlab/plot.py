"""Figures: schedules side by side, training histories side by side, the rate a run actually used.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``: a notebook
shows a returned figure by itself, a script saves it (``fig.savefig(...)``). Figures are made with
``matplotlib.pyplot`` only when no ``ax`` is given, so they display inline in notebooks as usual.

The schedules' curves follow d2l's ``d2l.plot(np.arange(num_epochs), [scheduler(t) for t in
range(num_epochs)])`` (Zhang et al., 2023, section "Learning Rate Scheduling").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

from .schedules import Schedule

__all__ = [
    "plot_schedules",
    "plot_histories",
    "plot_lr_trace",
    "schedule_values",
    "new_axes",
    "METRIC_LABELS",
]

#: How figures name the metrics of a History and of a results table.
METRIC_LABELS = {
    "lr": "learning rate",
    "momentum": "momentum",
    "train_loss": "train loss",
    "train_acc": "train accuracy",
    "valid_loss": "validation loss",
    "valid_acc": "validation accuracy",
    "val_loss": "validation loss",
    "val_acc": "validation accuracy",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
    "seconds": "seconds per epoch",
    "weight_norm": "weight norm",
}


# --------------------------------------------------------------------------- evaluating schedules


def _steps_array(steps) -> np.ndarray:
    if isinstance(steps, (bool, np.bool_)):
        raise TypeError(f"steps must be an int n (steps 0..n-1) or an array of steps, got {steps!r}")
    if isinstance(steps, (int, np.integer)):
        if steps < 1:
            raise ValueError(f"steps must be >= 1 when an int (the steps 0..steps-1 are plotted), got steps={steps}")
        return np.arange(int(steps))
    arr = np.asarray(steps)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"steps must be an int or a non-empty 1-d array of step numbers, got {steps!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("steps must be finite and >= 0 (a schedule is defined for t >= 0)")
    return arr


def schedule_values(schedule, steps) -> np.ndarray:
    """``schedule(t)`` for every ``t`` in ``steps`` (an int ``n`` means ``0 .. n-1``), as a float array.

    lrlab schedules are pure and accept arrays, so they are called once on the whole array. Any other
    callable (d2l's stateful classes, a lambda) is called once per step, in order, with Python ints
    when the steps are whole numbers, exactly like ``[scheduler(t) for t in range(n)]``. A sequence of
    numbers (already evaluated rates) is returned as it is, and must have one value per step.
    """
    arr = _steps_array(steps)
    if not callable(schedule):
        if isinstance(schedule, (Sequence, np.ndarray)) and not isinstance(schedule, (str, bytes)):
            values = np.asarray(schedule, dtype=float)
            if values.shape != arr.shape:
                raise ValueError(f"a sequence of rates must have one value per step: got {values.size} values "
                                 f"for {arr.size} steps")
            return values
        raise TypeError(f"a schedule must be a callable t -> lr or a sequence of rates, got {type(schedule).__name__}")
    if isinstance(schedule, Schedule):
        return np.asarray(schedule(arr.astype(float)), dtype=float).reshape(arr.shape)
    whole = np.all(np.mod(arr, 1) == 0)
    ts = [int(t) for t in arr] if whole else [float(t) for t in arr]
    return np.array([float(schedule(t)) for t in ts], dtype=float)


def new_axes(ax, figsize, ncols=1):
    """``(figure, [axes])``: ``ax``'s figure and ``[ax]``, else a new figure of ``ncols`` axes side by side."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, [ax]
    fig, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False)
    return fig, list(axes[0])


def plot_schedules(
    schedules,
    steps=30,
    ax=None,
    *,
    xlabel: str = "epoch",
    ylabel: str = "learning rate",
    title: Optional[str] = None,
    logy: bool = False,
    figsize=(5.0, 3.0),
    **plot_kwargs,
):
    """One figure comparing named schedules over ``steps``; returns the Figure.

    Args:
        schedules: a dict ``name -> schedule`` (a schedule: any callable ``t -> lr``, or a sequence of
            already computed rates); a single schedule is also accepted (named after its type).
        steps: an int ``n`` (the steps ``0 .. n-1``) or an explicit array of steps.
        ax: draw into this Axes instead of a new figure.
        xlabel, ylabel, title: axis labels (``xlabel="update"`` for per-update schedules) and title.
        logy: logarithmic rate axis.
        **plot_kwargs: passed to every ``Axes.plot`` call (e.g. ``marker="."``).

    Stateful schedules (d2l's ``FactorScheduler``) are advanced by being plotted, exactly as in the book.
    """
    if not isinstance(schedules, Mapping):
        schedules = {type(schedules).__name__: schedules}
    if not schedules:
        raise ValueError("schedules is empty: pass a dict name -> schedule with at least one entry")
    arr = _steps_array(steps)
    fig, (axis,) = new_axes(ax, figsize)
    for name, schedule in schedules.items():
        axis.plot(arr, schedule_values(schedule, arr), label=str(name), **plot_kwargs)
    _finish_axis(axis, xlabel, ylabel, title, logy)
    return fig


def _finish_axis(axis, xlabel: str, ylabel: str, title, logy: bool = False) -> None:
    """Labels, optional log scale and title, legend and a light grid: the look of every lrlab plot."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if logy:
        axis.set_yscale("log")
    if title:
        axis.set_title(title)
    axis.legend()
    axis.grid(True, alpha=0.3)


# --------------------------------------------------------------------------- histories


def _history_series(history, metric: str):
    values = getattr(history, metric, None)
    if values is None:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRIC_LABELS)}")
    return np.arange(len(values)), np.asarray(values, dtype=float)


def plot_histories(
    histories,
    metrics: Sequence[str] = ("train_loss", "train_acc", "test_acc", "lr"),
    *,
    figsize=None,
    title: Optional[str] = None,
):
    """Curves of several runs on shared axes: one panel per metric, one line (one colour) per run.

    Args:
        histories: a dict ``name -> History`` (a single :class:`lrlab.History` is also accepted).
        metrics: which :class:`lrlab.History` lists to draw, one panel each: any of ``lr``,
            ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``seconds``.
        figsize: default ``(3.2 * len(metrics), 2.8)``.

    The x axis is the epoch ``t`` (0-based): ``lr[t]`` is the rate epoch ``t`` trained at, the other
    metrics are measured during or right after epoch ``t``.
    """
    if not isinstance(histories, Mapping):
        histories = {"run": histories}
    if not histories:
        raise ValueError("histories is empty: pass a dict name -> History with at least one entry")
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics is empty: name at least one, e.g. metrics=('test_acc',)")
    for m in metrics:
        if m not in METRIC_LABELS:
            raise ValueError(f"unknown metric {m!r}; choose from {sorted(METRIC_LABELS)}")
    fig, axes = new_axes(None, figsize or (3.2 * len(metrics), 2.8), ncols=len(metrics))
    for k, (name, history) in enumerate(histories.items()):
        for axis, metric in zip(axes, metrics):
            x, y = _history_series(history, metric)
            axis.plot(x, y, color=f"C{k % 10}", label=str(name), marker="." if len(x) <= 40 else None)
    for axis, metric in zip(axes, metrics):
        axis.set_xlabel("epoch")
        axis.set_ylabel(METRIC_LABELS[metric])
        axis.grid(True, alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_lr_trace(history, schedule=None, *, ax=None, figsize=(5.0, 3.0), title: Optional[str] = None):
    """The learning rate actually used, per epoch (or per update), next to the schedule it should follow.

    Args:
        history: a :class:`lrlab.History` (a run with ``step_per="update"`` is drawn per update, from
            ``History.lr_per_update``), or a plain sequence of rates, one per epoch (e.g. the list
            :func:`lrlab.sources.d2l_section.trace_lrs` returns).
        schedule: optional callable ``t -> lr`` (or sequence), drawn over the same steps as "schedule(t)".

    A rate used in step ``t`` is drawn as a flat segment over ``[t, t + 1)``; a correct run puts those
    segments exactly on the schedule's points.
    """
    per_update = getattr(history, "step_per", "epoch") == "update" and len(getattr(history, "lr_per_update", []))
    if per_update:
        used, xlabel = np.asarray(history.lr_per_update, dtype=float), "update"
    elif hasattr(history, "lr"):
        used, xlabel = np.asarray(history.lr, dtype=float), "epoch"
    else:
        used, xlabel = np.asarray(list(history), dtype=float), "epoch"
    if used.ndim != 1 or used.size == 0:
        raise ValueError("history holds no learning rates: train at least one epoch (or pass a non-empty list)")
    steps = np.arange(used.size)
    fig, (axis,) = new_axes(ax, figsize)
    marker = "o" if used.size <= 60 else None
    axis.step(np.append(steps, used.size), np.append(used, used[-1]), where="post", label="lr used", color="C0")
    axis.plot(steps, used, linestyle="none", marker=marker, color="C0", markersize=4)
    if schedule is not None:
        axis.plot(steps, schedule_values(schedule, steps), linestyle="--", marker="x" if marker else None,
                  color="C1", label="schedule(t)")
    _finish_axis(axis, xlabel, "learning rate", title)
    return fig
