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
    processes); its ``optimizer`` and ``scheduler`` are then unused.
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

    def epochs(self, cfg: _profiles.Experiment) -> int:
        """How many epochs this arm trains in ``cfg``'s profile."""
        return cfg.num_epochs if self.num_epochs is None else self.num_epochs(cfg)


@dataclass(frozen=True)
class Study:
    """A table of reference runs: one experiment of :mod:`lrlab.profiles`, its arms and its default seeds."""

    name: str
    experiment: str
    arms: tuple
    seeds: tuple
    description: str
    data: Callable[..., tuple] = field(repr=False, default=None)  # (cfg, root, seed, device) -> (label, iters)

    def arm(self, variant: str, schedule: str) -> Arm:
        for a in self.arms:
            if (a.variant, a.schedule) == (variant, schedule):
                return a
        raise KeyError(f"{self.name} has no arm {variant}/{schedule}")


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


def _experiment_data(cfg, root, seed, device):
    spec = cfg.spec
    label = (f"{spec.title} ({spec.num_train:,} train / {spec.num_test:,} test)" if cfg.uses_real_data(root)
             else f"synthetic stand-in for {spec.title}")
    return label, cfg.load_data(root, seed=seed, device=device)


# --------------------------------------------------------------------------- the MNIST tutorial's study


def _mnist_data(cfg, root, seed, device):
    if _data.files_present("mnist", root) or cfg.profile == "smoke" and not _data.files_present("mnist", root, ["test"]):
        return _experiment_data(cfg, root, seed, device)
    label = "MNIST test split as a proxy (8,000 train / 2,000 test, split seed 0)"
    return label, _data.load_data_mnist_test_split(cfg.batch_size, root, num_train=8000, split_seed=0, seed=seed,
                                                   max_batches=cfg.max_batches, device=device)


def _adam(params, cfg):
    return torch.optim.Adam(params, lr=0.001)


