"""Results as data: the tidy tables of the course's reference runs, their provenance, and their summaries.

Each study of :mod:`lrlab.course.runner` writes one table, ``<results>/<study>.csv``, with one row per
(experiment, variant, schedule, seed, epoch) and the columns :data:`COLUMNS`:

===============  ==========================================================================
column           meaning
===============  ==========================================================================
experiment       the study (``d2l``, ``mnist_cnn``)
variant          ``corrected`` (lrlab applies the schedule), ``published`` (the rates the
                 source's code really trained at), ``as_written`` (the source's setup run as
                 it is written), ``course`` (a run the course adds)
schedule         the schedule's short name (``cosine_warmup``, ``step``, ...)
seed             ``torch.manual_seed`` before building the net; also the shuffling seed
epoch            0-based epoch; ``lr`` is the rate it trained at
lr               the rate of the epoch's first update (as :class:`lrlab.History`)
momentum         the momentum (SGD, schedule-free SGD) or Adam's beta1 of the epoch's last
                 update; empty where the optimizer has none
train_loss,      as in :class:`lrlab.History`: mean loss and accuracy during the epoch's
train_acc        training
val_loss,        loss and accuracy on a validation split held out of the training set, after
val_acc          the epoch; empty where the run has none (only runs that choose something do)
test_loss,       loss and accuracy on the test set after the epoch; empty where a run must not
test_acc         look at it (a search that chooses on the validation split)
seconds          wall-clock seconds of the epoch (training plus evaluation)
weight_norm      Euclidean norm of all the net's parameters after the epoch (d2l's argument
                 that small rates keep the parameters near zero is checked with it)
data             which data the run used (e.g. the MNIST test split as a proxy)
===============  ==========================================================================

and ``<study>.provenance.json``: for every run, the device, the versions of Python, torch and lrlab,
the date, the command and the wall time. Both files are written atomically (a temporary file in the
same folder, then ``os.replace``), so a reader never sees half a table.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from ..stats import paired_difference

__all__ = [
    "COLUMNS",
    "RUN_KEY",
    "ResultsError",
    "results_dir",
    "write_atomic",
    "write_table",
    "read_table",
    "read_provenance",
    "final_epoch",
    "summarize",
    "per_epoch",
    "select",
    "paired",
    "paired_values",
    "history_rows",
    "record_run",
    "compare_table",
    "timing",
    "timing_text",
    "METRIC_NAMES",
]

#: How the book names the metric columns.
METRIC_NAMES = {"lr": "learning rate", "momentum": "momentum", "train_loss": "train loss",
                "train_acc": "train acc", "val_loss": "val loss", "val_acc": "val acc", "test_loss": "test loss",
                "test_acc": "test acc", "seconds": "seconds", "weight_norm": "weight norm"}

#: The columns of a results table, in order.
COLUMNS = ("experiment", "variant", "schedule", "seed", "epoch", "lr", "momentum", "train_loss", "train_acc",
           "val_loss", "val_acc", "test_loss", "test_acc", "seconds", "weight_norm", "data")
#: The columns that name one run (a run's rows differ only in ``epoch`` and the metrics).
RUN_KEY = ("experiment", "variant", "schedule", "seed")
_TEXT = ("experiment", "variant", "schedule", "data")
_INTS = ("seed", "epoch")
_RATES = ("lr", "momentum", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds",
          "weight_norm")

PathLike = Union[str, os.PathLike]


class ResultsError(ValueError):
    """A results file is missing or does not have the schema; the message names the file and the fix."""


def results_dir() -> Path:
    """Where the committed results live: ``$LRLAB_RESULTS``, else the first of ``./results``,
    ``./book/results`` and ``<repository>/book/results`` that exists (a chapter runs in ``book/``, a
    script in the repository root), else the copy installed with the package (``lrlab.course.reference``,
    built from ``book/results``: a chapter opened outside the repository, as in Colab, reads it)."""
    env = os.environ.get("LRLAB_RESULTS", "")
    if env:
        return Path(env).expanduser().resolve()
    candidates = [Path.cwd() / "results", Path.cwd() / "book" / "results",
                  Path(__file__).resolve().parents[2] / "book" / "results"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    installed = _installed_results()
    return installed if installed is not None else candidates[-1]


def _installed_results() -> Optional[Path]:
    """The results folder installed with the package (``lrlab/course/reference`` in an installed wheel), or
    None (a checkout, where ``book/results`` is found first)."""
    folder = Path(__file__).resolve().parent / "reference"
    return folder if (folder / "d2l.csv").is_file() else None


def write_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_frame(frame, where: str):
    import pandas as pd

    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ResultsError(f"{where} lacks the column(s) {missing}; a results table has the columns "
                           f"{list(COLUMNS)} (rerun `make results` to rewrite it)")
    frame = frame.loc[:, list(COLUMNS) + [c for c in frame.columns if c not in COLUMNS]].copy()
    for c in _TEXT:
        if frame[c].isna().any():
            raise ResultsError(f"{where}: column {c!r} has empty cells; every row names its run "
                               f"(rerun `make results` to rewrite it)")
        frame[c] = frame[c].astype(str)
    for c in _INTS + _RATES:
        values = pd.to_numeric(frame[c], errors="coerce")
        bad = values.isna() & frame[c].notna()
        if bad.any():
            raise ResultsError(f"{where}: column {c!r} holds a non-number in row {int(bad.idxmax())} "
                               f"({frame[c][bad].iloc[0]!r}); rerun `make results` to rewrite it")
        frame[c] = values
    for c in _INTS:
        if frame[c].isna().any() or (frame[c] < 0).any() or (frame[c] % 1 != 0).any():
            raise ResultsError(f"{where}: column {c!r} must hold integers >= 0")
        frame[c] = frame[c].astype("int64")
    if frame.duplicated(list(RUN_KEY) + ["data", "epoch"]).any():
        row = frame[frame.duplicated(list(RUN_KEY) + ["data", "epoch"])].iloc[0]
        raise ResultsError(f"{where}: run {tuple(row[list(RUN_KEY)])} has epoch {row['epoch']} twice; "
                           f"a table holds each (run, epoch) once (rerun `make results` to rewrite it)")
    return frame


def write_table(path: PathLike, rows: Union[Iterable[dict], "object"]) -> None:
    """Write rows (dicts with :data:`COLUMNS`, or a DataFrame) to ``path`` as CSV, atomically.

    Rows are checked against the schema and sorted by run and epoch; floats are written as Python's
    shortest round-trip ``repr``, so reading the file back gives the same numbers, bit for bit.
    """
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame = _check_frame(frame, str(path))
    frame = frame.sort_values(["experiment", "variant", "schedule", "data", "seed", "epoch"], kind="stable")
    write_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def _resolve(name_or_path: PathLike, suffix: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == "" and len(path.parts) == 1:  # a study name: "d2l"
        path = results_dir() / f"{path.name}{suffix}"
    return path


def read_table(name_or_path: PathLike):
    """A results table as a pandas DataFrame, checked against :data:`COLUMNS`.

    ``name_or_path`` is a study name (``"d2l"``, read from :func:`results_dir`) or a path to a CSV.
    A missing file or a wrong schema raises :class:`ResultsError` naming the file and the fix.
    """
    import pandas as pd

    path = _resolve(name_or_path, ".csv")
    if not path.is_file():
        raise ResultsError(f"{path} does not exist: the reference results are made by `make results` "
                           f"(or `python -m lrlab.course.runner`); set LRLAB_RESULTS to read them from elsewhere")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in _TEXT})  # pandas parses floats exactly (a test checks)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path} is not a readable CSV table ({err}); rerun `make results` to rewrite it") from err
    return _check_frame(frame, str(path))


def read_provenance(name_or_path: PathLike) -> dict:
    """The provenance of a study's runs (``<study>.provenance.json``): ``{"runs": {run id: {...}}}``."""
    path = _resolve(name_or_path, ".provenance.json")
    if not path.is_file():
        raise ResultsError(f"{path} does not exist: `make results` writes it next to the table")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path} is not valid JSON ({err}); rerun `make results` to rewrite it") from err
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise ResultsError(f"{path} has no 'runs' object; rerun `make results` to rewrite it")
    return data


