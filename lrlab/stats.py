"""Comparing two arms of an experiment that share their seeds: the paired difference and its interval.

Runs with the same seed start from the same weights and see the same batches; two arms that differ in
one thing (a schedule) are identical until that thing acts. Their results are *pairs*, and the right
comparison is of the per-seed differences ``d_i = a_i - b_i``:

* the mean difference ``d̄`` and its standard deviation ``s_d`` (``n - 1`` in the denominator);
* the ``level`` (95 %) confidence interval ``d̄ ± t_{n-1} s_d / sqrt(n)``, with ``t_{n-1}`` the
  ``(1 + level) / 2`` quantile of Student's t with ``n - 1`` degrees of freedom: the paired t-test's
  interval (``scipy.stats.ttest_rel(a, b).confidence_interval(level)``; Student, 1908);
* how many seeds share the sign of ``d̄`` (a count a reader can check by eye);
* the verdict: ``"higher"`` (a is higher: the interval lies above 0), ``"lower"`` (below 0), else
  ``"no difference shown"``, never "the same": an interval that holds 0 also holds differences that
  matter, and more seeds would narrow it.

Comparing the two groups as if they were unrelated (their means and standard deviations) throws away
the pairing: the seed-to-seed spread, which both arms share, then hides differences that every seed
shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["PairedDifference", "paired_difference", "VERDICTS", "t_quantile"]

#: The three verdicts, in the words the book uses.
VERDICTS = ("higher", "lower", "no difference shown")


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom (SciPy's ``t.ppf``)."""
    from scipy.stats import t  # SciPy: the reference implementation of the distribution

    return float(t.ppf(p, df))


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over ``n`` paired runs: mean, standard deviation, interval, sign count and verdict."""

    n: int
    mean_diff: float
    sd_diff: float
    ci_low: float
    ci_high: float
    sign_count: int
    level: float = 0.95

    @property
    def verdict(self) -> str:
        """``"higher"`` if the interval lies above 0, ``"lower"`` if below, else ``"no difference shown"``."""
        if self.ci_low > 0:
            return "higher"
        if self.ci_high < 0:
            return "lower"
        return "no difference shown"

    @property
    def t(self) -> float:
        """The paired t statistic ``d̄ / (s_d / sqrt(n))`` (infinite when every seed differs by the same amount)."""
        if self.sd_diff == 0:
            return math.copysign(math.inf, self.mean_diff) if self.mean_diff else 0.0
        return self.mean_diff / (self.sd_diff / math.sqrt(self.n))

    def describe(self, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
        """The verdict in words, with the 95 % interval and the seeds.

        ``"higher by 1.43 points [0.87, 1.99], in 5 of 5 seeds"``, ``"lower by 1.10 points [0.47, 1.73], in
        5 of 5 seeds"`` (the interval of the decrease), or ``"no difference shown (-0.49 points, interval
        [-1.01, +0.02]; 4 of 5 seeds on the side of the mean)"``. ``scale`` multiplies the numbers (100 turns
        an accuracy into points), ``unit`` follows them.
        """
        unit = f" {unit}" if unit else ""
        mean, lo, hi = (scale * v for v in (self.mean_diff, self.ci_low, self.ci_high))
        seeds = f"{self.sign_count} of {self.n} seeds"
        if self.verdict == "higher":
            return f"higher by {mean:.{digits}f}{unit} [{lo:.{digits}f}, {hi:.{digits}f}], in {seeds}"
        if self.verdict == "lower":
            return f"lower by {-mean:.{digits}f}{unit} [{-hi:.{digits}f}, {-lo:.{digits}f}], in {seeds}"
        return (f"no difference shown ({mean:+.{digits}f}{unit}, interval [{lo:+.{digits}f}, {hi:+.{digits}f}]; "
                f"{seeds} on the side of the mean)")


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedDifference:
    """The paired comparison of ``a`` and ``b``: entry ``i`` of each is the run with seed ``i`` (same order).

    Needs at least two pairs and finite values (a diverged run has no value to compare: say so instead).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-d and of the same length (one value per seed); got shapes {a.shape}, "
                         f"{b.shape}")
    n = a.size
    if n < 2:
        raise ValueError(f"a paired comparison needs at least two seeds; got {n}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite: a run that diverged has no value to compare (report it as such)")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    d = a - b
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    sign = 1 if mean > 0 else -1 if mean < 0 else 0
    same = int(np.sum(np.sign(d) == sign))
    return PairedDifference(n, mean, sd, mean - half, mean + half, same, level)
