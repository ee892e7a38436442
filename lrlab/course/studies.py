"""What every reference run of the course is, as data: the studies, their arms, their seeds.

Each :class:`Arm` declares once what its runs are: the learning-rate schedule (a pure function of the
step, built for the run's :class:`Budget`), the optimizer and its momentum, whether a torch scheduler of
a source drives it instead, how the schedule is stepped, how many epochs, on how many processes. The
runner (:mod:`lrlab.course.runner`) builds every run from that, and the tests check the committed tables
against the same declaration (every epoch's ``lr`` and ``momentum``).

``d2l``
    The five runs of d2l's "Learning Rate Scheduling" section (LeNet, Fashion-MNIST, batch 256, SGD,
    30 epochs), each in two variants: ``corrected`` (the schedule the text describes) and
    ``published`` (the rates d2l's code really trained at, from
    :func:`lrlab.sources.d2l_section.published_rates`). Seeds 0 to 4.
``mnist_cnn``
    The MNIST tutorial's setup (``ImprovedCNN``, batch 64, Adam 1e-3, 10 epochs): ``StepLR(5, 0.5)``
    and ``CosineAnnealingLR(T_max=20)`` as written, the cosine corrected to ``T_max=10`` (the number
    of epochs), and a constant rate (the course's baseline). Seeds 42 (the tutorial's) to 46. On the
    real MNIST splits when they are on disk, else on the MNIST test split cut 8,000 / 2,000
    (:func:`lrlab.data.load_data_mnist_test_split`), which the ``data`` column says.
``lr_find``
    Beyond the sources: the LR range test over seeds 0 to 4 (its suggestions written to
    ``range_test.csv`` first), then constant-rate runs of 10 epochs in d2l's setting at each rule's
    median suggestion, seeds 0 to 2, to compare with d2l's constant 0.3 after 10 epochs.
``cycles``
    In d2l's setting, 30 epochs, seeds 0 to 2, stepped per update: one-cycle to 0.3 with torch's momentum
    cycling, warm restarts (SGDR, cycles of 10 and 20 epochs), and, to separate the shape from the
    momentum, one-cycle without momentum and d2l's cosine with one-cycle's momentum cycle.
``budget``
    Warmup-stable-decay and a cosine, each for budgets of 10, 20 and 30 epochs (per update, half an
    epoch of warmup, peak 0.3, down to 0), and schedule-free SGD for 30 epochs at the rate its 4-epoch
    probe chose (0.3 or 1.0, seed 0, rows ``variant="probe"``), seeds 0 to 2.
``large_batch``
    Data-parallel SGD on 2 processes under torchrun (:mod:`lrlab.course.ddp`) in d2l's setting for 10
    epochs at global batches 256 to 8192: unscaled, linearly scaled, and scaled after a warmup, from
    d2l's 0.3 (plain SGD) and in Goyal et al.'s regime (0.1, momentum 0.9, 5-epoch warmup), seeds 0 to 2.
``tuned``
    Each of d2l's five shapes at its own peak: a search over five peaks on a validation split held out
    of the training set (seed 10), then each shape's chosen peak on the whole training set, seeds 0 to 2.
``averaging``
    Weight averaging in the budget study's setting (d2l's, 30 epochs, per update, half an epoch of warmup to
    0.3): a constant rate without averaging, the same with an exponential moving average of the weights
    (torch's default decay 0.999), the same with stochastic weight averaging from epoch 20 (torch's ``SWALR``
    to 0.05 over 2 epochs, an equal average after every epoch), the same rates without the average, and the
    budget study's 30-epoch cosine and warmup-stable-decay, trained again here beside them, seeds 0 to 2.
``warmup``
    The warmup tutorial's claim on a labelled proxy (LeNet, Fashion-MNIST, the tutorial's optimizer and
    schedule cut to 30 epochs): with its warmup and without, seeds 0 to 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler as _torch_sched

from .. import data as _data
from .. import schedules as _s
from ..lr_find import RULES, lr_find_seeds
from ..lr_scheduler import ScheduleLR
from ..sources import d2l_section as _d2l
from . import profiles as _profiles
from . import provenance
from . import results as _results
from .ddp import DDPRun

__all__ = ["Budget", "Arm", "Study", "STUDIES", "RunSpec", "plan", "d2l_schedule", "range_test", "range_test_rates",
           "read_range_test", "write_range_test", "schedule_free_lr", "tuned_peaks", "PEAK_LR", "TUNED_PEAKS", "VALIDATION_SIZE",
           "RANGE_TEST_FILE", "RANGE_TEST_SEEDS", "DDP_PROCESSES"]

#: The peak of the chapters beyond the sources: d2l's 0.3 (our choice, stated in the chapters).
PEAK_LR = 0.3


@dataclass(frozen=True)
class Budget:
    """What a run's schedule is built for: the experiment in its profile, and the updates per epoch of
    the run's training loader (what a per-update schedule counts in)."""

    cfg: _profiles.Experiment
    iters: int
    num_train: int

    def epochs(self, n: int) -> int:
        """An epoch count of the full profile in this profile (:meth:`lrlab.course.Experiment.epochs`)."""
        return self.cfg.epochs(n)

    @classmethod
    def of(cls, cfg: _profiles.Experiment) -> "Budget":
        """The budget of the experiment's real training set (as the reference runs trained)."""
        n = cfg.spec.num_train
        batches = math.ceil(n / cfg.batch_size)
        return cls(cfg, batches if cfg.max_batches is None else min(batches, cfg.max_batches), n)