def final_epoch(frame):
    """The last recorded epoch of every run (one row per run)."""
    keys = list(RUN_KEY) + ["data"]
    last = frame.groupby(keys, sort=False)["epoch"].transform("max")
    return frame[frame["epoch"] == last].reset_index(drop=True)


def summarize(frame, metrics: Sequence[str] = ("train_loss", "train_acc", "test_acc"),
              by: Sequence[str] = ("variant", "schedule"), epoch: Optional[int] = None):
    """Mean, standard deviation (ddof=1, NaN for one seed) and number of seeds of ``metrics``, per group.

    Taken at each run's last epoch, or at ``epoch`` when given. Returns a DataFrame indexed by ``by``
    with columns ``(metric, "mean" | "std" | "n")``.
    """
    if epoch is None:
        rows = final_epoch(frame)
    else:
        rows = frame[frame["epoch"] == epoch]
        if rows.empty:
            raise ValueError(f"no run has epoch {epoch}; the table's epochs are "
                             f"{int(frame['epoch'].min())}..{int(frame['epoch'].max())}")
    return rows.groupby(list(by), sort=False)[list(metrics)].agg(["mean", "std", "count"]).rename(
        columns={"count": "n"}, level=1)


def per_epoch(frame, metric: str, by: Sequence[str] = ("variant", "schedule")):
    """Per-epoch mean and standard deviation of ``metric`` over seeds: columns ``by + [epoch, mean, std, n]``."""
    if metric not in _RATES:
        raise ValueError(f"metric={metric!r} is not a metric column; use one of {list(_RATES)}")
    grouped = frame.groupby(list(by) + ["epoch"], sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).rename(columns={"count": "n"}).reset_index()
    return out


