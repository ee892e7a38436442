"""The course's reference runs: every experiment the chapters report, trained for real, safe to stop.

``make results`` (or ``python -m lrlab.runner``) trains each study below in the ``full`` profile and
writes its tidy table and provenance under ``book/results/`` (see :mod:`lrlab.results`):

``d2l``
    The five runs of d2l's "Learning Rate Scheduling" section (LeNet, Fashion-MNIST, batch 256, SGD,
    30 epochs), each in two variants: ``corrected`` (lrlab applies the schedule the text describes)
    and ``published`` (the rates d2l's code really trained at, from
    :func:`lrlab.d2l_section.published_rates`). Seeds 0 to 4.
``mnist_cnn``
    The MNIST tutorial's setup (``ImprovedCNN``, batch 64, Adam 1e-3, 10 epochs): ``StepLR(5, 0.5)``
    and ``CosineAnnealingLR(T_max=20)`` as written, the cosine corrected to ``T_max=10`` (the number
    of epochs), and a constant rate (the course's baseline). Seeds 42 (the tutorial's) to 46. On the
    real MNIST splits when they are on disk, else on the MNIST test split cut 8,000 / 2,000
    (:func:`lrlab.data.load_data_mnist_test_split`), which the ``data`` column says.
``lr_find``
    Beyond the sources: constant-rate runs of 10 epochs in d2l's setting at each rule's median
    suggestion of the LR range test (:data:`RANGE_TEST_LR`, from :func:`range_test` over seeds 0 to
    4), seeds 0 to 2, to compare with d2l's constant 0.3 after 10 epochs (the same seeds).
``cycles``
    In d2l's setting (LeNet, Fashion-MNIST, batch 256, plain SGD, 30 epochs),
    seeds 0 to 2 (paired with d2l's runs of the same seeds): one-cycle to 0.3 with torch's momentum
    cycling, and warm restarts (SGDR, cycles of 10 and 20 epochs), both stepped per update.
``budget``
    Warmup-stable-decay and a cosine, each for budgets of 10, 20 and 30 epochs (per update, half an
    epoch of warmup, peak 0.3, down to 0), and schedule-free SGD for 30 epochs, seeds 0 to 2. The
    warmup-stable-decay runs share their stable part bit for bit (same seed, same rates until their
    decay starts), as one run cooled down from three checkpoints would.
``large_batch``
    Data-parallel SGD on 2 processes under torchrun (:mod:`lrlab.distributed`, DDP) in d2l's setting
    for 10 epochs: global batch 256 at 0.3, and 1024, 4096 and 8192 each at 0.3, at the linearly
    scaled 0.3 x B/256, and at that rate after a 2-epoch warmup from 0.3 (Goyal et al., 2017),
    seeds 0 to 2. A run whose training loss stops being finite ends there (the table keeps its
    epochs; its provenance says so).

Safe to stop: after every epoch the net, optimizer, scheduler and random state (torch's generators
and the loader's) are saved atomically to ``<results>/.runs/<run>.pt``; a new invocation resumes
each unfinished run from its last epoch and gives the same rows as an uninterrupted run; a run
whose rows are in the table is never redone. Arguments are checked and the data loaded before any
training starts.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler as _torch_sched

from . import __version__
from . import d2l_section as _d2l
from . import data as _data
from . import profiles as _profiles
from . import results as _results
from . import schedules as _s
from .device import try_gpu
from .lr_find import RULES, lr_find_seeds
from .lr_scheduler import ScheduleLR
from .train import train, weight_norm

__all__ = ["Arm", "Study", "STUDIES", "RunSpec", "plan", "run", "main", "iters_per_epoch"]


class _Rates:
    """A schedule given as its list of per-epoch rates (what a traced run used): ``t -> rates[t]``."""

    def __init__(self, rates: Sequence[float]):
        self.rates = tuple(float(r) for r in rates)

    def __call__(self, t):
        return self.rates[int(t)]

    def __repr__(self) -> str:
        return f"_Rates({len(self.rates)} epochs)"


@dataclass(frozen=True)
class Arm:
    """One (variant, schedule) of a study: how to build its optimizer and scheduler, and its rates.

    ``optimizer(params, cfg)`` builds the optimizer; ``scheduler(optimizer, cfg)`` what :func:`lrlab.train`
    gets as ``scheduler`` (None, a schedule, or a torch scheduler); ``rates(cfg)`` the pure schedule
    ``t -> lr`` the run must train at, per epoch (the rate of each epoch's first update; the tests check
    the table's ``lr`` column against it). ``step_per``: what the scheduler's ``t`` counts, ``"epoch"`` or
    ``"update"`` (as in :func:`lrlab.train`). ``num_epochs(cfg)``: the run's length when it is not the
    experiment's (a shorter budget), else None. ``ddp(cfg)``: for a data-parallel arm, the arguments of
    ``python -m lrlab.distributed`` (the runner launches it under torchrun with :data:`DDP_PROCESSES`
    processes); its ``optimizer`` and ``scheduler`` are then unused. ``momentum(cfg)``: ``t -> `` the
    momentum (or Adam's beta1) of epoch ``t``'s last update, checked against the table like ``rates``
    (None: plain SGD, 0). ``seeds``: the arm's own seeds when they are not the study's. ``holdout``: train
    on the training set less :data:`VALIDATION_SIZE` examples held out for validation (filling ``val_loss``
    and ``val_acc``), and never look at the test set (its columns stay empty).
    """

    variant: str
    schedule: str
    label: str
    optimizer: Callable[[Any, _profiles.Experiment], torch.optim.Optimizer]
    scheduler: Callable[[torch.optim.Optimizer, _profiles.Experiment], Any]
    rates: Callable[[_profiles.Experiment], Callable]
    step_per: str = "epoch"
    num_epochs: Optional[Callable[[_profiles.Experiment], int]] = None
    ddp: Optional[Callable[[_profiles.Experiment], list]] = None
    momentum: Optional[Callable[[_profiles.Experiment], Callable]] = None
    seeds: Optional[tuple] = None
    holdout: bool = False

    def epochs(self, cfg: _profiles.Experiment) -> int:
        """How many epochs this arm trains in ``cfg``'s profile."""
        return cfg.num_epochs if self.num_epochs is None else self.num_epochs(cfg)

    def momenta(self, cfg: _profiles.Experiment) -> Callable:
        """``t -> momentum`` of epoch ``t``'s last update (the table's ``momentum`` column); plain SGD's 0 by default."""
        return (lambda t: 0.0) if self.momentum is None else self.momentum(cfg)


@dataclass(frozen=True)
class Study:
    """A table of reference runs: one experiment of :mod:`lrlab.profiles`, its arms and its default seeds."""

    name: str
    experiment: str
    arms: tuple
    seeds: tuple
    description: str
    data: Callable[..., tuple] = field(repr=False, default=None)  # (cfg, root, seed, device) -> (label, iters)
    # Arms whose configuration is read from results already in the output folder (a rate chosen by a
    # search, a range test's suggestion): out -> the arms that can be built now (none while their inputs
    # are not complete; the runner asks again after each round of runs).
    later: Optional[Callable[[Path], tuple]] = field(repr=False, default=None)
    # A step that writes such inputs before the study's runs: (out, cfg, root, device, command) -> None.
    prepare: Optional[Callable[..., None]] = field(repr=False, default=None)

    def arms_in(self, out: Path) -> tuple:
        """The study's arms for the results in ``out``: the fixed ones, then those its results already decide."""
        return self.arms + (() if self.later is None else tuple(self.later(Path(out))))

    def arm(self, variant: str, schedule: str, out: Optional[Path] = None) -> Arm:
        for a in (self.arms if out is None else self.arms_in(out)):
            if (a.variant, a.schedule) == (variant, schedule):
                return a
        raise KeyError(f"{self.name} has no arm {variant}/{schedule}" + ("" if out is None else f" in {out}"))


# --------------------------------------------------------------------------- the d2l study


def _d2l_corrected(cfg: _profiles.Experiment) -> dict:
    e = cfg.epochs
    return {
        "constant": _s.ConstantScheduler(lr=0.3),
        "square_root": _s.SquareRootScheduler(lr=0.1),
        "multi_step": _s.MultiFactorScheduler(steps=[e(15), e(30)], factor=0.5, base_lr=0.5),
        "cosine": _s.CosineScheduler(max_update=e(20), base_lr=0.3, final_lr=0.01),
        "cosine_warmup": _s.CosineScheduler(max_update=e(20), base_lr=0.3, final_lr=0.01, warmup_steps=e(5)),
    }


def _d2l_arm(variant: str, name: str) -> Arm:
    if variant == "corrected":
        def rates(cfg):
            return _d2l_corrected(cfg)[name]
    else:
        def rates(cfg):
            return _Rates(_d2l.published_rates(name, cfg.num_epochs))

    def optimizer(params, cfg):
        return torch.optim.SGD(params, lr=float(rates(cfg)(0)))

    return Arm(variant, name, f"{_d2l.LABELS[name]} ({variant})", optimizer,
               lambda opt, cfg: rates(cfg), rates)


def _data_label(cfg, root) -> str:
    """The ``data`` column of an experiment's runs: the real dataset and its sizes, or the stand-in."""
    spec = cfg.spec
    return (f"{spec.title} ({spec.num_train:,} train / {spec.num_test:,} test)" if cfg.uses_real_data(root)
            else f"synthetic stand-in for {spec.title}")


def _experiment_data(cfg, root, seed, device):
    return _data_label(cfg, root), cfg.load_data(root, seed=seed, device=device)


# --------------------------------------------------------------------------- the MNIST tutorial's study


def _mnist_data(cfg, root, seed, device):
    if _data.files_present("mnist", root) or cfg.profile == "smoke" and not _data.files_present("mnist", root, ["test"]):
        return _experiment_data(cfg, root, seed, device)
    label = "MNIST test split as a proxy (8,000 train / 2,000 test, split seed 0)"
    return label, _data.load_data_mnist_test_split(cfg.batch_size, root, num_train=8000, split_seed=0, seed=seed,
                                                   max_batches=cfg.max_batches, device=device)


def _adam(params, cfg):
    return torch.optim.Adam(params, lr=0.001)


def _constant_momentum(value: float):
    """An arm's ``momentum``: the same ``value`` in every epoch (SGD's momentum, Adam's default beta1 0.9)."""
    return lambda cfg: (lambda t: value)


_ADAM_BETA1 = _constant_momentum(0.9)


_MNIST_ARMS = (
    Arm("as_written", "step", "StepLR(step_size=5, gamma=0.5), as written", _adam,
        lambda opt, cfg: _torch_sched.StepLR(opt, step_size=cfg.epochs(5), gamma=0.5),
        lambda cfg: _s.StepScheduler(step_size=cfg.epochs(5), gamma=0.5, base_lr=0.001), momentum=_ADAM_BETA1),
    Arm("as_written", "cosine", "CosineAnnealingLR(T_max=20), as written", _adam,
        lambda opt, cfg: _torch_sched.CosineAnnealingLR(opt, T_max=cfg.epochs(20)),
        lambda cfg: _s.CosineScheduler(max_update=cfg.epochs(20), base_lr=0.001, final_lr=0.0), momentum=_ADAM_BETA1),
    Arm("corrected", "cosine", "CosineAnnealingLR(T_max=10): T_max = the number of epochs", _adam,
        lambda opt, cfg: _torch_sched.CosineAnnealingLR(opt, T_max=cfg.num_epochs),
        lambda cfg: _s.CosineScheduler(max_update=cfg.num_epochs, base_lr=0.001, final_lr=0.0), momentum=_ADAM_BETA1),
    Arm("course", "constant", "constant 0.001 (the course's baseline)", _adam,
        lambda opt, cfg: None, lambda cfg: _s.ConstantScheduler(lr=0.001), momentum=_ADAM_BETA1),
)

# --------------------------------------------------------------------------- beyond the sources (d2l's setting)


def iters_per_epoch(cfg: _profiles.Experiment) -> int:
    """Updates per epoch of the experiment's training loader: what per-update schedules count in."""
    batches = math.ceil(cfg.spec.num_train / cfg.batch_size)
    return batches if cfg.max_batches is None else min(batches, cfg.max_batches)


def _per_update_arm(variant: str, name: str, label: str, make: Callable, *, epochs: Optional[int] = None,
                    momentum: bool = False) -> Arm:
    """An arm whose schedule ``make(cfg, iters)`` counts updates; plain SGD (as d2l's section trains),
    starting at the schedule's first rate.

    ``momentum``: the schedule has a ``.momentum`` schedule too (one-cycle, or :class:`_WithMomentum`), driven
    through :class:`lrlab.ScheduleLR` like torch's ``OneCycleLR`` does. ``epochs``: the budget in full-profile
    epochs (mapped to the profile), when it is not the experiment's.
    """
    def per_update(cfg):
        return make(cfg, iters_per_epoch(cfg))

    def scheduler(opt, cfg):
        sched = per_update(cfg)
        return ScheduleLR(opt, sched, momentum=sched.momentum) if momentum else sched

    def rates(cfg):
        sched, iters = per_update(cfg), iters_per_epoch(cfg)
        return lambda t: sched(t * iters)

    def momenta(cfg):  # the momentum of each epoch's last update
        sched, iters = per_update(cfg), iters_per_epoch(cfg)
        return lambda t: sched.momentum((t + 1) * iters - 1)

    return Arm(variant, name, label, lambda params, cfg: torch.optim.SGD(params, lr=float(per_update(cfg)(0))),
               scheduler, rates, step_per="update",
               num_epochs=None if epochs is None else (lambda cfg: cfg.epochs(epochs)),
               momentum=momenta if momentum else None)


def _warmup_updates(iters: int) -> int:
    """The budget study's warmup: half an epoch of updates (our choice; the same for every budget)."""
    return max(1, iters // 2)


#: The rates of the chapters beyond the sources (our choices, stated in the chapters). The peak is d2l's
#: 0.3 throughout. Schedule-free SGD runs at the rate of :data:`SCHEDULE_FREE_PROBE` that its probe
#: chose (:func:`schedule_free_lr`): the schedulefree package's README (1.4.1) calls a rate "10x-50x
#: larger than classical rates" a good start for SGD; d2l's 0.3 and 1.0 are tried.
PEAK_LR = 0.3
BUDGETS = (10, 20, 30)
#: The schedule-free probe (rows ``variant="probe"`` of ``budget.csv``): the budget study's schedule-free
#: SGD at each of these rates for :data:`PROBE_EPOCHS` epochs, seed 0; the rate with the lower final
#: training loss is the one the 30-epoch run trains at. The training loss, not a held-out score: the probe
#: asks which rate trains faster, not which generalises.
SCHEDULE_FREE_PROBE = (0.3, 1.0)
PROBE_EPOCHS = 4
PROBE_SEEDS = (0,)

#: The LR range test on d2l's setting (LeNet, Fashion-MNIST, batch 256, plain SGD; lr_find's defaults,
#: 1e-7 to 10 in 100 updates), seeds 0 to 4. The ``lr_find`` study writes each seed's suggestions to
#: :data:`RANGE_TEST_FILE` before its runs (:func:`range_test_rates` reads them) and trains at each
#: rule's median.
RANGE_TEST_SEEDS = (0, 1, 2, 3, 4)
RANGE_TEST_FILE = "range_test.csv"
_RANGE_TEST_COLUMNS = ("seed", "rule", "lr")


def range_test(cfg: _profiles.Experiment, root=None, seeds: Sequence[int] = RANGE_TEST_SEEDS, device=None):
    """:func:`lrlab.lr_find_seeds` on the experiment: one range test per seed (net, loader order), plain SGD."""
    device = torch.device("cpu") if device is None else torch.device(device)
    train_iter, _ = cfg.load_data(root, seed=0, device=device)
    return lr_find_seeds(lambda: cfg.make_model().to(device), train_iter, nn.CrossEntropyLoss(),
                         lambda params: torch.optim.SGD(params, lr=PEAK_LR), seeds, device=device)


def read_range_test(out: Path):
    """The range test's suggestions in ``out`` (one row per seed and rule: ``seed``, ``rule``, ``lr``), or None."""
    import pandas as pd

    path = Path(out) / RANGE_TEST_FILE
    if not path.exists():
        return None
    table = pd.read_csv(path)
    if tuple(table.columns) != _RANGE_TEST_COLUMNS or set(table["rule"]) != set(RULES):
        raise _results.ResultsError(f"{path} must have the columns {list(_RANGE_TEST_COLUMNS)} and a row for each "
                                    f"rule {list(RULES)} and seed; delete it and rerun `make results STUDIES=lr_find`")
    return table


def range_test_rates(out: Path) -> dict:
    """Each rule's median suggestion over the seeds of the range test in ``out`` (empty if it was not run)."""
    table = read_range_test(out)
    if table is None:
        return {}
    return {rule: float(np.median(table.loc[table["rule"] == rule, "lr"].dropna())) for rule in RULES}


def _prepare_range_test(out: Path, cfg: _profiles.Experiment, root, device, command: str) -> None:
    """Write the range test's suggestions (and their provenance, in ``lr_find.provenance.json``) if not there."""
    import json

    if read_range_test(out) is not None:
        return
    started, tick = _now(), time.perf_counter()
    print(f"lr_find: the range test over seeds {', '.join(map(str, RANGE_TEST_SEEDS))} first", flush=True)
    spread = range_test(cfg, root, device=device)
    out.mkdir(parents=True, exist_ok=True)
    _results.write_atomic(out / RANGE_TEST_FILE, spread.table().to_csv(index=False, lineterminator="\n"))
    label = _data_label(cfg, root)
    prov_path = out / "lr_find.provenance.json"
    prov = _results.read_provenance(prov_path) if prov_path.exists() else {"runs": {}}
    prov["range_test"] = _provenance(_device_text(torch.device(device)), cfg, label, started,
                                     time.perf_counter() - tick, command, None, seeds=list(RANGE_TEST_SEEDS))
    _results.write_atomic(prov_path, json.dumps(prov, indent=1) + "\n")


def _range_test_arm(rule: str, lr: float) -> Arm:
    return Arm("range_test", rule, f"constant at the {rule} rule's median suggestion ({lr:.3g})",
               lambda params, cfg: torch.optim.SGD(params, lr=lr), lambda opt, cfg: None,
               lambda cfg: _s.ConstantScheduler(lr), num_epochs=lambda cfg: cfg.epochs(10))


def _range_test_arms(out: Path) -> tuple:
    return tuple(_range_test_arm(rule, lr) for rule, lr in range_test_rates(out).items())


class _WithMomentum:
    """d2l's per-epoch schedule counted in updates (``u -> schedule(u // iters)``, the same rate all epoch),
    carrying another schedule's ``.momentum`` (per update): a cosine with one-cycle's momentum cycle."""

    def __init__(self, schedule: Callable, iters: int, momentum: Callable):
        self.schedule, self.iters, self.momentum = schedule, int(iters), momentum

    def __call__(self, u):
        return self.schedule(int(u) // self.iters)


def _one_cycle(cfg, it):
    return _s.OneCycleScheduler(total_steps=cfg.num_epochs * it, max_lr=PEAK_LR)


_CYCLE_ARMS = (
    _per_update_arm("course", "one_cycle", "one-cycle to 0.3, momentum cycled 0.95-0.85 (OneCycleLR's defaults)",
                    _one_cycle, momentum=True),
    _per_update_arm("course", "restarts", "warm restarts from 0.3 to 0.01, T_0 = 10 epochs, T_mult = 2",
                    lambda cfg, it: _s.CosineRestartsScheduler(T_0=cfg.epochs(10) * it, T_mult=2, eta_min=0.01,
                                                               base_lr=PEAK_LR)),
    # Shape and momentum separated (a 2 x 2 with the two above and d2l's plain cosine, same seeds):
    _per_update_arm("course", "one_cycle_no_momentum", "one-cycle to 0.3, plain SGD (momentum 0, not cycled)",
                    _one_cycle),
    _per_update_arm("course", "cosine_cycled_momentum",
                    "d2l's cosine (0.3 to 0.01 over 20 epochs, per epoch) with one-cycle's momentum cycle",
                    lambda cfg, it: _WithMomentum(_d2l_corrected(cfg)["cosine"], it, _one_cycle(cfg, it).momentum),
                    momentum=True),
)


def _budget_arm(kind: str, budget: int) -> Arm:
    if kind == "wsd":
        def make(cfg, it):
            return _s.WSDScheduler(max_update=cfg.epochs(budget) * it, base_lr=PEAK_LR, final_lr=0.0,
                                   warmup_steps=_warmup_updates(it), decay_fraction=0.2, decay_shape="1-sqrt")
        label = f"warmup-stable-decay, {budget} epochs (1-sqrt decay over the last 20%)"
    else:
        def make(cfg, it):
            return _s.CosineScheduler(max_update=cfg.epochs(budget) * it, base_lr=PEAK_LR, final_lr=0.0,
                                      warmup_steps=_warmup_updates(it))
        label = f"cosine tuned to {budget} epochs"
    return _per_update_arm("budget", f"{kind}_{budget}", label, make, epochs=budget)


def _schedule_free(lr: float):
    def optimizer(params, cfg):
        try:
            import schedulefree  # the maintained package of Defazio et al. (2024)
        except ImportError as err:
            raise ImportError("the budget study's schedule-free runs need the schedulefree package: "
                              "pip install schedulefree (or lrlab[book])") from err
        return schedulefree.SGDScheduleFree(params, lr=lr, momentum=0.9,
                                            warmup_steps=_warmup_updates(iters_per_epoch(cfg)))
    return optimizer


def _schedule_free_arm(variant: str, schedule: str, lr: float, label: str, **kwargs) -> Arm:
    return Arm(variant, schedule, label, _schedule_free(lr), lambda opt, cfg: None,
               lambda cfg: _s.ConstantScheduler(lr), momentum=_constant_momentum(0.9), **kwargs)


def _finished_runs(out: Path, study: str, arms: Sequence[Arm], default_seeds: Sequence[int]):
    """The final-epoch rows of ``arms`` in ``out``'s table, or None unless every one of their runs has finished
    (a run's provenance entry is written when it ends)."""
    table, prov = Path(out) / f"{study}.csv", Path(out) / f"{study}.provenance.json"
    if not (table.exists() and prov.exists()):
        return None
    done = _results.read_provenance(prov)["runs"]
    ids = [RunSpec(study, a.variant, a.schedule, seed).id for a in arms for seed in (a.seeds or default_seeds)]
    if not all(i in done for i in ids):
        return None
    last = _results.final_epoch(_results.read_table(table))
    keys = {(a.variant, a.schedule) for a in arms}
    return last[[k in keys for k in zip(last["variant"], last["schedule"])]]


_PROBE_ARMS = tuple(_schedule_free_arm("probe", f"schedule_free@{lr:g}", lr,
                                       f"schedule-free SGD at {lr:g}, {PROBE_EPOCHS}-epoch probe",
                                       seeds=PROBE_SEEDS, num_epochs=lambda cfg: cfg.epochs(PROBE_EPOCHS))
                    for lr in SCHEDULE_FREE_PROBE)


def schedule_free_lr(out: Path) -> Optional[float]:
    """The rate of :data:`SCHEDULE_FREE_PROBE` whose probe runs in ``out`` end with the lower mean training
    loss (None until they have all finished)."""
    last = _finished_runs(out, "budget", _PROBE_ARMS, PROBE_SEEDS)
    if last is None:
        return None
    loss = last.groupby("schedule")["train_loss"].mean()
    return min(SCHEDULE_FREE_PROBE, key=lambda lr: loss[f"schedule_free@{lr:g}"])


def _budget_later(out: Path) -> tuple:
    lr = schedule_free_lr(out)
    if lr is None:
        return ()
    return (_schedule_free_arm("budget", "schedule_free", lr,
                               f"schedule-free SGD at {lr:g} (the probe's choice; one run, read at every epoch)"),)


_BUDGET_ARMS = tuple(_budget_arm(kind, b) for kind in ("wsd", "cosine") for b in BUDGETS) + _PROBE_ARMS

# --------------------------------------------------------------------------- each of d2l's shapes at its own peak

#: The ``tuned`` study: each of d2l's five shapes at a peak chosen for it, as the Deep Learning Tuning
#: Playbook (Godbole et al., 2023) asks before shapes are compared. A shape at peak ``p`` is d2l's schedule
#: with every rate multiplied by ``p / d2l's peak`` (our choice: the cosines' floor 0.01 scales with it).
#: The search trains every shape at every peak of :data:`TUNED_PEAKS` (log-spaced, a factor 2 apart,
#: d2l's 0.3 in the middle) on the training set less :data:`VALIDATION_SIZE` held-out examples, seeds
#: :data:`TUNED_SEARCH_SEEDS` (not among the final seeds); each shape's peak is the one with the best
#: mean final-epoch validation accuracy (:func:`tuned_peaks`); the test set is never looked at. Then each
#: shape trains at its peak on the whole training set, seeds 0 to 2 (``variant="final"``).
TUNED_PEAKS = (0.075, 0.15, 0.3, 0.6, 1.2)
TUNED_SEARCH_SEEDS = (10,)
VALIDATION_SIZE = 5000
VALIDATION_SPLIT_SEED = 0
_D2L_PEAKS = {"constant": 0.3, "square_root": 0.1, "multi_step": 0.5, "cosine": 0.3, "cosine_warmup": 0.3}


def tuned_schedule(shape: str, peak: float, cfg: _profiles.Experiment):
    """d2l's ``shape`` (one of :data:`lrlab.d2l_section.RUNS`, as the text describes it) scaled to ``peak``."""
    e, scale = cfg.epochs, peak / _D2L_PEAKS[shape]
    if shape == "constant":
        return _s.ConstantScheduler(lr=peak)
    if shape == "square_root":
        return _s.SquareRootScheduler(lr=peak)
    if shape == "multi_step":
        return _s.MultiFactorScheduler(steps=[e(15), e(30)], factor=0.5, base_lr=peak)
    warmup = e(5) if shape == "cosine_warmup" else 0
    return _s.CosineScheduler(max_update=e(20), base_lr=peak, final_lr=0.01 * scale, warmup_steps=warmup)


def _tuned_arm(variant: str, shape: str, peak: float, **kwargs) -> Arm:
    def rates(cfg):
        return tuned_schedule(shape, peak, cfg)

    what = "search on a validation split" if variant == "search" else "the search's choice, on the whole training set"
    return Arm(variant, f"{shape}@{peak:g}", f"{_d2l.LABELS[shape]} at peak {peak:g} ({what})",
               lambda params, cfg: torch.optim.SGD(params, lr=float(rates(cfg)(0))), lambda opt, cfg: rates(cfg),
               rates, **kwargs)


_TUNED_SEARCH = tuple(_tuned_arm("search", shape, peak, seeds=TUNED_SEARCH_SEEDS, holdout=True)
                      for shape in _d2l.RUNS for peak in TUNED_PEAKS)


def tuned_peaks(out: Path) -> Optional[dict]:
    """Each shape's peak: the best mean final-epoch ``val_acc`` of its search runs in ``out`` (the smaller peak
    on a tie); None until every search run has finished."""
    last = _finished_runs(out, "tuned", _TUNED_SEARCH, TUNED_SEARCH_SEEDS)
    if last is None:
        return None
    acc = last.groupby("schedule")["val_acc"].mean()
    return {shape: max(TUNED_PEAKS, key=lambda p: (acc[f"{shape}@{p:g}"], -p)) for shape in _d2l.RUNS}


def _tuned_later(out: Path) -> tuple:
    peaks = tuned_peaks(out)
    return () if peaks is None else tuple(_tuned_arm("final", shape, peak) for shape, peak in peaks.items())


#: The large-batch study (Goyal et al., 2017, on d2l's setting): global batches (k = 4, 16, 32 times
#: d2l's 256), each at d2l's 0.3 unscaled, linearly scaled (0.3 k), and linearly scaled after a
#: gradual warmup from 0.3 (Goyal et al.'s recipe); and batch 256 at 0.3, the reference. Our choices:
#: 10 epochs (CPU time; Goyal et al. train 90 on ImageNet), a warmup of 2 of them (theirs: 5 of 90),
#: a constant rate after it (theirs: steps down by 10 at epochs 30, 60, 80), 2 processes (this
#: machine's cores), plain SGD as d2l. The same batches and rules in Goyal et al.'s own regime
#: (schedules ``goyal_*``): base rate 0.1 at 256, momentum 0.9, a warmup of 5 epochs (theirs), starting
#: at the unscaled 0.1; still 10 epochs, constant after the warmup, no weight decay (theirs: 1e-4).
LARGE_BATCHES = (1024, 4096, 8192)
LARGE_BATCH_EPOCHS = 10
DDP_PROCESSES = 2


@dataclass(frozen=True)
class _Regime:
    """One large-batch regime: the rate at 256, SGD's momentum, the warmup's length, the schedules' prefix."""

    base_lr: float
    momentum: float
    warmup_epochs: int
    prefix: str


_D2L_REGIME = _Regime(PEAK_LR, 0.0, 2, "")
_GOYAL_REGIME = _Regime(0.1, 0.9, 5, "goyal_")
LARGE_BATCH_WARMUP_EPOCHS = _D2L_REGIME.warmup_epochs


def _not_in_process(*args):
    raise RuntimeError("a data-parallel arm is trained under torchrun (lrlab.runner.run launches it), not in process")


def _large_batch_arm(global_batch: int, scale: str, warmup: bool, regime: _Regime = _D2L_REGIME) -> Arm:
    from .distributed import linear_scaled_lr, warmup_updates

    base = regime.base_lr

    def updates(cfg):  # per epoch: the partial last global batch is dropped (lrlab.distributed.ShardedLoader)
        steps = cfg.spec.num_train // global_batch
        return steps if cfg.max_batches is None else min(steps, cfg.max_batches)

    def warmup_epochs(cfg):
        return cfg.epochs(regime.warmup_epochs) if warmup else 0

    def schedule(cfg):
        peak = linear_scaled_lr(base, global_batch, cfg.batch_size) if scale == "linear" else base
        w = warmup_updates(warmup_epochs(cfg), global_batch, updates(cfg) * global_batch)
        return _s.LinearWarmup(_s.ConstantScheduler(peak), w, base) if w else _s.ConstantScheduler(peak)

    def rates(cfg):
        sched, per_epoch = schedule(cfg), updates(cfg)
        return lambda t: sched(t * per_epoch)

    def ddp(cfg):
        argv = ["--global-batch", global_batch, "--scale", scale, "--base-lr", base,
                "--warmup-epochs", warmup_epochs(cfg), "--warmup-begin-lr", base]
        return argv + (["--momentum", regime.momentum] if regime.momentum else [])

    name = {("none", False): "unscaled", ("linear", False): "linear", ("linear", True): "linear_warmup"}[scale, warmup]
    label = {"unscaled": f"{base:g}, not scaled", "linear": f"linear scaling: {base:g} x {global_batch}/256",
             "linear_warmup": f"linear scaling after a {regime.warmup_epochs}-epoch warmup from {base:g}"}[name]
    if regime.momentum:
        label += f", momentum {regime.momentum:g}"
    return Arm(f"global{global_batch}", regime.prefix + name, f"global batch {global_batch}, {label}",
               _not_in_process, _not_in_process, rates, step_per="update",
               num_epochs=lambda cfg: cfg.epochs(LARGE_BATCH_EPOCHS), ddp=ddp,
               momentum=_constant_momentum(regime.momentum))


_LARGE_BATCH_ARMS = tuple(
    arm for regime in (_D2L_REGIME, _GOYAL_REGIME)
    for arm in (_large_batch_arm(256, "none", False, regime),) + tuple(
        _large_batch_arm(b, scale, warmup, regime) for b in LARGE_BATCHES
        for scale, warmup in (("none", False), ("linear", False), ("linear", True))))

STUDIES = {
    "d2l": Study(
        "d2l", "d2l",
        tuple(_d2l_arm(v, n) for v in ("corrected", "published") for n in _d2l.RUNS),
        (0, 1, 2, 3, 4),
        "d2l's five schedules on LeNet / Fashion-MNIST, as the text describes them and as the code ran them",
        _experiment_data,
    ),
    "mnist_cnn": Study(
        "mnist_cnn", "mnist_cnn", _MNIST_ARMS, (42, 43, 44, 45, 46),
        "the MNIST tutorial's ImprovedCNN with Adam under StepLR and CosineAnnealingLR",
        _mnist_data,
    ),
    "lr_find": Study(
        "lr_find", "d2l", (), (0, 1, 2),
        "constant rates at the LR range test's suggestions, 10 epochs of d2l's setting (against d2l's 0.3)",
        _experiment_data, later=_range_test_arms, prepare=_prepare_range_test,
    ),
    "cycles": Study(
        "cycles", "d2l", _CYCLE_ARMS, (0, 1, 2),
        "one-cycle and warm restarts on d2l's LeNet / Fashion-MNIST, 30 epochs (against d2l's cosine, same seeds)",
        _experiment_data,
    ),
    "budget": Study(
        "budget", "d2l", _BUDGET_ARMS, (0, 1, 2),
        "warmup-stable-decay and cosine at budgets of 10, 20 and 30 epochs, and schedule-free SGD, on d2l's setting",
        _experiment_data, later=_budget_later,
    ),
    "large_batch": Study(
        "large_batch", "d2l", _LARGE_BATCH_ARMS, (0, 1, 2),
        "data-parallel SGD (DDP, 2 processes under torchrun) at global batches 256 to 8192, with and without "
        "the linear scaling rule and warmup, 10 epochs of d2l's setting",
        _experiment_data,
    ),
    "tuned": Study(
        "tuned", "d2l", _TUNED_SEARCH, (0, 1, 2),
        "each of d2l's five shapes at its own peak, chosen on a validation split, then trained on the whole set",
        _experiment_data, later=_tuned_later,
    ),
}


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RunSpec:
    study: str
    variant: str
    schedule: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.study}.{self.variant}.{self.schedule}.seed{self.seed}"


def plan(studies: Sequence[str], seeds: Optional[Sequence[int]] = None, out: Optional[Path] = None) -> list:
    """The runs of ``studies`` (every arm, each seed), in order; checks the names and seeds.

    Arms with seeds of their own (a search, a probe) come first, at their seeds; then every seed of the
    study (or ``seeds``) with its other arms. With ``out``, the arms that the results in ``out`` already
    decide are planned too (:attr:`Study.later`); without it, only the fixed ones.
    """
    unknown = [s for s in studies if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown study {unknown[0]!r}; the studies are {', '.join(STUDIES)}")
    if seeds is not None:
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(f"seeds must be ints >= 0; got {s!r}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must not repeat; got {list(seeds)}")
    runs = []
    for name in studies:
        study = STUDIES[name]
        arms = study.arms if out is None else study.arms_in(out)
        runs += [RunSpec(name, arm.variant, arm.schedule, seed) for arm in arms if arm.seeds for seed in arm.seeds]
        runs += [RunSpec(name, arm.variant, arm.schedule, seed)
                 for seed in (study.seeds if seeds is None else seeds) for arm in arms if not arm.seeds]
    return runs


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@functools.lru_cache(maxsize=1)
def _git_commit() -> str:
    """The checkout's commit when first asked (the runner asks at its start: the code it runs), with
    ``+uncommitted`` when the package or its requirements differ from it (results files do not count)."""
    repo = Path(__file__).resolve().parents[1]

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--", "lrlab", "pyproject.toml", "requirements.txt")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+uncommitted" if changed else "")) if commit else "unknown"


@functools.lru_cache(maxsize=1)
def cpu_id() -> str:
    """The processor, finer than its model name (clouds report "AMD EPYC" for several generations): vendor,
    family, model and stepping from ``/proc/cpuinfo``, and the vector instructions torch's kernels use.
    Runs repeat bit for bit only where this and the torch version are the same."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "cpu family", "model", "stepping") and key not in fields:
                fields[key] = value.strip()
    except OSError:
        pass
    where = (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model {fields.get('model', '?')} "
             f"stepping {fields.get('stepping', '?')}") if fields else (platform.processor() or platform.machine())
    return f"{where}, {torch.backends.cpu.get_cpu_capability()}"


def _device_text(device: torch.device, threads: bool = True) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{device.type} ({cpu}; {os.cpu_count()} cores" + (f", {torch.get_num_threads()} torch threads)"
                                                              if threads else ")")


def _validation_size(train_iter) -> int:
    """:data:`VALIDATION_SIZE` held-out examples, or one in twelve of a smaller (smoke) training set."""
    n = train_iter.X.shape[0]
    return VALIDATION_SIZE if n > 2 * VALIDATION_SIZE else max(1, n // 12)


def arm_data_label(arm: Arm, label: str) -> str:
    """The ``data`` column of ``arm``'s runs: the study's data, and what a search held out of it."""
    if not arm.holdout:
        return label
    return f"{label}; {VALIDATION_SIZE:,} training examples held out for validation (split seed {VALIDATION_SPLIT_SEED})"


def _config(cfg: _profiles.Experiment, data_label: str, device: torch.device) -> dict:
    """What a checkpoint must match to be resumed."""
    return {"profile": cfg.profile, "num_epochs": cfg.num_epochs, "batch_size": cfg.batch_size,
            "max_batches": cfg.max_batches, "data": data_label, "device": device.type}


def _scores(row: dict) -> str:
    """``test acc 0.8812``, or the validation accuracy of a run that does not look at the test set."""
    return f"val acc {row['val_acc']:.4f}" if math.isnan(row["test_acc"]) and not math.isnan(row["val_acc"]) \
        else f"test acc {row['test_acc']:.4f}"


def _print_epoch(spec: RunSpec, row: dict, num_epochs: int) -> None:
    print(f"{spec.id}: epoch {row['epoch'] + 1}/{num_epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  "
          f"{_scores(row)}  {row['seconds']:.1f} s", flush=True)


def checkpoint_path(out: Path, spec: RunSpec) -> Path:
    """Where an unfinished run keeps its state: ``<out>/.runs/<run id>.pt``."""
    return Path(out) / ".runs" / f"{spec.id}.pt"


def run(spec: RunSpec, out: Path, cfg: _profiles.Experiment, *, root=None, device=None, command: str = "",
        on_epoch: Optional[Callable[[RunSpec, dict, int], None]] = _print_epoch, stop_after: Optional[int] = None,
        loaded: Optional[tuple] = None) -> list:
    """Train one run to its end (resuming from its checkpoint), add its rows to the table; return them.

    ``on_epoch(spec, row, num_epochs)`` is called after every epoch (default: print a line).
    ``stop_after``: stop (leaving the checkpoint) once this many epochs are done in total, as an
    interrupted run would (for tests). ``loaded``: ``(data_label, (train_iter, test_iter))`` already
    loaded for this study (the runner loads each study's data once); the run shuffles with its own seed.
    """
    study = STUDIES[spec.study]
    arm = study.arm(spec.variant, spec.schedule, out)
    device = try_gpu() if device is None else torch.device(device)
    label, (train_iter, test_iter) = loaded or study.data(cfg, root, spec.seed, device)
    label = arm_data_label(arm, label)
    if arm.ddp is not None:
        return _run_ddp(spec, Path(out), cfg, arm, label, root=root, device=device, command=command,
                        echo=on_epoch is not None)
    # A fresh loader over the same tensors: its shuffling starts from the run's seed, whatever ran before.
    train_iter = _data.TensorLoader(train_iter.X, train_iter.y, train_iter.batch_size, shuffle=True,
                                    seed=spec.seed, max_batches=train_iter.max_batches,
                                    transform=train_iter.transform)
    valid_iter = None
    if arm.holdout:  # a search: choose on held-out training examples, never on the test set
        train_iter, valid_iter = _data.validation_split(train_iter, _validation_size(train_iter),
                                                        seed=VALIDATION_SPLIT_SEED)
        test_iter = None
    config = _config(cfg, label, device)
    out = Path(out)
    checkpoint = checkpoint_path(out, spec)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(spec.seed)
    net = cfg.make_model().to(device)
    optimizer = arm.optimizer(net.parameters(), cfg)
    scheduler = arm.scheduler(optimizer, cfg)
    rows, start, wall, sessions, started = [], 0, 0.0, 0, _now()
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        if state["config"] != config:
            raise RuntimeError(f"{checkpoint} was saved for another configuration ({state['config']}, now {config}); "
                               f"delete it to start that run over")
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        if isinstance(scheduler, _torch_sched.LRScheduler):
            scheduler.load_state_dict(state["scheduler"])
        train_iter.load_state_dict(state["loader"])
        _set_rng_state(state["rng"], device)
        rows, start, wall, sessions, started = (state["rows"], state["epoch"], state["wall_seconds"],
                                                state["sessions"], state["started"])
        if on_epoch is not None:
            print(f"{spec.id}: resuming after epoch {start} of {arm.epochs(cfg)}", flush=True)
    sessions += 1
    loss = nn.CrossEntropyLoss()
    stopped = None
    num_epochs = arm.epochs(cfg)
    for epoch in range(start, num_epochs):
        if stop_after is not None and epoch >= stop_after:
            return rows
        tick = time.perf_counter()
        h = train(net, train_iter, test_iter, epoch + 1, loss, optimizer, device, scheduler, live=False,
                  start_epoch=epoch, step_per=arm.step_per, valid_iter=valid_iter)
        rows.append({"experiment": study.name, "variant": spec.variant, "schedule": spec.schedule,
                     "seed": spec.seed, "epoch": epoch, "lr": h.lr[0], "momentum": h.momentum[0],
                     "train_loss": h.train_loss[0], "train_acc": h.train_acc[0], "val_loss": h.valid_loss[0],
                     "val_acc": h.valid_acc[0], "test_loss": h.test_loss[0], "test_acc": h.test_acc[0],
                     "seconds": h.seconds[0], "weight_norm": weight_norm(net), "data": label})
        wall += time.perf_counter() - tick
        stopped = h.stopped
        _atomic_save({"config": config, "epoch": epoch + 1, "rows": rows, "net": net.state_dict(),
                      "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict() if isinstance(scheduler, _torch_sched.LRScheduler) else {},
                      "loader": train_iter.state_dict(), "rng": _rng_state(device), "wall_seconds": wall,
                      "sessions": sessions, "started": started}, checkpoint)
        if on_epoch is not None:
            on_epoch(spec, rows[-1], num_epochs)
        if stopped:
            break
    _record(out, study.name, rows, {spec.id: _provenance(_device_text(device), cfg, label, started, wall, command,
                                                         stopped, sessions=sessions)})
    checkpoint.unlink()
    return rows


def _run_ddp(spec: RunSpec, out: Path, cfg: _profiles.Experiment, arm: Arm, label: str, *, root, device,
             command: str, echo: bool) -> list:
    """A data-parallel arm: ``python -m lrlab.distributed`` under torchrun (:func:`lrlab.distributed.launch`),
    which checkpoints after every epoch and resumes from it; its rows (rank 0's CSV) go into the table."""
    from .distributed import launch

    checkpoint = checkpoint_path(out, spec)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    csv = checkpoint.with_suffix(".csv")
    num_epochs = arm.epochs(cfg)
    # nccl needs a GPU per process; with fewer GPUs than processes the processes train on the CPU (gloo)
    backend = "nccl" if device.type == "cuda" and torch.cuda.device_count() >= DDP_PROCESSES else "gloo"
    device = device if backend == "nccl" else torch.device("cpu")
    argv = [*arm.ddp(cfg), "--seed", spec.seed, "--profile", cfg.profile, "--epochs", num_epochs,
            "--checkpoint", checkpoint, "--out", csv, "--backend", backend]
    if cfg.max_batches is not None:
        argv += ["--max-batches", cfg.max_batches]
    if root is not None:
        argv += ["--root", root]
    resumed, started = checkpoint.exists(), _now()
    launch(argv, DDP_PROCESSES, echo=echo)
    frame = _results.read_table(csv)
    frame = frame.assign(experiment=STUDIES[spec.study].name, variant=spec.variant, schedule=spec.schedule,
                         seed=spec.seed, data=label)
    rows = frame.to_dict("records")
    stopped = None  # train_ddp ends a run early only after an epoch whose training loss is not finite
    if not math.isfinite(rows[-1]["train_loss"]):
        stopped = f"non-finite training loss in epoch {len(rows)} of {num_epochs}; training stopped there"
    device_text = f"{_device_text(device, threads=False)}, {DDP_PROCESSES} processes ({backend}) under torchrun"
    _record(out, spec.study, rows, {spec.id: _provenance(device_text, cfg, label, started,
                                                         sum(r["seconds"] for r in rows), command, stopped,
                                                         resumed=resumed)})
    checkpoint.unlink(missing_ok=True)
    csv.unlink()
    return rows


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _provenance(device_text: str, cfg: _profiles.Experiment, label: str, started: str, wall_seconds: float,
                command: str, stopped: Optional[str], **extra) -> dict:
    """One finished run's provenance entry (``extra``: how it ran, e.g. its sessions), finished now."""
    return {"device": device_text, "cpu": cpu_id(), "python": platform.python_version(), "torch": torch.__version__,
            "lrlab": __version__, "git": _git_commit(), "profile": cfg.profile, "data": label, "started": started,
            "finished": _now(), "wall_seconds": round(float(wall_seconds), 2), **extra, "command": command,
            "stopped": stopped}


def _record(out: Path, name: str, rows: list, provenance: dict) -> None:
    """Add one finished run's rows and provenance to the study's files (table first, both atomic)."""
    import json
    import pandas as pd

    table, prov_path = out / f"{name}.csv", out / f"{name}.provenance.json"
    new = pd.DataFrame(rows, columns=list(_results.COLUMNS))
    if table.exists():
        old = _results.read_table(table)
        key = list(_results.RUN_KEY) + ["data"]
        same = old.set_index(key).index.isin(new.set_index(key).index.unique())
        new = pd.concat([old[~same], new], ignore_index=True)
    _results.write_table(table, new)
    prov = _results.read_provenance(prov_path) if prov_path.exists() else {"runs": {}}
    prov["runs"].update(provenance)
    prov["runs"] = dict(sorted(prov["runs"].items()))
    _results.write_atomic(prov_path, json.dumps(prov, indent=1, sort_keys=False) + "\n")


def finished(out: Path, spec: RunSpec, cfg: _profiles.Experiment, data_label: str) -> bool:
    """True when the table already holds this run (all epochs, or up to where it stopped)."""
    table = Path(out) / f"{spec.study}.csv"
    if not table.exists():
        return False
    arm = STUDIES[spec.study].arm(spec.variant, spec.schedule, out)
    frame = _results.read_table(table)
    mine = frame[(frame.variant == spec.variant) & (frame.schedule == spec.schedule) & (frame.seed == spec.seed)
                 & (frame.data == arm_data_label(arm, data_label))].sort_values("epoch")
    if mine.empty:
        return False
    if not math.isclose(float(mine["lr"].iloc[0]), float(arm.rates(cfg)(0)), rel_tol=1e-12, abs_tol=0.0):
        return False  # trained at another rate (its input, e.g. the range test, has changed): train it again
    if len(mine) == arm.epochs(cfg):
        return True
    prov = _results.read_provenance(table.with_name(f"{spec.study}.provenance.json"))["runs"].get(spec.id, {})
    return bool(prov.get("stopped"))


# --------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lrlab.runner",
        description="Train the course's reference runs and write their tables under book/results/. "
                    "Safe to stop: run it again to resume.")
    p.add_argument("studies", nargs="*", default=list(STUDIES), metavar="STUDY",
                   help=f"studies to run (default: all): {', '.join(STUDIES)}")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds (default: each study's own: d2l 0 to 4, mnist_cnn 42 to 46)")
    p.add_argument("--out", default=None, help="where the tables go (default: book/results in the full profile)")
    p.add_argument("--root", default=None, help="the datasets' folder (default: $LRLAB_DATA, else ~/.cache/lrlab)")
    p.add_argument("--profile", default=None, choices=_profiles.PROFILES,
                   help="run profile (default: $LRLAB_PROFILE, else full)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: lrlab.try_gpu())")
    p.add_argument("--list", action="store_true", help="list the runs and whether they are done, then stop")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    profile = args.profile or _profiles.get_profile()
    if args.out is None:
        if profile != "full":
            raise SystemExit(f"error: --out is required in the {profile!r} profile: book/results holds only "
                             f"full-profile reference results")
        out = Path(__file__).resolve().parents[1] / "book" / "results"
    else:
        out = Path(args.out)
    try:
        plan(args.studies, args.seeds)  # checks the names and seeds
        device = try_gpu() if args.device is None else torch.device(args.device)
    except (ValueError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    command = "python -m lrlab.runner " + " ".join(argv if argv is not None else sys.argv[1:])
    _git_commit()  # the code this process runs, before anyone edits the checkout
    # Load each study's data once, before any training: a missing file fails here, not after an hour.
    loaded, cfgs = {}, {}
    for name in dict.fromkeys(args.studies):
        cfgs[name] = _profiles.experiment(STUDIES[name].experiment, profile)
        try:
            loaded[name] = STUDIES[name].data(cfgs[name], args.root, 0, device)
        except (_data.MissingDataError, _data.CorruptDataError) as err:
            raise SystemExit(f"error: {err}") from None
    if args.list:
        for r in plan(args.studies, args.seeds, out):
            print(f"{'done   ' if finished(out, r, cfgs[r.study], loaded[r.study][0]) else 'to do  '} {r.id}")
        waiting = [n for n in cfgs if STUDIES[n].later is not None and not STUDIES[n].later(out)]
        if waiting:
            print(f"and the runs that {', '.join(waiting)} plan once the results they read are there")
        return 0
    for name, cfg in cfgs.items():
        if STUDIES[name].prepare is not None:
            STUDIES[name].prepare(out, cfg, args.root, device, command)
    # Rounds: the runs planned now; then those that their results decide (a search's choice), until none is left.
    previous = None
    while True:
        runs = plan(args.studies, args.seeds, out)
        todo = [r for r in runs if not finished(out, r, cfgs[r.study], loaded[r.study][0])]
        if not todo:
            break
        if todo == previous:
            raise SystemExit(f"error: these runs did not finish: {', '.join(r.id for r in todo)}")
        previous = todo
        _run_round(todo, len(runs), out, cfgs, loaded, args.root, device, command)
    print(f"all {len(runs)} runs are in {out}", flush=True)
    return 0


def _run_round(todo: list, planned: int, out: Path, cfgs: dict, loaded: dict, root, device, command: str) -> None:
    """Train ``todo`` (of ``planned`` runs), printing each epoch with an estimate of the time left."""
    print(f"{planned - len(todo)} of {planned} runs already done; {len(todo)} to go, into {out} "
          f"on {_device_text(device)}", flush=True)
    # Time left: each study's mean seconds per epoch so far, times its epochs still to train.
    epoch_seconds: dict = {}
    remaining = {name: 0 for name in cfgs}
    for r in todo:
        saved = checkpoint_path(out, r)
        done_epochs = torch.load(saved, weights_only=True)["epoch"] if saved.exists() else 0
        remaining[r.study] += STUDIES[r.study].arm(r.variant, r.schedule, out).epochs(cfgs[r.study]) - done_epochs
    begin = time.perf_counter()

    def report(spec, row, num_epochs):
        epoch_seconds.setdefault(spec.study, []).append(row["seconds"])
        remaining[spec.study] -= 1
        known = [s for v in epoch_seconds.values() for s in v]
        mean = {k: sum(v) / len(v) for k, v in epoch_seconds.items()}
        left = sum(n * mean.get(k, sum(known) / len(known)) for k, n in remaining.items())
        print(f"[run {todo.index(spec) + 1}/{len(todo)}] {spec.id}: epoch {row['epoch'] + 1}/{num_epochs}  "
              f"lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  {_scores(row)}  "
              f"{row['seconds']:.1f} s  | {(time.perf_counter() - begin) / 60:.1f} min so far, "
              f"~{left / 60:.0f} min left", flush=True)

    for r in todo:
        run(r, out, cfgs[r.study], root=root, device=device, command=command, on_epoch=report, loaded=loaded[r.study])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
