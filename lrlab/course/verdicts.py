"""Every comparison the book states, as data: ``book/results/verdicts.csv`` (``make verdicts``).

A :class:`Claim` names two arms of the committed results, a measure and an epoch; its verdict is the paired
comparison of the two arms seed by seed (:func:`lrlab.course.results.paired`: the mean difference ``a - b``,
its 95 % t-interval, how many seeds share its sign, and ``higher`` / ``lower`` / ``no difference shown``).
The chapters glue their verdict sentences from the file (:mod:`lrlab.course.facts`), the appendix lists it
whole, and a test regenerates it from the tables and checks that each verdict follows from its interval.

A claim that repeats something a source says (d2l's "the square root does better") carries the direction
the source expects (``expects``): :func:`source_verdict` then reads ``supported``, ``contradicted`` or
``not shown`` off the paired verdict.

Measures: any metric column of the tables, and two per run and epoch (:func:`with_measures`): ``gap``,
training minus test accuracy (overfitting), and ``roughness``, the mean absolute change of the test
accuracy from one epoch to the next over the last two thirds of the run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..stats import PairedDifference, VERDICTS
from ..sources.d2l_section import LABELS as D2L_LABELS, PRINTED, RUNS as D2L_RUNS
from . import results as _results

__all__ = ["Claim", "CLAIMS", "COLUMNS", "with_measures", "evaluate", "verdict_table", "write_verdicts",
           "read_verdicts", "finding", "source_verdict", "printed_vs_measured", "results_rows", "VERDICTS_FILE"]

VERDICTS_FILE = "verdicts.csv"
#: The columns of ``verdicts.csv``, in order.
COLUMNS = ("chapter", "claim", "study", "epoch", "measure", "variant_a", "schedule_a", "variant_b", "schedule_b",
           "n", "mean_diff", "ci_low", "ci_high", "sign_count", "verdict")


@dataclass(frozen=True)
class Claim:
    """A comparison the book states: arm ``a`` against arm ``b`` (each ``(variant, schedule)``) on ``measure``.

    ``chapter``: the label of the chapter that states it. ``study``: the table of ``a`` (and of ``b``,
    unless ``study_b`` names another). ``epoch``: None (each run's last epoch), an epoch number, or
    ``"last3"`` (the mean of each run's last three epochs); ``epoch_b``: ``b``'s, when it is read at another
    epoch than ``a`` (written ``"9/29"`` in the file). ``says``: the statement in words. ``expects``:
    the direction a source states (+1: ``a`` is higher, -1: lower); 0 for the course's own comparisons.
    """

    chapter: str
    claim: str
    says: str
    study: str
    a: tuple
    b: tuple
    measure: str = "test_acc"
    epoch: Any = None
    study_b: Optional[str] = None
    expects: int = 0
    epoch_b: Any = None


def _d2l_claims(chapter: str, name: str, says: str, a: str, b: str, measure: str, expects: int, epoch=None) -> tuple:
    """One of d2l's statements about its runs, checked on both variants (as described, and as its code ran)."""
    return tuple(Claim(chapter, f"{name}_{variant}", f"{says} ({variant})", "d2l", (variant, a), (variant, b), measure,
                       epoch, expects=expects) for variant in ("corrected", "published"))


def _course(chapter: str, claim: str, says: str, study: str, a, b, measure: str = "test_acc", epoch=None,
            study_b: Optional[str] = None, epoch_b=None) -> Claim:
    return Claim(chapter, claim, says, study, tuple(a), tuple(b), measure, epoch, study_b, epoch_b=epoch_b)


_CORRECTED = {run: ("corrected", run) for run in D2L_RUNS}
_CYCLES = ("one_cycle", "one_cycle_no_momentum", "restarts", "cosine_cycled_momentum")
#: The MNIST tutorial's variants, by the names its claims use.
MNIST_ARMS = {"step": ("as_written", "step"), "cosine_written": ("as_written", "cosine"),
              "cosine_corrected": ("corrected", "cosine"), "constant": ("course", "constant")}

#: The averaging study's arms, as its claims name them.
_AVERAGING = {"constant": "the constant rate", "constant_ema": "the constant rate with an EMA of the weights",
              "swa": "SWA (SWALR and the average)", "swalr": "SWALR's rates alone", "cosine": "the cosine",
              "wsd": "warmup-stable-decay"}

#: The averaging study's paired comparisons (arm a against arm b), each on test accuracy and test loss.
AVERAGING_PAIRS = (("constant_ema", "constant"), ("swa", "constant"), ("swalr", "constant"), ("swa", "swalr"),
                   ("cosine", "constant"), ("wsd", "constant"), ("constant_ema", "cosine"), ("swa", "cosine"),
                   ("constant_ema", "wsd"), ("swa", "wsd"))

#: Every comparison the book states, chapter by chapter.
CLAIMS = (
    # ---- the d2l section's statements about its own runs (its text, in our words)
    *_d2l_claims("sqrt-factor", "sqrt_better", "the square-root run does better than the constant rate",
                 "square_root", "constant", "test_acc", +1),
    *_d2l_claims("sqrt-factor", "sqrt_smoother", "the square-root run's curves are smoother", "square_root",
                 "constant", "roughness", -1),
    *_d2l_claims("sqrt-factor", "sqrt_less_overfitting", "the square-root run overfits less", "square_root",
                 "constant", "gap", -1),
    *_d2l_claims("sqrt-factor", "small_steps_near_zero", "smaller steps keep the parameters closer to zero",
                 "square_root", "constant", "weight_norm", -1),
    *_d2l_claims("piecewise-constant", "multi_step_better", "the multi-step schedule gives a better solution",
                 "multi_step", "constant", "test_acc", +1),
    *_d2l_claims("cosine-warmup", "cosine_better", "the cosine improves on the constant rate (d2l: it may, but "
                 "need not)", "cosine", "constant", "test_acc", +1),
    *_d2l_claims("cosine-warmup", "warmup_early", "with warmup the network converges better in the first 5 epochs",
                 "cosine_warmup", "cosine", "train_loss", -1, epoch=4),
    # the summary: lowering the rate during training improves accuracy and reduces overfitting
    *(c for run in ("square_root", "multi_step", "cosine", "cosine_warmup")
      for measure, what, sign in (("test_acc", "improves accuracy", +1), ("gap", "reduces overfitting", -1))
      for c in _d2l_claims("comparison", f"decay_{measure}_{run}", f"decaying the rate ({D2L_LABELS[run]}) {what}",
                           run, "constant", measure, sign)),
    # ---- did d2l's bugs change where its runs ended? the rates its code used against the schedule described
    *(_course("errata", f"bugs_{run}{'' if measure == 'test_acc' else '_' + measure}",
              f"{D2L_LABELS[run]}: d2l's code against the text's schedule ({measure})", "d2l", ("published", run),
              ("corrected", run), measure)
      for run in D2L_RUNS[1:] for measure in ("test_acc", "train_loss")),
    # ---- the MNIST tutorial's four variants, every pair (Adam, 10 epochs; seeds 42 to 46)
    *(_course("mnist-step-cosine", f"mnist_{na}_vs_{nb}", f"{na} against {nb}", "mnist_cnn", a, b)
      for (na, a), (nb, b) in ((x, y) for i, x in enumerate(MNIST_ARMS.items())
                               for y in list(MNIST_ARMS.items())[i + 1:])),
    # ---- the range test's suggestions, 10 epochs, against the first 10 epochs of d2l's constant 0.3
    *(_course("lr-finder", f"lr_find_{rule}_vs_constant{tail}", f"a constant rate at the {rule} rule's median "
              f"against d2l's 0.3, after 10 epochs{what}", "lr_find", ("range_test", rule), _CORRECTED["constant"],
              epoch=epoch, study_b="d2l")
      for rule in ("valley", "minimum") for tail, what, epoch in (("", "", None), ("_last3", " (epochs 8-10)", "last3"))),
    # ---- cycles, against d2l's cosine and constant rate; the 2 x 2 of shape and momentum
    *(_course("cycles", f"{a}_vs_{b}{'' if measure == 'test_acc' else '_' + measure}",
              f"{a} against {b} ({measure})", "cycles", ("course", a) if a in _CYCLES else _CORRECTED[a],
              ("course", b) if b in _CYCLES else _CORRECTED[b], measure,
              study_b=None if b in _CYCLES else "d2l")
      for a, b in (("one_cycle", "cosine"), ("one_cycle_no_momentum", "cosine"), ("one_cycle", "one_cycle_no_momentum"))
      for measure in ("test_acc", "test_loss", "train_loss")),
    _course("cycles", "one_cycle_vs_constant", "one-cycle against the constant 0.3", "cycles", ("course", "one_cycle"),
            _CORRECTED["constant"], study_b="d2l"),
    _course("cycles", "restarts_vs_cosine", "warm restarts against d2l's cosine", "cycles", ("course", "restarts"),
            _CORRECTED["cosine"], study_b="d2l"),
    _course("cycles", "restarts_vs_constant", "warm restarts against the constant 0.3", "cycles",
            ("course", "restarts"), _CORRECTED["constant"], study_b="d2l"),
    _course("cycles", "restart_drop", "right after the restart (epoch 10) against the end of the first cycle (epoch 9)",
            "cycles", ("course", "restarts"), ("course", "restarts"), epoch=10, epoch_b=9),
    _course("cycles", "snapshot_vs_constant", "the restarts' snapshot after 10 epochs against the constant 0.3 "
            "after 30", "cycles", ("course", "restarts"), _CORRECTED["constant"], epoch=9, study_b="d2l", epoch_b=29),
    # ---- an unknown budget: WSD and schedule-free against a cosine planned for each budget
    *(_course("unknown-budget", f"wsd_vs_cosine_{B}", f"warmup-stable-decay against a cosine, both for {B} epochs",
              "budget", ("budget", f"wsd_{B}"), ("budget", f"cosine_{B}")) for B in (10, 20, 30)),
    *(_course("unknown-budget", f"schedule_free_vs_cosine_{B}", f"schedule-free SGD after {B} epochs against a "
              f"cosine planned for {B}", "budget", ("budget", "schedule_free"), ("budget", f"cosine_{B}"), epoch=B - 1)
      for B in (10, 20, 30)),
    # ---- averaging the weights against decaying the rate (all arms of the averaging study, trained side by side)
    *(_course("unknown-budget", f"avg_{a}_vs_{b}{'' if measure == 'test_acc' else '_' + measure}",
              f"{_AVERAGING[a]} against {_AVERAGING[b]} ({measure})", "averaging", ("averaging", a), ("averaging", b),
              measure)
      for a, b in AVERAGING_PAIRS for measure in ("test_acc", "test_loss")),
    *(_course("unknown-budget", f"avg_{name}_here_vs_budget", f"{_AVERAGING[name]}: trained again beside the "
              f"averaging runs against the budget study's run (the same configuration, another machine and time)",
              "averaging", ("averaging", name), ("budget", f"{name}_30"), study_b="budget") for name in ("cosine", "wsd")),
    # ---- the warmup tutorial's promise, "stability and faster convergence", on the course's proxy
    Claim("warmup-multifactor", "warmup_faster", "the tutorial's warmup converges faster (training loss after "
          "epoch 4, the fifth)", "warmup", ("course", "warmup_multifactor"), ("course", "multi_step"), "train_loss", 4,
          expects=-1),
    Claim("warmup-multifactor", "warmup_stabler", "the tutorial's warmup trains more stably (epoch-to-epoch change "
          "of the test accuracy)", "warmup", ("course", "warmup_multifactor"), ("course", "multi_step"),
          "roughness", expects=-1),
    _course("warmup-multifactor", "warmup_final", "the tutorial's warmup against none, final test accuracy",
            "warmup", ("course", "warmup_multifactor"), ("course", "multi_step")),
    # ---- large batches: what a larger batch costs, and the linear rule where it has room
    _course("large-batches", "lb_unscaled_1024_vs_256", "batch 1024 against 256, both at d2l's 0.3", "large_batch",
            ("global1024", "unscaled"), ("global256", "unscaled")),
    _course("large-batches", "lb_base01_linear_vs_unscaled_1024", "at batch 1024 from 0.1: scaled to 0.4 against "
            "not scaled", "large_batch", ("global1024", "base0.1_linear"), ("global1024", "base0.1_unscaled")),
    _course("large-batches", "lb_base01_linear_1024_vs_256", "batch 1024 scaled to 0.4 against batch 256 at 0.1",
            "large_batch", ("global1024", "base0.1_linear"), ("global256", "base0.1_unscaled")),
    _course("large-batches", "lb_base01_warmup_vs_linear_1024", "at batch 1024, scaled to 0.4: with a 2-epoch warmup "
            "against without", "large_batch", ("global1024", "base0.1_linear_warmup"), ("global1024", "base0.1_linear")),
    # ---- the comparison chapter: the training loss against the constant rate; the two cosines
    *(_course("comparison", f"decay_train_loss_{run}_{variant}", f"{D2L_LABELS[run]} against the constant rate, "
              f"training loss ({variant})", "d2l", (variant, run), (variant, "constant"), "train_loss")
      for run in D2L_RUNS[1:] for variant in ("corrected", "published")),
    *(_course("comparison", f"warmup_vs_cosine_{variant}", f"cosine with warmup against the cosine ({variant})", "d2l",
              (variant, "cosine_warmup"), (variant, "cosine")) for variant in ("corrected", "published")),
    # ---- each shape at its own peak (the tuned study's finals; "@*": the peak the search chose)
    *(_course("comparison", f"tuned_{shape}_vs_constant{tail}", f"{D2L_LABELS[shape]} against the constant rate, "
              f"each at its own peak{what}", "tuned", ("final", f"{shape}@*"), ("final", "constant@*"), epoch=epoch)
      for shape in D2L_RUNS[1:] for tail, what, epoch in (("", "", None), ("_last3", ", last three epochs", "last3"))),
    *(_course("comparison", f"tuned_vs_d2l_{shape}", f"{D2L_LABELS[shape]} at its own peak against d2l's peak",
              "tuned", ("final", f"{shape}@*"), ("corrected", shape), study_b="d2l") for shape in D2L_RUNS),
    # ---- a run at a constant rate ends noisily: its last three epochs against its last one
    _course("comparison", "cosine_vs_constant_last3", "the cosine against the constant rate, on the mean of the "
            "last three epochs", "d2l", _CORRECTED["cosine"], _CORRECTED["constant"], epoch="last3"),
    _course("comparison", "sqrt_vs_constant_last3", "the square root against the constant rate, on the mean of "
            "the last three epochs", "d2l", _CORRECTED["square_root"], _CORRECTED["constant"], epoch="last3"),
)


# --------------------------------------------------------------------------- measuring


def with_measures(frame):
    """The table with two per-run measures added to every row: ``gap`` (train acc - test acc of that
    epoch) and ``roughness`` (the run's mean absolute change of test accuracy from one epoch to the
    next over the last two thirds of its epochs)."""
    frame = frame.assign(gap=frame["train_acc"] - frame["test_acc"])
    keys = ["experiment", "variant", "schedule", "seed", "data"]
    last = frame.groupby(keys)["epoch"].transform("max")
    late = frame[frame["epoch"] >= (last + 1) / 3].sort_values("epoch")
    rough = late.groupby(keys)["test_acc"].apply(lambda s: s.diff().abs().mean()).rename("roughness")
    return frame.join(rough, on=keys)


@functools.lru_cache(maxsize=None)
def _table(study: str, where: str):
    return with_measures(_results.read_table(Path(where) / f"{study}.csv"))


def _where(where) -> str:
    return str(_results.results_dir() if where is None else Path(where))


def evaluate(claim: Claim, where=None) -> tuple:
    """``(epoch, PairedDifference)`` of ``claim`` on the tables in ``where`` (default: the committed results);
    ``epoch`` is the epoch compared (the runs' last, for ``epoch=None``) or ``"last3"``."""
    epoch, p, _, _ = _evaluate(claim, where)
    return epoch, p


def _evaluate(claim: Claim, where=None) -> tuple:
    """:func:`evaluate`, and the two arms it compared (``{"variant", "schedule"}``, a chosen peak resolved)."""
    where = _where(where)
    a_frame = _table(claim.study, where)
    b_frame = a_frame if claim.study_b is None else _table(claim.study_b, where)
    a, b = _arm(a_frame, claim.a), _arm(b_frame, claim.b)
    p = _results.paired(a_frame, a, b, metric=claim.measure, epoch=claim.epoch, frame_b=b_frame,
                        epoch_b=claim.epoch_b)
    epoch = claim.epoch if claim.epoch is not None else int(_results.select(a_frame, **a)["epoch"].max())
    if claim.epoch_b is not None:
        epoch = f"{epoch}/{claim.epoch_b}"
    return epoch, p, a, b  # the epoch compared: a's last, when the claim names none


def _arm(frame, arm: tuple) -> dict:
    """``{"variant": ..., "schedule": ...}`` of ``arm``; a schedule ``"shape@*"`` names the one arm of that shape
    the table has (the peak a search chose)."""
    variant, schedule = arm
    if schedule.endswith("@*"):
        names = sorted({s for s in frame.loc[frame.variant == variant, "schedule"] if s.startswith(schedule[:-1])})
        if len(names) != 1:
            raise ValueError(f"{variant}/{schedule} matches {names or 'no arm'}; it must match exactly one")
        schedule = names[0]
    return {"variant": variant, "schedule": schedule}


def verdict_table(claims=CLAIMS, where=None):
    """One row per claim (:data:`COLUMNS`), from the tables in ``where``."""
    import pandas as pd

    rows = []
    for c in claims:
        epoch, p, a, b = _evaluate(c, where)
        rows.append({"chapter": c.chapter, "claim": c.claim,
                     "study": c.study if c.study_b is None else f"{c.study}+{c.study_b}", "epoch": str(epoch),
                     "measure": c.measure, "variant_a": a["variant"], "schedule_a": a["schedule"],
                     "variant_b": b["variant"], "schedule_b": b["schedule"], "n": p.n, "mean_diff": p.mean_diff,
                     "ci_low": p.ci_low, "ci_high": p.ci_high, "sign_count": p.sign_count, "verdict": p.verdict})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_verdicts(where=None) -> Path:
    """Write ``verdicts.csv`` into ``where`` (default: the committed results), atomically; return its path."""
    where = Path(_where(where))
    _table.cache_clear()
    path = where / VERDICTS_FILE
    _results.write_atomic(path, verdict_table(where=where).to_csv(index=False, lineterminator="\n"))
    return path


def read_verdicts(where=None):
    """``verdicts.csv`` as a DataFrame (``epoch`` as text: a number or ``last3``)."""
    import pandas as pd

    path = Path(_where(where)) / VERDICTS_FILE
    if not path.is_file():
        raise _results.ResultsError(f"{path} does not exist: `make verdicts` writes it from the result tables")
    return pd.read_csv(path, dtype={"epoch": str})


def finding(claim: str, where=None) -> dict:
    """The row of ``verdicts.csv`` for ``claim``, with the :class:`~lrlab.stats.PairedDifference` as ``paired``."""
    table = read_verdicts(where)
    rows = table[table["claim"] == claim]
    if len(rows) != 1:
        raise KeyError(f"verdicts.csv has no claim {claim!r}; the claims are in lrlab.course.verdicts.CLAIMS "
                       f"(run `make verdicts` after adding one)")
    row = rows.iloc[0].to_dict()
    row["paired"] = PairedDifference(int(row["n"]), float(row["mean_diff"]), float("nan"), float(row["ci_low"]),
                                     float(row["ci_high"]), int(row["sign_count"]))
    return row


def source_verdict(verdict: str, expects: int) -> str:
    """A source's statement measured: ``supported`` (the paired verdict goes the way the source says),
    ``contradicted`` (the other way), or ``not shown`` (no difference shown)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}; got {verdict!r}")
    if verdict == "no difference shown":
        return "not shown"
    return "supported" if (verdict == "higher") == (expects > 0) else "contradicted"


# --------------------------------------------------------------------------- d2l's printed runs


def results_rows(runs=D2L_RUNS, variants=("corrected", "published")):
    """Rows for :func:`lrlab.course.results.compare_table`: for each of d2l's runs, the course's runs of each
    variant and the numbers d2l printed (one run each)."""
    names = {"corrected": "lrlab, schedule as described", "published": "lrlab, rates d2l's code used"}
    rows = {}
    for run in runs:
        if run not in D2L_RUNS:
            raise ValueError(f"run={run!r} is not one of the section's runs; use one of {', '.join(map(repr, D2L_RUNS))}")
        for variant in variants:
            rows[f"{D2L_LABELS[run]}: {names[variant]}"] = {"variant": variant, "schedule": run}
        rows[f"{D2L_LABELS[run]}: printed by d2l (one run)"] = PRINTED[run]
    return rows


def printed_vs_measured(frame, runs=D2L_RUNS, variant="published"):
    """d2l's printed single run next to the course's runs of the same rates: how many standard deviations apart.

    One row per run and metric (train loss, train acc, test acc): the number d2l printed, the mean and
    standard deviation over the course's seeds of ``variant`` (default: the rates d2l's code used), and
    ``z = (printed - mean) / sd``. d2l's run also differs in ways the table cannot show (its device, its
    data loader's shuffling, no seed).
    """
    import math

    import pandas as pd

    rows = []
    last = _results.final_epoch(frame)
    for run in runs:
        values = _results.select(last, variant=variant, schedule=run)
        for metric, printed in zip(("train_loss", "train_acc", "test_acc"), PRINTED[run]):
            mean, sd = float(values[metric].mean()), float(values[metric].std(ddof=1))
            rows.append({"run": run, "metric": metric, "printed": printed, "mean": mean, "sd": sd,
                         "z": (printed - mean) / sd if sd > 0 else math.nan})  # nan: the seeds agree exactly
    return pd.DataFrame(rows)