def select(frame, **where):
    """The rows whose columns equal the given values, e.g. ``select(t, variant="corrected", schedule="cosine")``."""
    unknown = [k for k in where if k not in frame.columns]
    if unknown:
        raise ValueError(f"select: no column {unknown[0]!r}; the columns are {list(frame.columns)}")
    mask = None
    for column, value in where.items():
        hit = frame[column] == value
        mask = hit if mask is None else mask & hit
    rows = frame if mask is None else frame[mask]
    if rows.empty:
        raise ValueError(f"select: no row has {where}")
    return rows


def _compared_epochs(runs, epoch):
    """The epochs a comparison reads: ``(e,)`` for an epoch number; for None the last epoch of ``runs`` (which
    must all have trained as long); for ``"last3"`` that epoch and the two before it."""
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        return (epoch,)
    if epoch is not None and epoch != "last3":
        raise ValueError(f"epoch must be None (the runs' last), an epoch number or 'last3'; got {epoch!r}")
    lasts = runs.groupby(list(RUN_KEY) + ["data"])["epoch"].max()
    if lasts.nunique() != 1:
        raise ValueError(f"the runs end at different epochs ({sorted(lasts.unique())}); name the epoch to compare")
    last = int(lasts.iloc[0])
    if epoch is None:
        return (last,)
    if last < 2:
        raise ValueError("epoch='last3' needs runs of at least three epochs")
    return (last - 2, last - 1, last)


def _per_run(runs, epochs, metric: str):
    """``metric`` of each run (indexed by seed), averaged over ``epochs``; a run without one of them is an error."""
    rows = runs[runs["epoch"].isin(epochs)]
    counts = rows.groupby("seed")["epoch"].nunique()
    if counts.empty or (counts < len(epochs)).any():
        raise ValueError(f"not every run has the epochs {list(epochs)}")
    if rows.groupby("seed")["variant"].size().gt(len(epochs)).any():
        raise ValueError("the selection holds more than one run per seed; name the variant and schedule")
    return rows.groupby("seed")[metric].mean()


def paired_values(frame, a: dict, b: dict, metric: str = "test_acc", epoch=None, frame_b=None, epoch_b=None):
    """``(seeds, values of a, values of b)``: the runs ``a`` and ``b`` select (dicts of column values), matched
    by seed, each run's ``metric`` at the compared epochs; ``b`` is read from ``frame_b`` when given (an arm of
    another table). Only seeds that both sides have are kept.

    ``epoch``: an epoch number; None, the last epoch of ``a``'s runs; or ``"last3"``, the mean over that
    epoch and the two before it. Both sides are read at the same epochs, so a 10-epoch arm is compared with
    the first 10 epochs of a longer one. ``epoch_b``: read ``b`` at other epochs (the same forms), e.g. a
    run's snapshot at epoch 9 against another's end.
    """
    import numpy as np

    other = frame if frame_b is None else frame_b
    for f in (frame, other):
        if metric not in f.columns or metric in RUN_KEY + ("epoch", "data"):
            raise ValueError(f"metric={metric!r} is not a metric column; use one of {list(_RATES)} or a column you added")
    runs_a, runs_b = select(frame, **a), select(other, **b)
    epochs = _compared_epochs(runs_a, epoch)
    epochs_b = epochs if epoch_b is None else _compared_epochs(runs_b, epoch_b)
    try:
        va, vb = _per_run(runs_a, epochs, metric), _per_run(runs_b, epochs_b, metric)
    except ValueError as err:
        raise ValueError(f"paired {a} and {b}: {err}") from None
    seeds = sorted(set(va.index) & set(vb.index))
    return seeds, np.array([va[s] for s in seeds], float), np.array([vb[s] for s in seeds], float)