OPTIMIZERS = ("sgd", "adam", "schedule_free_sgd")


@dataclass(frozen=True)
class Arm:
    """One (variant, schedule) of a study: what its runs are.

    ``lr(budget)``: the learning rate as a pure schedule ``t -> lr``, ``t`` counting what ``step_per``
    says (epochs or updates); the optimizer starts at ``lr(budget)(0)``. ``optimizer``: ``"sgd"``,
    ``"adam"`` (torch's defaults) or ``"schedule_free_sgd"`` (Defazio et al.: the rate is the optimizer's,
    with its own warmup of half an epoch; no schedule is passed). ``momentum`` and ``weight_decay``: SGD's;
    ``cycle_momentum``: drive the momentum by the schedule's ``.momentum`` too, per step (torch's
    ``OneCycleLR`` does).
    ``torch_scheduler(optimizer, budget)``: a source's torch scheduler, which then drives the run
    (``lr`` is its closed form, what the table is checked against). ``epochs``: the run's length in
    full-profile epochs, when it is not the experiment's. ``ddp``: a data-parallel arm, trained by
    :mod:`lrlab.course.ddp` on :data:`DDP_PROCESSES` processes (the run's seed, profile and files are
    filled in; its ``warmup_epochs`` are full-profile epochs). ``seeds``: the arm's own seeds, when they
    are not the study's. ``holdout``: train on the training set less :data:`VALIDATION_SIZE` examples held
    out for validation (``val_loss``, ``val_acc``), and never evaluate the test set (its columns stay empty).
    """

    variant: str
    schedule: str
    label: str
    lr: Optional[Callable[[Budget], Callable]] = None
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    cycle_momentum: bool = False
    torch_scheduler: Optional[Callable[[torch.optim.Optimizer, Budget], Any]] = None
    step_per: str = "epoch"
    epochs: Optional[int] = None
    ddp: Optional[DDPRun] = None
    seeds: Optional[tuple] = None
    holdout: bool = False
    average: Optional[Callable[[nn.Module, Budget], Any]] = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Arm {self.variant}/{self.schedule}: optimizer must be one of {OPTIMIZERS}")
        if (self.lr is None) == (self.ddp is None):
            raise ValueError(f"Arm {self.variant}/{self.schedule}: give exactly one of lr (a schedule) or ddp")

    # ---- what the run is

    def num_epochs(self, cfg: _profiles.Experiment) -> int:
        """How many epochs this arm trains in ``cfg``'s profile."""
        return cfg.num_epochs if self.epochs is None else cfg.epochs(self.epochs)

    def ddp_run(self, cfg: _profiles.Experiment, seed: int = 0, **files) -> DDPRun:
        """The data-parallel run of this arm in ``cfg``'s profile (``files``: root, out, checkpoint, status, backend)."""
        w = self.ddp.warmup_epochs
        return dataclasses.replace(self.ddp, warmup_epochs=cfg.epochs(int(w)) if w else 0, seed=seed,
                                   profile=cfg.profile, epochs=self.num_epochs(cfg), max_batches=cfg.max_batches,
                                   **files)

    def schedule_for(self, budget: Budget) -> Callable:
        """The rate of every step (an epoch, or an update with ``step_per="update"``)."""
        if self.ddp is not None:
            return self.ddp_run(budget.cfg).schedule(budget.num_train)
        return self.lr(budget)

    def make_optimizer(self, params, budget: Budget) -> torch.optim.Optimizer:
        lr = float(self.schedule_for(budget)(0))
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        if self.optimizer == "schedule_free_sgd":
            try:
                import schedulefree  # the maintained package of Defazio et al. (2024)
            except ImportError as err:
                raise ImportError("the schedule-free runs need the schedulefree package: pip install schedulefree "
                                  "(or lrlab[book])") from err
            return schedulefree.SGDScheduleFree(params, lr=lr, momentum=self.momentum,
                                                warmup_steps=_warmup_updates(budget.iters))
        return torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def make_scheduler(self, optimizer, budget: Budget):
        """What :func:`lrlab.train` gets as ``scheduler``: the torch scheduler, a ScheduleLR driving the
        momentum too, nothing (schedule-free), or the schedule itself."""
        if self.torch_scheduler is not None:
            return self.torch_scheduler(optimizer, budget)
        if self.optimizer == "schedule_free_sgd":
            return None
        schedule = self.schedule_for(budget)
        return ScheduleLR(optimizer, schedule, momentum=schedule.momentum) if self.cycle_momentum else schedule

    # ---- what the table must say

    def steps_per_epoch(self, budget: Budget) -> int:
        if self.ddp is not None:
            return self.ddp_run(budget.cfg).updates_per_epoch(budget.num_train)
        return budget.iters if self.step_per == "update" else 1

    def rates(self, budget: Budget) -> Callable[[int], float]:
        """``t -> `` the rate of epoch ``t``'s first update: the table's ``lr`` column."""
        schedule, per = self.schedule_for(budget), self.steps_per_epoch(budget)
        return lambda t: float(schedule(t * per))

    def momenta(self, budget: Budget) -> Callable[[int], float]:
        """``t -> `` the momentum (Adam's beta1) of epoch ``t``'s last update: the table's ``momentum`` column."""
        if self.cycle_momentum:
            momentum, per = self.schedule_for(budget).momentum, self.steps_per_epoch(budget)
            return lambda t: float(momentum((t + 1) * per - 1))
        value = 0.9 if self.optimizer == "adam" else (self.ddp.momentum if self.ddp is not None else self.momentum)
        return lambda t: value


