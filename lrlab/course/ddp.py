"""The course's data-parallel command: its LeNet experiment on several processes (``torchrun``), one object per run.

:class:`DDPRun` says what a data-parallel run is (global batch, base rate and how it scales, warmup,
momentum, seed, profile, epochs, where it writes); it goes to the command line (:meth:`DDPRun.argv`) and
back (:meth:`DDPRun.parse`), and the runner, the command and the tests compute the run's schedule from
the same object (:meth:`DDPRun.schedule`). The training is :func:`lrlab.train` on a wrapped net
(:mod:`lrlab.distributed`); rank 0 writes the rows (``--out``), a checkpoint after every epoch
(``--checkpoint``, resumed from if present) and how the run ended (``--status``: ``{"stopped": reason or
null, "epochs": n}``).

Launch (one process per GPU, or a few per CPU machine)::

    torchrun --standalone --nproc_per_node=2 -m lrlab.course.ddp --global-batch 1024 --scale linear \\
        --warmup-epochs 5 --out ddp.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import Optional, Sequence

import torch
from torch import nn

from ..callbacks import Checkpoint, RecordWeightNorm
from ..data import CorruptDataError, MissingDataError
from ..distributed import (agree, all_reduce_sum, evaluation_part, launch as _launch, linear_scaled_lr, setup, shard,
                           teardown, warmup_updates, wrap, _check_divisible, _launch_env)
from ..schedules import ConstantScheduler, LinearWarmup
from ..train import train
from . import profiles, results

__all__ = ["DDPRun", "main", "launch", "MODULE"]

MODULE = "lrlab.course.ddp"


@dataclasses.dataclass(frozen=True)
class DDPRun:
    """One data-parallel run of the course's ``d2l`` experiment (LeNet, Fashion-MNIST, SGD).

    ``base_lr`` is the rate at batch 256 (d2l: 0.3); ``scale="linear"`` multiplies it by
    ``global_batch / 256`` (Goyal et al.), ``"none"`` keeps it. ``warmup_epochs`` of a linear warmup
    from ``warmup_begin_lr``, counted in epochs and turned into updates at this global batch
    (:func:`lrlab.distributed.warmup_updates`). ``epochs``: default the profile's.
    """

    global_batch: int = 256
    base_lr: float = 0.3
    scale: str = "linear"
    warmup_epochs: float = 0.0
    warmup_begin_lr: float = 0.0
    momentum: float = 0.0
    seed: int = 0
    profile: Optional[str] = None
    epochs: Optional[int] = None
    max_batches: Optional[int] = None
    root: Optional[str] = None
    out: Optional[str] = None
    checkpoint: Optional[str] = None
    status: Optional[str] = None
    backend: Optional[str] = None

    def experiment(self) -> "profiles.Experiment":
        exp = profiles.experiment("d2l", self.profile)
        return exp if self.max_batches is None else dataclasses.replace(exp, max_batches=self.max_batches)

    @property
    def peak_lr(self) -> float:
        """The rate after the warmup: ``base_lr``, linearly scaled to the global batch when ``scale="linear"``."""
        return linear_scaled_lr(self.base_lr, self.global_batch, 256) if self.scale == "linear" else self.base_lr

    def updates_per_epoch(self, num_train: int) -> int:
        """``num_train // global_batch`` (the partial last global batch is dropped), at most ``max_batches``."""
        steps = num_train // self.global_batch
        return steps if self.max_batches is None else min(steps, self.max_batches)

    def warmup_updates(self, num_train: int) -> int:
        """The warmup's length in updates at this global batch (:func:`lrlab.distributed.warmup_updates`)."""
        return warmup_updates(self.warmup_epochs, self.global_batch,
                              self.updates_per_epoch(num_train) * self.global_batch)

    def schedule(self, num_train: int):
        """The rate of every update ``t`` (per update): the warmup, then ``peak_lr``."""
        w = self.warmup_updates(num_train)
        peak = ConstantScheduler(self.peak_lr)
        return LinearWarmup(peak, w, self.warmup_begin_lr) if w else peak

    def argv(self) -> list:
        """The command line that :meth:`parse` reads back into this run."""
        out = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and value != f.default:
                out += [f"--{f.name.replace('_', '-')}", str(value)]
        return out

    @classmethod
    def parse(cls, argv: Optional[Sequence[str]] = None) -> "DDPRun":
        """The run that a command line describes (``--global-batch 1024 --scale linear ...``)."""
        return cls(**vars(_parser().parse_args(argv)))