def paired(frame, a: dict, b: dict, metric: str = "test_acc", epoch=None, frame_b=None, level: float = 0.95,
           epoch_b=None):
    """The paired comparison of the runs ``a`` and ``b`` select, seed by seed: ``a - b`` on ``metric``
    (:class:`lrlab.stats.PairedDifference`: mean, 95 % t-interval, seeds of the same sign, verdict).

    ``epoch`` as in :func:`paired_values`: None (``a``'s last epoch), an epoch number, or ``"last3"``.
    ``frame_b``: the table of ``b`` when it is not ``frame``; ``epoch_b``: ``b``'s epochs when they are not
    ``a``'s. Needs at least two common seeds.
    """
    seeds, va, vb = paired_values(frame, a, b, metric, epoch, frame_b, epoch_b)
    if len(seeds) < 2:
        raise ValueError(f"paired: {a} and {b} share {len(seeds)} seed(s); a paired comparison needs at least two")
    return paired_difference(va, vb, level)


def history_rows(history, *, experiment: str, variant: str, schedule: str, seed: int, data: str) -> list:
    """The table's rows of a :class:`lrlab.History` (one per epoch, :data:`COLUMNS`): the runner's and the
    data-parallel command's one way from a history to results. ``weight_norm`` comes from
    ``history.extra["weight_norm"]`` (:class:`lrlab.callbacks.RecordWeightNorm`), NaN without it."""
    norms = history.extra.get("weight_norm", [math.nan] * len(history))
    return [{"experiment": experiment, "variant": variant, "schedule": schedule, "seed": seed, "epoch": epoch,
             "lr": history.lr[i], "momentum": history.momentum[i], "train_loss": history.train_loss[i],
             "train_acc": history.train_acc[i], "val_loss": history.valid_loss[i], "val_acc": history.valid_acc[i],
             "test_loss": history.test_loss[i], "test_acc": history.test_acc[i], "seconds": history.seconds[i],
             "weight_norm": norms[i], "data": data} for i, epoch in enumerate(history.epochs)]


