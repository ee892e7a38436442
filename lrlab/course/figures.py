"""The course's figures of its measured results (the library's figures are in :mod:`lrlab.plot`).

:func:`plot_runs` draws runs of a results table over epochs (mean over seeds, a band of one standard
deviation); :func:`plot_paired` draws the per-seed differences of a paired comparison, with their mean
and 95 % interval (:func:`lrlab.course.results.paired`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np

from ..plot import METRIC_LABELS, new_axes
from ..stats import paired_difference
from . import results as _results

__all__ = ["plot_runs", "plot_paired"]


def plot_runs(frame, groups, metrics: Sequence = ("train_loss", "test_acc"), *, figsize=None,
              title: Optional[str] = None):
    """Measured runs from a results table: per epoch, the mean over seeds and a band of ± one standard deviation.

    Args:
        frame: a results table (:func:`lrlab.course.results.read_table`).
        groups: a dict ``label -> dict of column values`` selecting each group's runs, e.g.
            ``{"cosine": {"variant": "corrected", "schedule": "cosine"}}``; one colour per group.
        metrics: the panels, one per entry: a column name (``lr``, ``train_loss``, ``train_acc``,
            ``test_loss``, ``test_acc``, ``weight_norm``, ``seconds``) or a tuple of them drawn on the
            same axes, one line style each (e.g. ``("train_acc", "test_acc")`` shows the gap).
        figsize: default ``(3.6 * number of panels, 3.0)``.

    The x axis is the epoch ``t`` (0-based), as in :func:`plot_histories`; rates are drawn as steps
    (a rate holds for a whole epoch). A group of one seed is drawn without a band.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    panels = [(m,) if isinstance(m, str) else tuple(m) for m in metrics]
    if not panels or not all(panels):
        raise ValueError("metrics is empty: name at least one column, e.g. metrics=('test_acc',)")
    for m in (m for panel in panels for m in panel):
        if m not in METRIC_LABELS:
            raise ValueError(f"unknown metric {m!r}; choose from {sorted(METRIC_LABELS)}")
    if not groups:
        raise ValueError("groups is empty: pass a dict label -> {column: value} with at least one entry")
    fig, axes = new_axes(None, figsize or (3.6 * len(panels), 3.0), ncols=len(panels))
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
                name = f"{label} (n = {n})" if len(panel) == 1 else f"{label}, {METRIC_LABELS[metric]} (n = {n})"
                axis.plot(x, mean, color=colour, linestyle=styles[j % len(styles)], label=name, **steps)
                if n > 1:
                    axis.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0,
                                      step="post" if steps else None)
    for axis, panel in zip(axes, panels):
        axis.set_xlabel("epoch")
        axis.set_ylabel(" / ".join(METRIC_LABELS[m] for m in panel))
        axis.grid(True, alpha=0.3)
    for axis, panel in zip(axes, panels):
        if len(panel) > 1 or axis is axes[0]:
            axis.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_paired(comparisons: dict, *, scale: float = 100.0, unit: str = "points", ax=None, figsize=(6.0, 3.0),
                title: Optional[str] = None):
    """Each comparison's per-seed differences (dots, one per seed) and their mean with its 95 % interval (bar).

    ``comparisons``: ``label -> (seeds, a, b)`` as :func:`lrlab.course.results.paired_values` returns them.
    ``scale`` multiplies the differences (100: accuracy in points). A bar that crosses the dashed zero line
    is a "no difference shown".
    """
    fig, (axis,) = new_axes(ax, figsize)
    for k, (label, (seeds, a, b)) in enumerate(comparisons.items()):
        d = scale * (np.asarray(a, float) - np.asarray(b, float))
        p = paired_difference(a, b)
        axis.plot(d, np.full(len(d), k) + np.linspace(-0.12, 0.12, len(d)), "o", color="C0", alpha=0.7,
                  label="one seed" if k == 0 else None)
        axis.errorbar(scale * p.mean_diff, k, xerr=[[scale * (p.mean_diff - p.ci_low)], [scale * (p.ci_high - p.mean_diff)]],
                      fmt="s", color="k", capsize=4, label="mean, 95 % interval" if k == 0 else None)
    axis.axvline(0.0, color="0.4", linestyle="--", linewidth=1)
    axis.set_yticks(range(len(comparisons)), list(comparisons))
    axis.set_ylim(-0.6, len(comparisons) - 0.4)
    axis.invert_yaxis()
    axis.set_xlabel(f"difference a - b ({unit})" if unit else "difference a - b")
    if title:
        axis.set_title(title)
    axis.legend(fontsize="small", loc="best")
    axis.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