_MNIST_ARMS = (
    Arm("as_written", "step", "StepLR(step_size=5, gamma=0.5), as written", _adam,
        lambda opt, cfg: _torch_sched.StepLR(opt, step_size=cfg.epochs(5), gamma=0.5),
        lambda cfg: _s.StepScheduler(step_size=cfg.epochs(5), gamma=0.5, base_lr=0.001)),
    Arm("as_written", "cosine", "CosineAnnealingLR(T_max=20), as written", _adam,
        lambda opt, cfg: _torch_sched.CosineAnnealingLR(opt, T_max=cfg.epochs(20)),
        lambda cfg: _s.CosineScheduler(max_update=cfg.epochs(20), base_lr=0.001, final_lr=0.0)),
    Arm("corrected", "cosine", "CosineAnnealingLR(T_max=10): T_max = the number of epochs", _adam,
        lambda opt, cfg: _torch_sched.CosineAnnealingLR(opt, T_max=cfg.num_epochs),
        lambda cfg: _s.CosineScheduler(max_update=cfg.num_epochs, base_lr=0.001, final_lr=0.0)),
    Arm("course", "constant", "constant 0.001 (the course's baseline)", _adam,
        lambda opt, cfg: None, lambda cfg: _s.ConstantScheduler(lr=0.001)),
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

    ``momentum``: the schedule has a ``.momentum`` schedule too (one-cycle), driven through
    :class:`lrlab.ScheduleLR` like torch's ``OneCycleLR`` does. ``epochs``: the budget in full-profile
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

    return Arm(variant, name, label, lambda params, cfg: torch.optim.SGD(params, lr=float(per_update(cfg)(0))),
               scheduler, rates, step_per="update",
               num_epochs=None if epochs is None else (lambda cfg: cfg.epochs(epochs)))


def _warmup_updates(iters: int) -> int:
    """The budget study's warmup: half an epoch of updates (our choice; the same for every budget)."""
    return max(1, iters // 2)


#: The rates of the chapters beyond the sources (our choices, stated in the chapters). The peak is d2l's
#: 0.3 throughout. Schedule-free SGD runs at 1.0: the schedulefree package's README (1.4.1) calls a
#: rate "10x-50x larger than classical rates" a good start for SGD, and in a 4-epoch probe on seed 0
#: (training loss, not test accuracy) 1.0 trained faster than 0.3 (0.325 against 0.459 after 4
#: epochs); higher was not tried.
PEAK_LR = 0.3
SCHEDULE_FREE_LR = 1.0
BUDGETS = (10, 20, 30)

#: The LR range test on d2l's setting (LeNet, Fashion-MNIST, batch 256, plain SGD; lr_find's defaults,
#: 1e-7 to 10 in 100 updates), seeds 0 to 4: each rule's median suggestion, the constant rate its arm
#: of the ``lr_find`` study trains at. :func:`range_test` recomputes them (the tests compare these
#: digits with a fresh run where the data are on disk).
RANGE_TEST_SEEDS = (0, 1, 2, 3, 4)
RANGE_TEST_LR = {"valley": 0.13848863713938717, "steepest": 2.2570197196339215, "minimum": 0.18738174228603827}


def range_test(cfg: _profiles.Experiment, root=None, seeds: Sequence[int] = RANGE_TEST_SEEDS, device=None):
    """:func:`lrlab.lr_find_seeds` on the experiment: one range test per seed (net, loader order), plain SGD."""
    device = torch.device("cpu") if device is None else torch.device(device)
    train_iter, _ = cfg.load_data(root, seed=0, device=device)
    return lr_find_seeds(lambda: cfg.make_model().to(device), train_iter, nn.CrossEntropyLoss(),
                         lambda params: torch.optim.SGD(params, lr=PEAK_LR), seeds, device=device)


def _range_test_arm(rule: str) -> Arm:
    def rates(cfg):
        return _s.ConstantScheduler(RANGE_TEST_LR[rule])

    return Arm("range_test", rule, f"constant at the {rule} rule's median suggestion",
               lambda params, cfg: torch.optim.SGD(params, lr=RANGE_TEST_LR[rule]), lambda opt, cfg: None, rates,
               num_epochs=lambda cfg: cfg.epochs(10))


_CYCLE_ARMS = (
    _per_update_arm("course", "one_cycle", "one-cycle to 0.3, momentum cycled 0.95-0.85 (OneCycleLR's defaults)",
                    lambda cfg, it: _s.OneCycleScheduler(total_steps=cfg.num_epochs * it, max_lr=PEAK_LR),
                    momentum=True),
    _per_update_arm("course", "restarts", "warm restarts from 0.3 to 0.01, T_0 = 10 epochs, T_mult = 2",
                    lambda cfg, it: _s.CosineRestartsScheduler(T_0=cfg.epochs(10) * it, T_mult=2, eta_min=0.01,
                                                               base_lr=PEAK_LR)),
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


def _schedule_free(params, cfg):
    try:
        import schedulefree  # the maintained package of Defazio et al. (2024)
    except ImportError as err:
        raise ImportError("the budget study's schedule-free run needs the schedulefree package: "
                          "pip install schedulefree (or lrlab[book])") from err

    return schedulefree.SGDScheduleFree(params, lr=SCHEDULE_FREE_LR, momentum=0.9,
                                        warmup_steps=_warmup_updates(iters_per_epoch(cfg)))


_BUDGET_ARMS = tuple(_budget_arm(kind, b) for kind in ("wsd", "cosine") for b in BUDGETS) + (
    Arm("budget", "schedule_free", "schedule-free SGD at 1.0 (one run, read at every epoch)", _schedule_free,
        lambda opt, cfg: None, lambda cfg: _s.ConstantScheduler(SCHEDULE_FREE_LR)),
)

#: The large-batch study (Goyal et al., 2017, on d2l's setting): global batches (k = 4, 16, 32 times
#: d2l's 256), each at d2l's 0.3 unscaled, linearly scaled (0.3 k), and linearly scaled after a
#: gradual warmup from 0.3 (Goyal et al.'s recipe); and batch 256 at 0.3, the reference. Our choices:
#: 10 epochs (CPU time; Goyal et al. train 90 on ImageNet), a warmup of 2 of them (theirs: 5 of 90),
#: a constant rate after it (theirs: steps down by 10 at epochs 30, 60, 80), 2 processes (this
#: machine's cores).
LARGE_BATCHES = (1024, 4096, 8192)
LARGE_BATCH_EPOCHS = 10
LARGE_BATCH_WARMUP_EPOCHS = 2
DDP_PROCESSES = 2


def _not_in_process(*args):
    raise RuntimeError("a data-parallel arm is trained under torchrun (lrlab.runner.run launches it), not in process")


def _large_batch_arm(global_batch: int, scale: str, warmup: bool) -> Arm:
    from .distributed import linear_scaled_lr, warmup_updates

    def updates(cfg):  # per epoch: the partial last global batch is dropped (lrlab.distributed.ShardedLoader)
        steps = cfg.spec.num_train // global_batch
        return steps if cfg.max_batches is None else min(steps, cfg.max_batches)

    def warmup_epochs(cfg):
        return cfg.epochs(LARGE_BATCH_WARMUP_EPOCHS) if warmup else 0

    def schedule(cfg):
        peak = linear_scaled_lr(PEAK_LR, global_batch, cfg.batch_size) if scale == "linear" else PEAK_LR
        w = warmup_updates(warmup_epochs(cfg), global_batch, updates(cfg) * global_batch)
        return _s.LinearWarmup(_s.ConstantScheduler(peak), w, PEAK_LR) if w else _s.ConstantScheduler(peak)

    def rates(cfg):
        sched, per_epoch = schedule(cfg), updates(cfg)
        return lambda t: sched(t * per_epoch)

    def ddp(cfg):
        return ["--global-batch", global_batch, "--scale", scale, "--base-lr", PEAK_LR,
                "--warmup-epochs", warmup_epochs(cfg), "--warmup-begin-lr", PEAK_LR]

    name = {("none", False): "unscaled", ("linear", False): "linear", ("linear", True): "linear_warmup"}[scale, warmup]
    label = {"unscaled": "0.3, not scaled", "linear": f"linear scaling: 0.3 x {global_batch}/256",
             "linear_warmup": f"linear scaling after a {LARGE_BATCH_WARMUP_EPOCHS}-epoch warmup from 0.3"}[name]
    return Arm(f"global{global_batch}", name, f"global batch {global_batch}, {label}", _not_in_process,
               _not_in_process, rates, step_per="update", num_epochs=lambda cfg: cfg.epochs(LARGE_BATCH_EPOCHS),
               ddp=ddp)


_LARGE_BATCH_ARMS = (_large_batch_arm(256, "none", False),) + tuple(
    _large_batch_arm(b, scale, warmup) for b in LARGE_BATCHES
    for scale, warmup in (("none", False), ("linear", False), ("linear", True)))

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
        "lr_find", "d2l", tuple(_range_test_arm(rule) for rule in RULES), (0, 1, 2),
        "constant rates at the LR range test's suggestions, 10 epochs of d2l's setting (against d2l's 0.3)",
        _experiment_data,
    ),
    "cycles": Study(
        "cycles", "d2l", _CYCLE_ARMS, (0, 1, 2),
        "one-cycle and warm restarts on d2l's LeNet / Fashion-MNIST, 30 epochs (against d2l's cosine, same seeds)",
        _experiment_data,
    ),
    "budget": Study(
        "budget", "d2l", _BUDGET_ARMS, (0, 1, 2),
        "warmup-stable-decay and cosine at budgets of 10, 20 and 30 epochs, and schedule-free SGD, on d2l's setting",
        _experiment_data,
    ),
    "large_batch": Study(
        "large_batch", "d2l", _LARGE_BATCH_ARMS, (0, 1, 2),
        "data-parallel SGD (DDP, 2 processes under torchrun) at global batches 256 to 8192, with and without "
        "the linear scaling rule and warmup, 10 epochs of d2l's setting",
        _experiment_data,
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


def plan(studies: Sequence[str], seeds: Optional[Sequence[int]] = None) -> list:
    """The runs of ``studies`` (every arm, each seed), in order; checks the names and seeds."""
    unknown = [s for s in studies if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown study {unknown[0]!r}; the studies are {', '.join(STUDIES)}")
    if seeds is not None:
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(f"seeds must be ints >= 0; got {s!r}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must not repeat; got {list(seeds)}")
    return [RunSpec(name, arm.variant, arm.schedule, seed)
            for name in studies for seed in (STUDIES[name].seeds if seeds is None else seeds)
            for arm in STUDIES[name].arms]


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


def _config(cfg: _profiles.Experiment, data_label: str, device: torch.device) -> dict:
    """What a checkpoint must match to be resumed."""
    return {"profile": cfg.profile, "num_epochs": cfg.num_epochs, "batch_size": cfg.batch_size,
            "max_batches": cfg.max_batches, "data": data_label, "device": device.type}


def _print_epoch(spec: RunSpec, row: dict, num_epochs: int) -> None:
    print(f"{spec.id}: epoch {row['epoch'] + 1}/{num_epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  "
          f"test acc {row['test_acc']:.4f}  {row['seconds']:.1f} s", flush=True)


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
    arm = study.arm(spec.variant, spec.schedule)
    device = try_gpu() if device is None else torch.device(device)
    label, (train_iter, test_iter) = loaded or study.data(cfg, root, spec.seed, device)
    if arm.ddp is not None:
        return _run_ddp(spec, Path(out), cfg, arm, label, root=root, device=device, command=command,
                        echo=on_epoch is not None)
    # A fresh loader over the same tensors: its shuffling starts from the run's seed, whatever ran before.
    train_iter = _data.TensorLoader(train_iter.X, train_iter.y, train_iter.batch_size, shuffle=True,
                                    seed=spec.seed, max_batches=train_iter.max_batches,
                                    transform=train_iter.transform)
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
                  start_epoch=epoch, step_per=arm.step_per)
        rows.append({"experiment": study.name, "variant": spec.variant, "schedule": spec.schedule,
                     "seed": spec.seed, "epoch": epoch, "lr": h.lr[0], "train_loss": h.train_loss[0],
                     "train_acc": h.train_acc[0], "test_loss": h.test_loss[0], "test_acc": h.test_acc[0],
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
    return {"device": device_text, "python": platform.python_version(), "torch": torch.__version__,
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
    frame = _results.read_table(table)
    mine = frame[(frame.variant == spec.variant) & (frame.schedule == spec.schedule) & (frame.seed == spec.seed)
                 & (frame.data == data_label)]
    if mine.empty:
        return False
    if len(mine) == STUDIES[spec.study].arm(spec.variant, spec.schedule).epochs(cfg):
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
        runs = plan(args.studies, args.seeds)
        device = try_gpu() if args.device is None else torch.device(args.device)
    except (ValueError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    command = "python -m lrlab.runner " + " ".join(argv if argv is not None else sys.argv[1:])
    _git_commit()  # the code this process runs, before anyone edits the checkout
    # Load each study's data once, before any training: a missing file fails here, not after an hour.
    loaded, cfgs, todo = {}, {}, []
    for name in dict.fromkeys(r.study for r in runs):
        cfgs[name] = _profiles.experiment(STUDIES[name].experiment, profile)
        try:
            loaded[name] = STUDIES[name].data(cfgs[name], args.root, 0, device)
        except (_data.MissingDataError, _data.CorruptDataError) as err:
            raise SystemExit(f"error: {err}") from None
    for r in runs:
        done = finished(out, r, cfgs[r.study], loaded[r.study][0])
        if args.list:
            print(f"{'done   ' if done else 'to do  '} {r.id}")
        elif not done:
            todo.append(r)
    if args.list:
        return 0
    print(f"{len(runs) - len(todo)} of {len(runs)} runs already done; {len(todo)} to go, into {out} "
          f"on {_device_text(device)}", flush=True)
    # Time left: each study's mean seconds per epoch so far, times its epochs still to train.
    epoch_seconds: dict = {}
    remaining = {name: 0 for name in cfgs}
    for r in todo:
        saved = checkpoint_path(out, r)
        done_epochs = torch.load(saved, weights_only=True)["epoch"] if saved.exists() else 0
        remaining[r.study] += STUDIES[r.study].arm(r.variant, r.schedule).epochs(cfgs[r.study]) - done_epochs
    begin = time.perf_counter()

    def report(spec, row, num_epochs):
        epoch_seconds.setdefault(spec.study, []).append(row["seconds"])
        remaining[spec.study] -= 1
        known = [s for v in epoch_seconds.values() for s in v]
        mean = {k: sum(v) / len(v) for k, v in epoch_seconds.items()}
        left = sum(n * mean.get(k, sum(known) / len(known)) for k, n in remaining.items())
        print(f"[run {todo.index(spec) + 1}/{len(todo)}] {spec.id}: epoch {row['epoch'] + 1}/{num_epochs}  "
              f"lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  test acc {row['test_acc']:.4f}  "
              f"{row['seconds']:.1f} s  | {(time.perf_counter() - begin) / 60:.1f} min so far, "
              f"~{left / 60:.0f} min left", flush=True)

    for r in todo:
        run(r, out, cfgs[r.study], root=args.root, device=device, command=command, on_epoch=report,
            loaded=loaded[r.study])
    print(f"all {len(runs)} runs are in {out}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