def mean_sd_text(values, digits: Optional[int] = None) -> str:
    """``"0.881 ± 0.004"``: the mean to the decimal of the standard deviation's first significant digit (the
    digits the seeds support), the deviation to one significant digit; ``digits`` fixes the decimals instead.
    One value: the value, to ``digits`` (default 3) decimals."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return f"{mean:.{3 if digits is None else digits}f}"
    sd = float(values.std(ddof=1))
    if digits is None:
        digits = 3 if sd == 0 or not math.isfinite(sd) else max(0, -math.floor(math.log10(sd)))
        if sd > 0 and round(sd, digits) >= 10 ** (1 - digits):  # 0.0096 rounds to 0.010: one digit fewer
            digits = max(0, digits - 1)
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def compare_table(frame, rows: dict, metrics: Sequence[str] = ("train_loss", "train_acc", "test_acc"),
                  digits: Optional[int] = None):
    """A table for people: one row per group of runs, "mean ± sd" over seeds at each run's last epoch.

    ``rows`` maps a row label either to a dict of column values selecting runs (e.g.
    ``{"variant": "corrected", "schedule": "cosine"}``) or to a tuple of numbers, one per metric (a
    source's printed single run, shown with 3 decimals). Returns a DataFrame of strings indexed by the
    labels, with a column ``n`` (seeds; empty for printed numbers) and one column per metric. Each mean has
    the digits its seeds support (:func:`mean_sd_text`), unless ``digits`` fixes them.
    """
    import pandas as pd

    last = final_epoch(frame)
    table = {}
    for label, spec in rows.items():
        if isinstance(spec, dict):
            runs = select(last, **spec)
            n = len(runs)
            cells = [mean_sd_text(runs[m], digits) for m in metrics]
            table[label] = [str(n)] + cells
        else:
            values = tuple(spec)
            if len(values) != len(metrics):
                raise ValueError(f"compare_table: row {label!r} has {len(values)} numbers for {len(metrics)} metrics")
            table[label] = [""] + [f"{v:.{3 if digits is None else digits}f}" for v in values]
    return pd.DataFrame.from_dict(table, orient="index", columns=["n"] + [METRIC_NAMES[m] for m in metrics])


def record_run(out: Path, name: str, rows: list, provenance: dict) -> None:
    """Add one finished run's rows and provenance to the study's files (table first, both atomic)."""
    import pandas as pd

    table, prov_path = out / f"{name}.csv", out / f"{name}.provenance.json"
    new = pd.DataFrame(rows, columns=list(COLUMNS))
    if table.exists():
        old = read_table(table)
        key = list(RUN_KEY) + ["data"]
        same = old.set_index(key).index.isin(new.set_index(key).index.unique())
        new = pd.concat([old[~same], new], ignore_index=True)
    write_table(table, new)
    prov = read_provenance(prov_path) if prov_path.exists() else {"runs": {}}
    prov["runs"].update(provenance)
    prov["runs"] = dict(sorted(prov["runs"].items()))
    write_atomic(prov_path, json.dumps(prov, indent=1, sort_keys=False) + "\n")


# --------------------------------------------------------------------------------------------- timing


def timing(study: str, where: Optional[PathLike] = None) -> dict:
    """How long a study's runs took, from ``<study>.provenance.json`` and the ``seconds`` of ``<study>.csv``.

    ``where``: the folder of the two files (default :func:`results_dir`). Returns ``runs``,
    ``minutes`` (training wall time summed over runs), ``run_minutes`` (median per run),
    ``epoch_seconds`` (median per epoch), ``devices`` and ``torch`` (sorted, what the runs recorded),
    ``first`` and ``last`` (the first run's start and the last run's finish, ISO dates).
    """
    import statistics

    base = results_dir() if where is None else Path(where)
    runs = list(read_provenance(base / f"{study}.provenance.json")["runs"].values())
    if not runs:
        raise ResultsError(f"{base / f'{study}.provenance.json'} records no runs: `make results` writes them")
    table = read_table(base / f"{study}.csv")
    walls = [float(r["wall_seconds"]) for r in runs]
    cpus = [r["cpu"] for r in runs if r.get("cpu")]
    return {"runs": len(runs), "minutes": sum(walls) / 60, "run_minutes": statistics.median(walls) / 60,
            "epoch_seconds": float(table["seconds"].median()),
            "devices": sorted({r["device"] for r in runs}), "torch": sorted({r["torch"] for r in runs}),
            "cpus": {cpu: cpus.count(cpu) for cpu in sorted(set(cpus))},
            "first": min(r["started"] for r in runs), "last": max(r["finished"] for r in runs)}


def timing_text(studies: Optional[Sequence[str]] = None, where: Optional[PathLike] = None) -> str:
    """One Markdown bullet per study: its runs, their summed and median times, the device and torch.

    ``studies``: default every study with a ``<study>.provenance.json`` in ``where``, in the order their
    first runs started. The README's timing of the reference runs is this text (``python -m lrlab sync``
    writes it there), so its numbers come from the provenance files, not from a hand.
    """
    base = results_dir() if where is None else Path(where)
    if studies is None:
        names = [p.name[: -len(".provenance.json")] for p in base.glob("*.provenance.json")]
        if not names:
            raise ResultsError(f"{base} holds no <study>.provenance.json: `make results` writes them")
        timings = sorted(((timing(name, base), name) for name in names), key=lambda pair: pair[0]["first"])
    else:
        timings = [(timing(name, base), name) for name in studies]
    lines = []
    for t, study in timings:
        cpus = "; ".join(f"{n} run{'s' if n > 1 else ''} on {cpu}" for cpu, n in t["cpus"].items())
        if cpus and sum(t["cpus"].values()) < t["runs"]:
            cpus += f"; {t['runs'] - sum(t['cpus'].values())} from before the CPU id was recorded"
        lines.append(f"- `{study}`: {t['runs']} runs, {t['minutes']:.0f} minutes of training in all "
                     f"({t['run_minutes']:.1f} minutes per run and {t['epoch_seconds']:.1f} s per epoch, medians), "
                     f"on {', '.join(t['devices'])}{f' ({cpus})' if cpus else ''}, torch {', '.join(t['torch'])}, "
                     f"between {t['first'][:16].replace('T', ' ')} and {t['last'][:16].replace('T', ' ')} UTC.")
    if len(timings) > 1:
        runs, minutes = sum(t["runs"] for t, _ in timings), sum(t["minutes"] for t, _ in timings)
        lines.append(f"- In all: {runs} runs, {minutes / 60:.1f} hours of training.")
    return "\n".join(lines)