@dataclass(frozen=True)
class Study:
    """A table of reference runs: one experiment of :mod:`lrlab.course.profiles`, its arms, its seeds.

    ``data(cfg, root, seed, device)`` loads ``(label, (train_iter, test_iter))``. ``later(out)``: the arms
    whose configuration is read from results already in the output folder (a rate a search chose, a range
    test's suggestion); it gives those that can be built now (none while their inputs are incomplete), and
    the runner asks again after each round of runs. ``prepare(out, cfg, root, device, command)`` writes such
    inputs before the study's runs (the range test).
    """

    name: str
    experiment: str
    arms: tuple
    seeds: tuple
    data: Callable[..., tuple] = field(repr=False)
    later: Optional[Callable[[Path], tuple]] = field(repr=False, default=None)
    prepare: Optional[Callable[..., None]] = field(repr=False, default=None)

    def arms_in(self, out: Path) -> tuple:
        """The study's arms for the results in ``out``: the fixed ones, then those its results already decide."""
        return self.arms + (() if self.later is None else tuple(self.later(Path(out))))

    def arm(self, variant: str, schedule: str, out: Optional[Path] = None) -> Arm:
        for a in (self.arms if out is None else self.arms_in(out)):
            if (a.variant, a.schedule) == (variant, schedule):
                return a
        raise KeyError(f"{self.name} has no arm {variant}/{schedule}" + ("" if out is None else f" in {out}"))


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


def finished_runs(out: Path, study: str, arms: Sequence[Arm], default_seeds: Sequence[int]):
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


# --------------------------------------------------------------------------- data


def data_label(cfg, root) -> str:
    """The ``data`` column of an experiment's runs: the real dataset and its sizes, or the stand-in."""
    spec = cfg.spec
    return (f"{spec.title} ({spec.num_train:,} train / {spec.num_test:,} test)" if cfg.uses_real_data(root)
            else f"synthetic stand-in for {spec.title}")


def _experiment_data(cfg, root, seed, device):
    return data_label(cfg, root), cfg.load_data(root, seed=seed, device=device)


def _mnist_data(cfg, root, seed, device):
    if _data.files_present("mnist", root) or cfg.profile == "smoke" and not _data.files_present("mnist", root, ["test"]):
        return _experiment_data(cfg, root, seed, device)
    label = "MNIST test split as a proxy (8,000 train / 2,000 test, split seed 0)"
    return label, _data.load_data_mnist_test_split(cfg.batch_size, root, num_train=8000, split_seed=0, seed=seed,
                                                   max_batches=cfg.max_batches, device=device)


#: A search's validation split: this many training examples held out (the course's one in twelve of
#: Fashion-MNIST, :func:`lrlab.validation_split`), chosen by a generator seeded with this seed.
VALIDATION_SIZE = 5000
VALIDATION_SPLIT_SEED = 0


