"""Figures of the course: schedules side by side, training runs side by side, the rate actually used.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``: a notebook
shows a returned figure by itself, a script saves it (``fig.savefig(...)``). Figures are made with
``matplotlib.pyplot`` only when no ``ax`` is given, so they display inline in notebooks as usual.

:func:`make_progress` is what :func:`lrlab.train` reports progress through: a live figure (loss,
accuracies, and the learning rate on its own axis) redrawn in place in a notebook, or one printed
line per epoch in a script. It needs only IPython's display machinery (no ipywidgets).

The schedules' curves follow d2l's ``d2l.plot(np.arange(num_epochs), [scheduler(t) for t in
range(num_epochs)])`` (Zhang et al., 2023, section "Learning Rate Scheduling").
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from .schedules import Schedule

__all__ = [
    "plot_schedules",
    "plot_histories",
    "plot_lr_trace",
    "plot_runs",
    "schedule_values",
    "make_progress",
    "LivePlot",
    "in_notebook",
]

_METRIC_LABELS = {
    "lr": "learning rate",
    "train_loss": "train loss",
    "train_acc": "train accuracy",
    "valid_loss": "validation loss",
    "valid_acc": "validation accuracy",
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


def _new_axes(ax, figsize, ncols=1):
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
    fig, (axis,) = _new_axes(ax, figsize)
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
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(_METRIC_LABELS)}")
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
        if m not in _METRIC_LABELS:
            raise ValueError(f"unknown metric {m!r}; choose from {sorted(_METRIC_LABELS)}")
    fig, axes = _new_axes(None, figsize or (3.2 * len(metrics), 2.8), ncols=len(metrics))
    for k, (name, history) in enumerate(histories.items()):
        for axis, metric in zip(axes, metrics):
            x, y = _history_series(history, metric)
            axis.plot(x, y, color=f"C{k % 10}", label=str(name), marker="." if len(x) <= 40 else None)
    for axis, metric in zip(axes, metrics):
        axis.set_xlabel("epoch")
        axis.set_ylabel(_METRIC_LABELS[metric])
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
            :func:`lrlab.d2l_section.trace_lrs` returns).
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
    fig, (axis,) = _new_axes(ax, figsize)
    marker = "o" if used.size <= 60 else None
    axis.step(np.append(steps, used.size), np.append(used, used[-1]), where="post", label="lr used", color="C0")
    axis.plot(steps, used, linestyle="none", marker=marker, color="C0", markersize=4)
    if schedule is not None:
        axis.plot(steps, schedule_values(schedule, steps), linestyle="--", marker="x" if marker else None,
                  color="C1", label="schedule(t)")
    _finish_axis(axis, xlabel, "learning rate", title)
    return fig


def plot_runs(frame, groups, metrics: Sequence = ("train_loss", "test_acc"), *, figsize=None,
              title: Optional[str] = None):
    """Measured runs from a results table: per epoch, the mean over seeds and a band of ± one standard deviation.

    Args:
        frame: a results table (:func:`lrlab.results.read_table`).
        groups: a dict ``label -> dict of column values`` selecting each group's runs, e.g.
            ``{"cosine": {"variant": "corrected", "schedule": "cosine"}}``; one colour per group.
        metrics: the panels, one per entry: a column name (``lr``, ``train_loss``, ``train_acc``,
            ``test_loss``, ``test_acc``, ``weight_norm``, ``seconds``) or a tuple of them drawn on the
            same axes, one line style each (e.g. ``("train_acc", "test_acc")`` shows the gap).
        figsize: default ``(3.6 * number of panels, 3.0)``.

    The x axis is the epoch ``t`` (0-based), as in :func:`plot_histories`; rates are drawn as steps
    (a rate holds for a whole epoch). A group of one seed is drawn without a band.
    """
    from . import results as _results

    if isinstance(metrics, str):
        metrics = (metrics,)
    panels = [(m,) if isinstance(m, str) else tuple(m) for m in metrics]
    if not panels or not all(panels):
        raise ValueError("metrics is empty: name at least one column, e.g. metrics=('test_acc',)")
    for m in (m for panel in panels for m in panel):
        if m not in _METRIC_LABELS:
            raise ValueError(f"unknown metric {m!r}; choose from {sorted(_METRIC_LABELS)}")
    if not groups:
        raise ValueError("groups is empty: pass a dict label -> {column: value} with at least one entry")
    fig, axes = _new_axes(None, figsize or (3.6 * len(panels), 3.0), ncols=len(panels))
    styles = ("-", "--", ":", "-.")
    for k, (label, where) in enumerate(groups.items()):
        rows = _results.select(frame, **where)
        colour = f"C{k % 10}"
        for axis, panel in zip(axes, panels):
            for j, metric in enumerate(panel):
                stats = rows.groupby("epoch")[metric].agg(["mean", "std", "count"])
                x = stats.index.to_numpy()
                mean, sd = stats["mean"].to_numpy(), stats["std"].to_numpy()
                n = int(stats["count"].min())
                steps = {"drawstyle": "steps-post"} if metric == "lr" else {}
                name = f"{label} (n = {n})" if len(panel) == 1 else f"{label}, {_METRIC_LABELS[metric]} (n = {n})"
                axis.plot(x, mean, color=colour, linestyle=styles[j % len(styles)], label=name, **steps)
                if n > 1:
                    axis.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0,
                                      step="post" if steps else None)
    for axis, panel in zip(axes, panels):
        axis.set_xlabel("epoch")
        axis.set_ylabel(" / ".join(_METRIC_LABELS[m] for m in panel))
        axis.grid(True, alpha=0.3)
    for axis, panel in zip(axes, panels):
        if len(panel) > 1 or axis is axes[0]:
            axis.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- live progress of train()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook, nbval, jupyter-book execution); False in a script."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(shell, "config", {})


def _summary(history, num_epochs: int) -> str:
    t = len(history) - 1
    width = len(str(num_epochs))
    return (f"epoch {t + 1 + getattr(history, 'start_epoch', 0):>{width}}/{num_epochs}  lr {history.lr[t]:.4g}  "
            f"train loss {history.train_loss[t]:.4f}  train acc {history.train_acc[t]:.3f}  "
            f"test loss {history.test_loss[t]:.4f}  test acc {history.test_acc[t]:.3f}  "
            f"{history.seconds[t]:.2f} s")


class _Silent:
    def update(self, history, final: bool = False) -> None:
        pass

    def close(self, history) -> None:
        pass


class _PrintProgress:
    """One line per epoch on stdout (scripts, and ``live="print"``)."""

    def __init__(self, num_epochs: int):
        self.num_epochs = num_epochs

    def update(self, history, final: bool = False) -> None:
        print(_summary(history, self.num_epochs), flush=True)

    def close(self, history) -> None:
        if history.stopped:
            print(f"stopped: {history.stopped}", flush=True)


class LivePlot:
    """A figure of loss, train/test accuracy and (twin axis) learning rate, redrawn in place in a notebook.

    Shown with ``IPython.display.display(..., display_id=True)`` and updated through the display
    handle, so it replaces itself (also under nbval and jupyter-book execution, where the final image
    is what remains). Redraws are throttled to one per ``redraw_seconds`` plus the final epoch; a
    progress line (a text bar and the last epoch's metrics) is updated every epoch.
    """

    def __init__(self, num_epochs: int, *, redraw_seconds: float = 0.5, figsize=(5.0, 3.0)):
        from matplotlib.figure import Figure

        self.num_epochs = num_epochs
        self.redraw_seconds = redraw_seconds
        self.fig = Figure(figsize=figsize, dpi=90)
        ax = self.fig.add_subplot(1, 1, 1)
        ax_lr = ax.twinx()
        self.lines = {
            "train_loss": ax.plot([], [], "-", color="C0", label="train loss")[0],
            "train_acc": ax.plot([], [], "--", color="C1", label="train acc")[0],
            "test_acc": ax.plot([], [], "-.", color="C2", label="test acc")[0],
            "lr": ax_lr.plot([], [], ":", color="C3", drawstyle="steps-post", label="learning rate")[0],
        }
        ax.set_xlabel("epoch")
        ax.set_xlim(0, max(num_epochs, 1))
        ax.set_ylabel("loss / accuracy")
        ax_lr.set_ylabel("learning rate", color="C3")
        ax.grid(True, alpha=0.3)
        ax.legend(handles=list(self.lines.values()), loc="upper right", fontsize="small")
        self.ax, self.ax_lr = ax, ax_lr
        self._text_handle = None
        self._fig_handle = None
        self._last_draw = -math.inf
        self._drawn_epochs = -1

    def _png(self):
        from IPython.display import Image

        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", bbox_inches="tight")
        return Image(data=buf.getvalue(), format="png")

    def _text(self, history):
        from IPython.display import Pretty

        done = getattr(history, "start_epoch", 0) + len(history)
        width = 20
        filled = round(width * done / max(self.num_epochs, 1))
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] " + _summary(history, self.num_epochs)
        if history.stopped:
            line += f"\nstopped: {history.stopped}"
        return Pretty(line)

    def _redraw(self, history):
        n, start = len(history), getattr(history, "start_epoch", 0)
        x_end = start + np.arange(1, n + 1)  # metrics are measured at the end of epoch t, i.e. at x = t + 1
        for key in ("train_loss", "train_acc", "test_acc"):
            self.lines[key].set_data(x_end, np.asarray(getattr(history, key), dtype=float))
        lr = np.asarray(history.lr, dtype=float)
        self.lines["lr"].set_data(start + np.arange(n + 1), np.append(lr, lr[-1]))  # rate of epoch t over [t, t+1)
        for axis in (self.ax, self.ax_lr):
            axis.relim()
            axis.autoscale_view(scalex=False)
        self.ax.set_xlim(0, max(self.num_epochs, start + n, 1))
        image = self._png()
        if self._fig_handle is None:
            from IPython.display import display

            self._fig_handle = display(image, display_id=True)
        else:
            self._fig_handle.update(image)
        self._last_draw = time.perf_counter()
        self._drawn_epochs = n

    def update(self, history, final: bool = False) -> None:
        from IPython.display import display

        if not len(history):
            return
        text = self._text(history)
        if self._text_handle is None:
            self._text_handle = display(text, display_id=True)
        else:
            self._text_handle.update(text)
        if final or time.perf_counter() - self._last_draw >= self.redraw_seconds:
            self._redraw(history)

    def close(self, history) -> None:
        if len(history) and self._drawn_epochs != len(history):
            self._redraw(history)
            self._text_handle.update(self._text(history))


def make_progress(live: Any, num_epochs: int, *, redraw_seconds: float = 0.5):
    """The progress reporter :func:`lrlab.train` uses for its ``live`` argument.

    ``None``/``True``: a :class:`LivePlot` in a notebook (see :func:`in_notebook`), else a printed line
    per epoch; ``"notebook"``: always the live figure; ``"print"``: always lines; ``False``: silent.
    """
    if live is False:
        return _Silent()
    if live is None or live is True:
        live = "notebook" if in_notebook() else "print"
    if live == "notebook":
        return LivePlot(num_epochs, redraw_seconds=redraw_seconds)
    if live == "print":
        return _PrintProgress(num_epochs)
    raise ValueError(f"live must be None (auto), True, False, 'notebook' or 'print'; got live={live!r}")