def _parser() -> argparse.ArgumentParser:
    def positive(kind):
        def parse(text):
            value = kind(text)
            if not math.isfinite(value) or value <= 0:
                raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
            return value
        return parse

    def non_negative(text):
        value = float(text)
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
        return value

    d = DDPRun()
    p = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m lrlab.course.ddp",
                                description="Data-parallel SGD (DDP) in d2l's setting (LeNet, Fashion-MNIST) at a "
                                            "global batch split across the processes torchrun starts.")
    p.add_argument("--global-batch", type=positive(int), default=d.global_batch,
                   help="examples per update on all processes together; a multiple of the world size (default: 256)")
    p.add_argument("--epochs", type=positive(int), default=None, help="default: the profile's")
    p.add_argument("--base-lr", type=positive(float), default=d.base_lr, help="the rate at batch 256 (d2l: 0.3)")
    p.add_argument("--scale", choices=("none", "linear"), default=d.scale,
                   help="linear: base-lr x global-batch / 256 (Goyal et al.); none: base-lr as given")
    p.add_argument("--warmup-epochs", type=non_negative, default=d.warmup_epochs,
                   help="linear warmup, in epochs (default 0)")
    p.add_argument("--warmup-begin-lr", type=non_negative, default=d.warmup_begin_lr,
                   help="the warmup's first rate (default 0; Goyal et al. start at the unscaled base-lr)")
    p.add_argument("--momentum", type=non_negative, default=d.momentum, help="SGD momentum (d2l: 0)")
    p.add_argument("--seed", type=int, default=d.seed, help="initial weights and the data order (default 0)")
    p.add_argument("--profile", choices=profiles.PROFILES, default=None, help="default: $LRLAB_PROFILE, else full")
    p.add_argument("--max-batches", type=positive(int), default=None,
                   help="at most this many updates (and test batches) per epoch")
    p.add_argument("--root", default=None, help="the datasets' folder (default: $LRLAB_DATA, else ~/.cache/lrlab)")
    p.add_argument("--out", default=None, help="CSV of the per-epoch rows, written by rank 0")
    p.add_argument("--checkpoint", default=None, help="written by rank 0 after every epoch; resumed from if present")
    p.add_argument("--status", default=None, help="JSON written by rank 0 at the end: why the run stopped, if it did")
    p.add_argument("--backend", choices=("gloo", "nccl"), default=None, help="default: nccl with CUDA, else gloo")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``torchrun ... -m lrlab.course.ddp [options]``: check the arguments, train, and write rank 0's files."""
    argv = sys.argv[1:] if argv is None else list(argv)
    argv = [a for a in argv if not a.startswith("--local-rank") and not a.startswith("--local_rank")]  # legacy launch
    run = DDPRun.parse(argv)
    try:  # every check that needs no process group, before it is set up
        world = _launch_env()["WORLD_SIZE"]
        exp = run.experiment()
        _check_divisible(run.global_batch, world, "--global-batch")
        epochs = exp.num_epochs if run.epochs is None else run.epochs
        env = setup(run.backend)
    except (ValueError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    try:
        error = None
        for turn in (0, 1):  # local rank 0 first (it may download), then the others read the files
            if (env.local_rank == 0) == (turn == 0):
                try:
                    train_iter, test_iter = exp.load_data(run.root, seed=run.seed, device=env.device)
                    loader = shard(train_iter, env.rank, env.world_size, global_batch=run.global_batch, seed=run.seed)
                except Exception as err:  # noqa: BLE001 - any failure must reach the other ranks
                    error = err
            agree(error, "loading the data", env.device)
        schedule = run.schedule(train_iter.X.shape[0])
        torch.manual_seed(run.seed)
        net = exp.make_model().to(env.device)
        optimizer = torch.optim.SGD(net.parameters(), lr=float(schedule(0)), momentum=run.momentum)
        checkpoint = None
        if run.checkpoint:
            checkpoint = Checkpoint(run.checkpoint, config={"run": dataclasses.asdict(run), "world_size": world},
                                    write=env.rank == 0, barrier=torch.distributed.barrier)
        start, history, _ = (0, None, {}) if checkpoint is None else checkpoint.restore(net, optimizer, None, loader,
                                                                                      env.device)
        _same_start(start, env.device)
        if env.rank == 0:
            print(f"lrlab.course.ddp: {world} x {run.global_batch // world} = global batch {run.global_batch} on "
                  f"{env.backend}, peak lr {run.peak_lr:g}, warmup {run.warmup_updates(train_iter.X.shape[0])} "
                  f"updates, {len(loader)} updates per epoch, {epochs} epochs", flush=True)
        callbacks = [RecordWeightNorm(), *([checkpoint] if checkpoint else []), _Report(env.rank, epochs)]
        # The net's default (contiguous) layout: channels_last changes the convolutions' rounding, and the
        # committed data-parallel rows were trained without it.
        history = train(wrap(net, env), loader, evaluation_part(test_iter, env.rank, env.world_size), epochs,
                        nn.CrossEntropyLoss(), optimizer, env.device, schedule, step_per="update", live=False,
                        channels_last=False, start_epoch=start, history=history, callbacks=callbacks,
                        reduce=all_reduce_sum)
        if env.rank == 0:
            title = exp.spec.title if exp.uses_real_data(run.root) else f"synthetic stand-in for {exp.spec.title}"
            rows = results.history_rows(history, experiment="ddp", variant=f"global{run.global_batch}_ranks{world}",
                                        schedule=f"{run.scale}_lr{run.peak_lr:g}_warmup{run.warmup_epochs:g}ep",
                                        seed=run.seed, data=f"{title}, {exp.profile} profile")
            if run.out:
                results.write_table(run.out, rows)
                print(f"lrlab.course.ddp: wrote {len(rows)} rows to {run.out}", flush=True)
            if run.status:
                results.write_atomic(run.status, json.dumps({"stopped": history.stopped, "epochs": len(rows)}) + "\n")
    except (ValueError, RuntimeError, MissingDataError, CorruptDataError) as err:
        raise SystemExit(f"error (rank {env.rank}): {err}") from None
    finally:
        teardown()
    return 0


def _same_start(start: int, device) -> None:
    """Every rank resumes from the same epoch (the checkpoint must be visible to all: one machine or a shared disk)."""
    seen = torch.tensor([start, -start], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(seen, op=torch.distributed.ReduceOp.MAX)
    if seen[0].item() != -seen[1].item():
        raise RuntimeError(f"the ranks resume from different epochs ({-seen[1].item():g} to {seen[0].item():g}): the "
                           f"checkpoint must be visible to every rank (one machine or a shared file system)")


class _Report:
    """Rank 0 prints a line per epoch."""

    def __init__(self, rank: int, epochs: int):
        self.rank, self.epochs = rank, epochs

    def on_epoch_end(self, state) -> None:
        if self.rank == 0:
            h = state.history
            print(f"epoch {state.epoch + 1}/{self.epochs}  lr {h.lr[-1]:.4g}  train loss {h.train_loss[-1]:.4f}  "
                  f"train acc {h.train_acc[-1]:.4f}  test acc {h.test_acc[-1]:.4f}  {h.seconds[-1]:.1f} s", flush=True)


def launch(run: DDPRun, nproc_per_node: int = 2, *, echo: bool = True) -> str:
    """``run`` under ``torchrun --standalone --nproc_per_node=N -m lrlab.course.ddp`` from Python; its output."""
    return _launch(MODULE, run.argv(), nproc_per_node, echo=echo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