def validation_size(num_train: int) -> int:
    """:data:`VALIDATION_SIZE` held-out examples, or one in twelve of a smaller (smoke) training set."""
    return VALIDATION_SIZE if num_train > 2 * VALIDATION_SIZE else max(1, num_train // 12)


def arm_data_label(arm: Arm, label: str) -> str:
    """The ``data`` column of ``arm``'s runs: the study's data, and what a search held out of it."""
    if not arm.holdout:
        return label
    return f"{label}; {VALIDATION_SIZE:,} training examples held out for validation (split seed {VALIDATION_SPLIT_SEED})"


# --------------------------------------------------------------------------- d2l's section


class _Rates:
    """A schedule given as its list of per-epoch rates (what a traced run used): ``t -> rates[t]``."""

    def __init__(self, rates: Sequence[float]):
        self.rates = tuple(float(r) for r in rates)

    def __call__(self, t):
        return self.rates[int(t)]

    def __repr__(self) -> str:
        return f"_Rates({len(self.rates)} epochs)"


#: The peak of each of d2l's shapes as its section trains them.
D2L_PEAKS = {"constant": 0.3, "square_root": 0.1, "multi_step": 0.5, "cosine": 0.3, "cosine_warmup": 0.3}


def d2l_schedule(shape: str, cfg: _profiles.Experiment, peak: Optional[float] = None):
    """d2l's ``shape`` (one of :data:`lrlab.sources.d2l_section.RUNS`) as its text describes it, per epoch,
    at d2l's peak, or scaled to ``peak``: every rate multiplied by ``peak / d2l's peak`` (our choice for
    the ``tuned`` study: the cosines' floor 0.01 scales with the peak)."""
    e = cfg.epochs
    peak = D2L_PEAKS[shape] if peak is None else peak
    if shape == "constant":
        return _s.ConstantScheduler(lr=peak)
    if shape == "square_root":
        return _s.SquareRootScheduler(lr=peak)
    if shape == "multi_step":
        return _s.MultiFactorScheduler(steps=[e(15), e(30)], factor=0.5, base_lr=peak)
    warmup = e(5) if shape == "cosine_warmup" else 0
    return _s.CosineScheduler(max_update=e(20), base_lr=peak, final_lr=0.01 * (peak / D2L_PEAKS[shape]),
                              warmup_steps=warmup)


def _d2l_arm(variant: str, name: str) -> Arm:
    if variant == "corrected":
        def lr(b):
            return d2l_schedule(name, b.cfg)
    else:
        def lr(b):
            return _Rates(_d2l.published_rates(name, b.cfg.num_epochs))
    return Arm(variant, name, f"{_d2l.LABELS[name]} ({variant})", lr)


# --------------------------------------------------------------------------- the MNIST tutorial


_MNIST_ARMS = (
    Arm("as_written", "step", "StepLR(step_size=5, gamma=0.5), as written",
        lambda b: _s.StepScheduler(step_size=b.epochs(5), gamma=0.5, base_lr=0.001), optimizer="adam",
        torch_scheduler=lambda opt, b: _torch_sched.StepLR(opt, step_size=b.epochs(5), gamma=0.5)),
    Arm("as_written", "cosine", "CosineAnnealingLR(T_max=20), as written",
        lambda b: _s.CosineScheduler(max_update=b.epochs(20), base_lr=0.001, final_lr=0.0), optimizer="adam",
        torch_scheduler=lambda opt, b: _torch_sched.CosineAnnealingLR(opt, T_max=b.epochs(20))),
    Arm("corrected", "cosine", "CosineAnnealingLR(T_max=10): T_max = the number of epochs",
        lambda b: _s.CosineScheduler(max_update=b.cfg.num_epochs, base_lr=0.001, final_lr=0.0), optimizer="adam",
        torch_scheduler=lambda opt, b: _torch_sched.CosineAnnealingLR(opt, T_max=b.cfg.num_epochs)),
    Arm("course", "constant", "constant 0.001 (the course's baseline)", lambda b: _s.ConstantScheduler(lr=0.001),
        optimizer="adam", torch_scheduler=lambda opt, b: None),
)

# --------------------------------------------------------------------------- the range test


#: The LR range test on d2l's setting (LeNet, Fashion-MNIST, batch 256, plain SGD; lr_find's defaults,
#: 1e-7 to 10 in 100 updates), seeds 0 to 4. The ``lr_find`` study writes each seed's suggestions to
#: :data:`RANGE_TEST_FILE` before its runs (:func:`range_test_rates` reads them) and trains at each
#: rule's median.
RANGE_TEST_SEEDS = (0, 1, 2, 3, 4)
RANGE_TEST_FILE = "range_test.csv"
_RANGE_TEST_COLUMNS = ("seed", "rule", "lr")


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


def range_test(cfg: _profiles.Experiment, root=None, seeds: Sequence[int] = RANGE_TEST_SEEDS, device=None):
    """:func:`lrlab.lr_find_seeds` on the experiment: one range test per seed (net, loader order), plain SGD."""
    device = torch.device("cpu") if device is None else torch.device(device)
    train_iter, _ = cfg.load_data(root, seed=0, device=device)
    return lr_find_seeds(lambda: cfg.make_model().to(device), train_iter, nn.CrossEntropyLoss(),
                         lambda params: torch.optim.SGD(params, lr=PEAK_LR), seeds, device=device)


def write_range_test(out: Path, cfg: _profiles.Experiment, root, device, command: str) -> None:
    """Write the range test's suggestions (and their provenance, in ``lr_find.provenance.json``) if not there."""
    if read_range_test(out) is not None:
        return
    started, tick = provenance.now(), time.perf_counter()
    print(f"lr_find: the range test over seeds {', '.join(map(str, RANGE_TEST_SEEDS))} first", flush=True)
    spread = range_test(cfg, root, device=device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _results.write_atomic(out / RANGE_TEST_FILE, spread.table().to_csv(index=False, lineterminator="\n"))
    prov_path = out / "lr_find.provenance.json"
    prov = _results.read_provenance(prov_path) if prov_path.exists() else {"runs": {}}
    prov["range_test"] = provenance.entry(provenance.device_text(torch.device(device)), cfg, data_label(cfg, root), started,
                                     time.perf_counter() - tick, command, None, seeds=list(RANGE_TEST_SEEDS))
    _results.write_atomic(prov_path, json.dumps(prov, indent=1) + "\n")


def _range_test_arms(out: Path) -> tuple:
    return tuple(Arm("range_test", rule, f"constant at the {rule} rule's median suggestion ({lr:.3g})",
                     lambda b, lr=lr: _s.ConstantScheduler(lr), epochs=10)
                 for rule, lr in range_test_rates(out).items())


# --------------------------------------------------------------------------- cycles


class _WithMomentum:
    """d2l's per-epoch schedule counted in updates (``u -> schedule(u // iters)``, the same rate all epoch),
    carrying another schedule's ``.momentum`` (per update): a cosine with one-cycle's momentum cycle."""

    def __init__(self, schedule: Callable, iters: int, momentum: Callable):
        self.schedule, self.iters, self.momentum = schedule, int(iters), momentum

    def __call__(self, u):
        return self.schedule(int(u) // self.iters)


def _one_cycle(b: Budget):
    return _s.OneCycleScheduler(total_steps=b.cfg.num_epochs * b.iters, max_lr=PEAK_LR)


_CYCLE_ARMS = (
    Arm("course", "one_cycle", "one-cycle to 0.3, momentum cycled 0.95-0.85 (OneCycleLR's defaults)", _one_cycle,
        cycle_momentum=True, step_per="update"),
    Arm("course", "restarts", "warm restarts from 0.3 to 0.01, T_0 = 10 epochs, T_mult = 2",
        lambda b: _s.CosineRestartsScheduler(T_0=b.epochs(10) * b.iters, T_mult=2, eta_min=0.01, base_lr=PEAK_LR),
        step_per="update"),
    # Shape and momentum separated (a 2 x 2 with the two above and d2l's plain cosine, same seeds):
    Arm("course", "one_cycle_no_momentum", "one-cycle to 0.3, plain SGD (momentum 0, not cycled)", _one_cycle,
        step_per="update"),
    Arm("course", "cosine_cycled_momentum", "d2l's cosine (0.3 to 0.01 over 20 epochs, per epoch) with one-cycle's "
        "momentum cycle",
        lambda b: _WithMomentum(d2l_schedule("cosine", b.cfg), b.iters, _one_cycle(b).momentum),
        cycle_momentum=True, step_per="update"),
)

# --------------------------------------------------------------------------- an unknown budget


BUDGETS = (10, 20, 30)
#: The schedule-free probe (rows ``variant="probe"`` of ``budget.csv``): the budget study's schedule-free
#: SGD at each of these rates for :data:`PROBE_EPOCHS` epochs, seed 0; the rate with the lower final
#: training loss is the one the 30-epoch run trains at (the schedulefree package's README, 1.4.1, calls a
#: rate "10x-50x larger than classical rates" a good start for SGD). The training loss, not a held-out
#: score: the probe asks which rate trains faster, not which generalises.
SCHEDULE_FREE_PROBE = (0.3, 1.0)
PROBE_EPOCHS = 4
PROBE_SEEDS = (0,)


def _warmup_updates(iters: int) -> int:
    """The budget study's warmup: half an epoch of updates (our choice; the same for every budget)."""
    return max(1, iters // 2)


def _budget_arm(kind: str, budget: int) -> Arm:
    if kind == "wsd":
        def lr(b):
            return _s.WSDScheduler(total_steps=b.epochs(budget) * b.iters, peak_lr=PEAK_LR, final_lr=0.0,
                                   warmup_steps=_warmup_updates(b.iters), decay_fraction=0.2, decay_shape="1-sqrt")
        label = f"warmup-stable-decay, {budget} epochs (1-sqrt decay over the last 20%)"
    else:
        def lr(b):
            return _s.CosineScheduler(max_update=b.epochs(budget) * b.iters, base_lr=PEAK_LR, final_lr=0.0,
                                      warmup_steps=_warmup_updates(b.iters))
        label = f"cosine tuned to {budget} epochs"
    return Arm("budget", f"{kind}_{budget}", label, lr, step_per="update", epochs=budget)


def _schedule_free_arm(variant: str, schedule: str, lr: float, label: str, **kwargs) -> Arm:
    return Arm(variant, schedule, label, lambda b: _s.ConstantScheduler(lr), optimizer="schedule_free_sgd",
               momentum=0.9, **kwargs)


_PROBE_ARMS = tuple(_schedule_free_arm("probe", f"schedule_free@{lr:g}", lr,
                                       f"schedule-free SGD at {lr:g}, {PROBE_EPOCHS}-epoch probe",
                                       seeds=PROBE_SEEDS, epochs=PROBE_EPOCHS)
                    for lr in SCHEDULE_FREE_PROBE)


def schedule_free_lr(out: Path) -> Optional[float]:
    """The rate of :data:`SCHEDULE_FREE_PROBE` whose probe runs in ``out`` end with the lower mean training
    loss (None until they have all finished)."""
    last = finished_runs(out, "budget", _PROBE_ARMS, PROBE_SEEDS)
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

# --------------------------------------------------------------------------- weight averaging

#: The averaging study (our design; the question: how much of a decay does averaging the weights buy?). Every
#: arm trains d2l's LeNet for 30 epochs from the budget study's warmup (half an epoch, per update) to 0.3.
#: EMA: torch's default decay (0.999 per update, a memory of about 4 epochs of 235 updates). SWA: Izmailov et
#: al.'s recipe as torch's documentation writes it, scaled to 30 epochs: the constant rate until
#: :data:`SWA_START` (two thirds of the run), then ``SWALR`` to :data:`SWA_LR` (the documentation's value)
#: over :data:`SWA_ANNEAL_EPOCHS` epochs, and an equal average after every epoch from :data:`SWA_START` on.
EMA_DECAY = 0.999
SWA_START, SWA_LR, SWA_ANNEAL_EPOCHS = 20, 0.05, 2


def _constant_after_warmup(b: Budget):
    return _s.LinearWarmup(_s.ConstantScheduler(PEAK_LR), warmup_steps=_warmup_updates(b.iters))


def _swa_schedule(b: Budget):
    return _s.SWAScheduler(_constant_after_warmup(b), swa_start=b.epochs(SWA_START) * b.iters, swa_lr=SWA_LR,
                           anneal_steps=b.epochs(SWA_ANNEAL_EPOCHS) * b.iters)


def _ema(net, b: Budget):
    from ..averaging import WeightAverage

    return WeightAverage(net, kind="ema", decay=EMA_DECAY, every="update")


def _swa(net, b: Budget):
    from ..averaging import WeightAverage

    return WeightAverage(net, kind="swa", start=b.epochs(SWA_START), every="epoch")


_AVERAGING_ARMS = (
    Arm("averaging", "constant", "constant 0.3 after the warmup, no averaging", _constant_after_warmup,
        step_per="update"),
    Arm("averaging", "constant_ema", f"constant 0.3, evaluated on an exponential moving average of the weights "
        f"(decay {EMA_DECAY:g} per update)", _constant_after_warmup, step_per="update", average=_ema),
    Arm("averaging", "swa", f"constant 0.3, then SWALR to {SWA_LR:g} over {SWA_ANNEAL_EPOCHS} epochs from epoch "
        f"{SWA_START}, evaluated on the equal average of the weights after every epoch from {SWA_START}",
        _swa_schedule, step_per="update", average=_swa),
    # SWA changes two things (the rate falls to 0.05, the weights are averaged): this arm has the first only
    Arm("averaging", "swalr", f"the SWA arm's rates (SWALR to {SWA_LR:g} from epoch {SWA_START}), no averaging",
        _swa_schedule, step_per="update"),
    dataclasses.replace(_budget_arm("cosine", 30), variant="averaging", schedule="cosine"),
    dataclasses.replace(_budget_arm("wsd", 30), variant="averaging", schedule="wsd"),
)

# --------------------------------------------------------------------------- large batches

#: The large-batch study (Goyal et al., 2017, on d2l's setting): global batches (k = 4, 16, 32 times
#: d2l's 256), each unscaled, linearly scaled (k times the rate), and linearly scaled after a gradual
#: warmup from the unscaled rate (Goyal et al.'s recipe); and batch 256, the reference. Three regimes:
#: d2l's (0.3, plain SGD, a warmup of 2 epochs), Goyal et al.'s (schedules ``goyal_*``: 0.1 at 256,
#: momentum 0.9, a warmup of 5 epochs, theirs), and d2l's plain SGD from Goyal et al.'s base rate
#: (``base0.1_*``: 0.1, no momentum, 2 epochs of warmup; at 1024 and 4096 only). Our choices: 10 epochs
#: (CPU time; Goyal et al. train 90 on ImageNet), a constant rate after the warmup (theirs: steps down by
#: 10 at epochs 30, 60, 80), no weight decay (theirs: 1e-4), 2 processes (this machine's cores).
LARGE_BATCHES = (1024, 4096, 8192)
LARGE_BATCH_EPOCHS = 10
DDP_PROCESSES = 2
_REGIMES = {"": DDPRun(base_lr=PEAK_LR, warmup_epochs=2, warmup_begin_lr=PEAK_LR),
            "goyal_": DDPRun(base_lr=0.1, momentum=0.9, warmup_epochs=5, warmup_begin_lr=0.1),
            "base0.1_": DDPRun(base_lr=0.1, warmup_epochs=2, warmup_begin_lr=0.1)}
#: The batches of each regime (the third, d2l's plain SGD from a base rate of 0.1, asks whether the rule
#: works where the scaled rate stays below the largest one this network trains at, 0.6 to 1.2 at batch 256).
_REGIME_BATCHES = {"": LARGE_BATCHES, "goyal_": LARGE_BATCHES, "base0.1_": (1024, 4096)}
LARGE_BATCH_WARMUP_EPOCHS = int(_REGIMES[""].warmup_epochs)


def _large_batch_arm(global_batch: int, scale: str, warmup: bool, prefix: str = "") -> Arm:
    regime = _REGIMES[prefix]
    base = regime.base_lr
    run = dataclasses.replace(regime, global_batch=global_batch, scale=scale,
                              warmup_epochs=regime.warmup_epochs if warmup else 0.0)
    name = {("none", False): "unscaled", ("linear", False): "linear", ("linear", True): "linear_warmup"}[scale, warmup]
    label = {"unscaled": f"{base:g}, not scaled", "linear": f"linear scaling: {base:g} x {global_batch}/256",
             "linear_warmup": f"linear scaling after a {regime.warmup_epochs:g}-epoch warmup from {base:g}"}[name]
    if regime.momentum:
        label += f", momentum {regime.momentum:g}"
    return Arm(f"global{global_batch}", prefix + name, f"global batch {global_batch}, {label}", step_per="update",
               epochs=LARGE_BATCH_EPOCHS, ddp=run)


_LARGE_BATCH_ARMS = tuple(
    arm for prefix in _REGIMES
    for arm in (_large_batch_arm(256, "none", False, prefix),) + tuple(
        _large_batch_arm(b, scale, warmup, prefix) for b in _REGIME_BATCHES[prefix]
        for scale, warmup in (("none", False), ("linear", False), ("linear", True))))

# --------------------------------------------------------------------------- each of d2l's shapes at its own peak

#: The ``tuned`` study: each of d2l's five shapes at a peak chosen for it, as the Deep Learning Tuning
#: Playbook (Godbole et al., 2023) asks before shapes are compared. A shape at peak ``p`` is
#: :func:`d2l_schedule` scaled to ``p``. The search trains every shape at every peak of :data:`TUNED_PEAKS`
#: (log-spaced, a factor 2 apart, d2l's 0.3 in the middle) on the training set less :data:`VALIDATION_SIZE`
#: held-out examples, seeds :data:`TUNED_SEARCH_SEEDS` (not among the final seeds); each shape's peak is
#: the one with the best mean final-epoch validation accuracy (:func:`tuned_peaks`); the test set is never
#: looked at. Then each shape trains at its peak on the whole training set, seeds 0 to 2
#: (``variant="final"``).
TUNED_PEAKS = (0.075, 0.15, 0.3, 0.6, 1.2)
TUNED_SEARCH_SEEDS = (10,)


def _tuned_arm(variant: str, shape: str, peak: float, **kwargs) -> Arm:
    what = "search on a validation split" if variant == "search" else "the search's choice, on the whole training set"
    return Arm(variant, f"{shape}@{peak:g}", f"{_d2l.LABELS[shape]} at peak {peak:g} ({what})",
               lambda b: d2l_schedule(shape, b.cfg, peak), **kwargs)


_TUNED_SEARCH = tuple(_tuned_arm("search", shape, peak, seeds=TUNED_SEARCH_SEEDS, holdout=True)
                      for shape in _d2l.RUNS for peak in TUNED_PEAKS)


def tuned_peaks(out: Path) -> Optional[dict]:
    """Each shape's peak: the best mean final-epoch ``val_acc`` of its search runs in ``out`` (the smaller peak
    on a tie); None until every search run has finished."""
    last = finished_runs(out, "tuned", _TUNED_SEARCH, TUNED_SEARCH_SEEDS)
    if last is None:
        return None
    acc = last.groupby("schedule")["val_acc"].mean()
    return {shape: max(TUNED_PEAKS, key=lambda p: (acc[f"{shape}@{p:g}"], -p)) for shape in _d2l.RUNS}


def _tuned_later(out: Path) -> tuple:
    peaks = tuned_peaks(out)
    return () if peaks is None else tuple(_tuned_arm("final", shape, peak) for shape, peak in peaks.items())


# --------------------------------------------------------------------------- the warmup tutorial's claim

#: The warmup tutorial promises "stability and faster convergence" from its WarmupMultiFactorScheduler
#: (SimpleModel, CIFAR-10 in the course, 100 epochs). CIFAR-10 cannot be had on the course's machines, so
#: the course measures the claim on a labelled proxy (experiment ``warmup_proxy``): d2l's LeNet on
#: Fashion-MNIST with the tutorial's optimizer (SGD, momentum 0.9, weight decay 5e-4, base rate 0.01),
#: batch 128, and its schedule cut from 100 epochs to 30 at the same fractions (warmup 10 % = 3 epochs from
#: 0.001 x the base rate; cuts by 0.1 at 50 % and 75 % = epochs 15 and 23), stepped per epoch as the
#: tutorial does; against the same cuts without the warmup. Seeds 0 to 2.
WARMUP_PROXY = {"milestones": (15, 23), "gamma": 0.1, "warmup_factor": 0.001, "warmup_epochs": 3, "base_lr": 0.01}


def _warmup_proxy_arm(warm: bool) -> Arm:
    p = WARMUP_PROXY

    def lr(b):
        steps = [b.epochs(m) for m in p["milestones"]]
        if warm:
            return _s.WarmupMultiFactorSchedule(steps, p["gamma"], p["warmup_factor"], b.epochs(p["warmup_epochs"]),
                                                "linear", p["base_lr"])
        return _s.MultiFactorScheduler(steps=steps, factor=p["gamma"], base_lr=p["base_lr"])

    name, label = (("warmup_multifactor", "the tutorial's warmup, then cuts at 15 and 23") if warm
                   else ("multi_step", "the same cuts, no warmup"))
    return Arm("course", name, label, lr, momentum=0.9, weight_decay=5e-4)


# --------------------------------------------------------------------------- the catalogue


STUDIES = {
    "d2l": Study("d2l", "d2l", tuple(_d2l_arm(v, n) for v in ("corrected", "published") for n in _d2l.RUNS),
                 (0, 1, 2, 3, 4), _experiment_data),
    "mnist_cnn": Study("mnist_cnn", "mnist_cnn", _MNIST_ARMS, (42, 43, 44, 45, 46), _mnist_data),
    "lr_find": Study("lr_find", "d2l", (), (0, 1, 2), _experiment_data, later=_range_test_arms,
                     prepare=write_range_test),
    "cycles": Study("cycles", "d2l", _CYCLE_ARMS, (0, 1, 2), _experiment_data),
    "budget": Study("budget", "d2l", _BUDGET_ARMS, (0, 1, 2), _experiment_data, later=_budget_later),
    "large_batch": Study("large_batch", "d2l", _LARGE_BATCH_ARMS, (0, 1, 2), _experiment_data),
    "tuned": Study("tuned", "d2l", _TUNED_SEARCH, (0, 1, 2), _experiment_data, later=_tuned_later),
    "averaging": Study("averaging", "d2l", _AVERAGING_ARMS, (0, 1, 2), _experiment_data),
    "warmup": Study("warmup", "warmup_proxy", (_warmup_proxy_arm(True), _warmup_proxy_arm(False)), (0, 1, 2),
                    _experiment_data),
}
