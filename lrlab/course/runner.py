"""``make results``: train the course's reference runs (:mod:`lrlab.course.studies`), safe to stop.

``python -m lrlab.course.runner [STUDY ...]`` trains each study in the ``full`` profile and writes its
tidy table and provenance under ``book/results/`` (:mod:`lrlab.course.results`). Arguments are checked
and the data loaded before any training. Each run is :func:`lrlab.train` with three callbacks: the
weight norm of every epoch, a line of progress, and a :class:`lrlab.Checkpoint` saved atomically after
every epoch to ``<results>/.runs/<run>.pt`` (net, optimizer, scheduler, the loader's and torch's random
state, the history, and an arm's weight average, which is a fourth callback). A new invocation resumes each unfinished run from its last epoch and gives the
same rows as an uninterrupted run; a run whose rows are in the table (at the rates its arm says) is
never redone; a damaged checkpoint stops the runner with its name and the fix, and is never loaded
unsafely. Studies whose arms depend on earlier results (a search's choice) are trained in rounds,
until every run they plan is done. Data-parallel arms run :mod:`lrlab.course.ddp` under torchrun.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .. import data as _data
from ..callbacks import Checkpoint, CheckpointError, RecordWeightNorm, StopAfter
from ..device import check_device, try_gpu
from ..train import train
from . import profiles as _profiles
from . import provenance
from . import results as _results
from .ddp import launch as _launch_ddp
from .studies import (DDP_PROCESSES, STUDIES, VALIDATION_SPLIT_SEED, Budget, RunSpec, arm_data_label, plan,
                      validation_size)

__all__ = ["run", "main", "finished", "checkpoint_path"]


# --------------------------------------------------------------------------- one run


def _config(cfg: _profiles.Experiment, label: str, device: torch.device) -> dict:
    """What a checkpoint must match to be resumed."""
    return {"profile": cfg.profile, "num_epochs": cfg.num_epochs, "batch_size": cfg.batch_size,
            "max_batches": cfg.max_batches, "data": label, "device": device.type}


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


class _Rows:
    """After every epoch: the row of the table, to ``on_epoch(spec, row, num_epochs)``."""

    def __init__(self, spec: RunSpec, labels: dict, num_epochs: int, on_epoch):
        self.spec, self.labels, self.num_epochs, self.on_epoch = spec, labels, num_epochs, on_epoch

    def on_epoch_end(self, state) -> None:
        if self.on_epoch is not None:
            last = _results.history_rows(state.history, **self.labels)[-1]
            self.on_epoch(self.spec, last, self.num_epochs)


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
    out = Path(out)
    arm = study.arm(spec.variant, spec.schedule, out)
    device = try_gpu() if device is None else check_device(device)
    label, (train_iter, test_iter) = loaded or study.data(cfg, root, spec.seed, device)
    label = arm_data_label(arm, label)
    if arm.ddp is not None:
        return _run_ddp(spec, out, cfg, arm, label, num_train=train_iter.X.shape[0], root=root, device=device,
                        command=command, echo=on_epoch is not None)
    # A fresh loader over the same tensors: its shuffling starts from the run's seed, whatever ran before.
    train_iter = _data.TensorLoader(train_iter.X, train_iter.y, train_iter.batch_size, shuffle=True,
                                    seed=spec.seed, max_batches=train_iter.max_batches,
                                    transform=train_iter.transform)
    valid_iter = None
    if arm.holdout:  # a search: choose on held-out training examples, never on the test set
        train_iter, valid_iter = _data.validation_split(train_iter, validation_size(train_iter.X.shape[0]),
                                                        seed=VALIDATION_SPLIT_SEED)
        test_iter = None
    budget = Budget(cfg, len(train_iter), train_iter.X.shape[0])
    num_epochs = arm.num_epochs(cfg)

    torch.manual_seed(spec.seed)
    net = cfg.make_model().to(device)
    optimizer = arm.make_optimizer(net.parameters(), budget)
    scheduler = arm.make_scheduler(optimizer, budget)
    average = arm.average(net, budget) if arm.average is not None else None
    session_start, resumed = time.perf_counter(), {}
    checkpoint = Checkpoint(checkpoint_path(out, spec), config=_config(cfg, label, device),
                            stateful={} if average is None else {"average": average},
                            extra=lambda: {"wall_seconds": resumed.get("wall_seconds", 0.0)
                                           + time.perf_counter() - session_start,
                                           "sessions": resumed.get("sessions", 0) + 1,
                                           "started": resumed.get("started", started)})
    started = provenance.now()
    start, history, resumed = checkpoint.restore(net, optimizer, scheduler, train_iter, device)
    if start and on_epoch is not None:
        print(f"{spec.id}: resuming after epoch {start} of {num_epochs}", flush=True)
    labels = {"experiment": study.name, "variant": spec.variant, "schedule": spec.schedule, "seed": spec.seed,
              "data": label}
    callbacks = [*([average] if average is not None else []), RecordWeightNorm(), checkpoint,
                 _Rows(spec, labels, num_epochs, on_epoch)]
    if stop_after is not None:
        callbacks.append(StopAfter(stop_after))
    if start >= num_epochs or (stop_after is not None and start >= stop_after):
        return _results.history_rows(history, **labels) if history is not None else []
    history = train(net, train_iter, test_iter, num_epochs, nn.CrossEntropyLoss(), optimizer, device, scheduler,
                    live=False, step_per=arm.step_per, valid_iter=valid_iter, start_epoch=start, history=history,
                    callbacks=callbacks)
    rows = _results.history_rows(history, **labels)
    if stop_after is not None and len(rows) < num_epochs and history.stopped is None:
        return rows  # interrupted on purpose: the checkpoint stays, nothing goes into the table
    extra = checkpoint.extra()
    _results.record_run(out, study.name, rows, {spec.id: provenance.entry(provenance.device_text(device), cfg, label, extra["started"],
                                                         extra["wall_seconds"], command, history.stopped,
                                                         sessions=extra["sessions"])})
    checkpoint.remove()
    return rows


def _run_ddp(spec: RunSpec, out: Path, cfg: _profiles.Experiment, arm, label: str, *, num_train: int, root, device,
             command: str, echo: bool) -> list:
    """A data-parallel arm: :mod:`lrlab.course.ddp` under torchrun, which checkpoints after every epoch and
    resumes from it; its rows (rank 0's CSV) go into the table, and its status says whether it stopped."""
    checkpoint = checkpoint_path(out, spec)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    csv, status = checkpoint.with_suffix(".csv"), checkpoint.with_suffix(".status.json")
    # nccl needs a GPU per process; with fewer GPUs than processes the processes train on the CPU (gloo)
    backend = "nccl" if device.type == "cuda" and torch.cuda.device_count() >= DDP_PROCESSES else "gloo"
    device = device if backend == "nccl" else torch.device("cpu")
    ddp = arm.ddp_run(cfg, spec.seed, root=None if root is None else str(root), out=str(csv),
                      checkpoint=str(checkpoint), status=str(status), backend=backend)
    resumed, started = checkpoint.exists(), provenance.now()
    _launch_ddp(ddp, DDP_PROCESSES, echo=echo)
    frame = _results.read_table(csv).assign(experiment=spec.study, variant=spec.variant, schedule=spec.schedule,
                                            seed=spec.seed, data=label)
    rows = frame.to_dict("records")
    stopped = json.loads(status.read_text())["stopped"]
    device_text = f"{provenance.device_text(device, threads=False)}, {DDP_PROCESSES} processes ({backend}) under torchrun"
    _results.record_run(out, spec.study, rows, {spec.id: provenance.entry(device_text, cfg, label, started,
                                                         sum(r["seconds"] for r in rows), command, stopped,
                                                         resumed=resumed)})
    for path in (checkpoint, csv, status):
        path.unlink(missing_ok=True)
    return rows


def finished(out: Path, spec: RunSpec, cfg: _profiles.Experiment, label: str) -> bool:
    """True when the table already holds this run (all epochs, or up to where it stopped), at its arm's rates."""
    table = Path(out) / f"{spec.study}.csv"
    if not table.exists():
        return False
    arm = STUDIES[spec.study].arm(spec.variant, spec.schedule, out)
    frame = _results.read_table(table)
    mine = frame[(frame.variant == spec.variant) & (frame.schedule == spec.schedule) & (frame.seed == spec.seed)
                 & (frame.data == arm_data_label(arm, label))].sort_values("epoch")
    if mine.empty:
        return False
    if not math.isclose(float(mine["lr"].iloc[0]), arm.rates(Budget.of(cfg))(0), rel_tol=1e-12, abs_tol=0.0):
        return False  # trained at another rate (its input, e.g. the range test, has changed): train it again
    if len(mine) == arm.num_epochs(cfg):
        return True
    prov = _results.read_provenance(table.with_name(f"{spec.study}.provenance.json"))["runs"].get(spec.id, {})
    return bool(prov.get("stopped"))


# --------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lrlab.course.runner",
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
        out = Path(__file__).resolve().parents[2] / "book" / "results"
    else:
        out = Path(args.out)
    try:
        plan(args.studies, args.seeds)  # checks the names and seeds
        device = try_gpu() if args.device is None else check_device(args.device)
    except (ValueError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    command = "python -m lrlab.course.runner " + " ".join(argv if argv is not None else sys.argv[1:])
    provenance.git_commit()  # the code this process runs, before anyone edits the checkout
    # Before any training: each study's data loaded once (a missing file fails here, not after an hour),
    # and every unfinished run's checkpoint read (a damaged one is named here, with the fix).
    loaded, cfgs = {}, {}
    for name in dict.fromkeys(args.studies):
        cfgs[name] = _profiles.experiment(STUDIES[name].experiment, profile)
        try:
            loaded[name] = STUDIES[name].data(cfgs[name], args.root, 0, device)
        except (_data.MissingDataError, _data.CorruptDataError) as err:
            raise SystemExit(f"error: {err}") from None
    try:
        for r in plan(args.studies, args.seeds, out):
            if checkpoint_path(out, r).exists() and STUDIES[r.study].arm(r.variant, r.schedule, out).ddp is None:
                label = arm_data_label(STUDIES[r.study].arm(r.variant, r.schedule, out), loaded[r.study][0])
                Checkpoint(checkpoint_path(out, r), config=_config(cfgs[r.study], label, device)).read()
    except CheckpointError as err:
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
        try:
            _run_round(todo, len(runs), out, cfgs, loaded, args.root, device, command)
        except CheckpointError as err:
            raise SystemExit(f"error: {err}") from None
    print(f"all {len(runs)} runs are in {out}", flush=True)
    return 0


def _run_round(todo: list, planned: int, out: Path, cfgs: dict, loaded: dict, root, device, command: str) -> None:
    """Train ``todo`` (of ``planned`` runs), printing each epoch with an estimate of the time left."""
    print(f"{planned - len(todo)} of {planned} runs already done; {len(todo)} to go, into {out} "
          f"on {provenance.device_text(device)}", flush=True)
    # Time left: each study's mean seconds per epoch so far, times its epochs still to train.
    epoch_seconds: dict = {}
    remaining = {name: 0 for name in cfgs}
    for r in todo:
        saved = checkpoint_path(out, r)
        done_epochs = torch.load(saved, weights_only=True)["epoch"] if saved.exists() else 0
        remaining[r.study] += STUDIES[r.study].arm(r.variant, r.schedule, out).num_epochs(cfgs[r.study]) - done_epochs
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
