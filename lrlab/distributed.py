"""Data-parallel training on a real distributed engine: ``torch.distributed`` and ``DistributedDataParallel``.

What it holds:

* :class:`ShardedLoader` (and :func:`shard`): the epoch order of a seeded :class:`lrlab.TensorLoader`
  split across processes. Every rank draws the same permutation; each global batch of ``B`` examples
  is cut into ``world_size`` equal contiguous parts and rank ``r`` takes part ``r``. So the ranks'
  local batches of step ``k`` together are exactly batch ``k`` of ``TensorLoader(X, y, B, shuffle=True,
  seed=s)``: one run on ``W`` processes sees the data in the order of one process at batch ``B``.
* :func:`linear_scaled_lr` and :func:`warmup_updates`: Goyal et al.'s linear scaling rule and a warmup
  counted in updates that always lasts the same number of epochs.
* :func:`setup` / :func:`teardown`: the process group, from the environment ``torchrun`` sets.
* :func:`train_ddp`: SGD on a ``DistributedDataParallel`` net under a schedule ``t -> lr``, with
  metrics reduced across ranks; :func:`main`, the command; :func:`launch`, the command under
  ``torchrun`` from Python (a notebook, the experiment runner).

Launch (one process per GPU, or a few per CPU machine)::

    torchrun --standalone --nproc_per_node=2 -m lrlab.distributed --global-batch 1024 --scale linear \\
        --warmup-epochs 5 --out ddp.csv
    # two machines: run this on each, with --node_rank=0 and --node_rank=1
    torchrun --nnodes=2 --node_rank=0 --rdzv_backend=c10d --rdzv_endpoint=host:29500 \\
        --nproc_per_node=4 -m lrlab.distributed --global-batch 8192 --out ddp.csv

Why equal local batches: DDP averages the ranks' gradients with equal weight, and each rank's loss is
the mean over its local batch. The mean of ``W`` means equals the mean over the global batch only when
the local batches have equal size. Hence the global batch must be divisible by the world size, and
the last, partial global batch of an epoch (``n % B`` examples) is **dropped**: each epoch has
``n // B`` updates, and the ``n % B`` examples left out differ from epoch to epoch (the permutation
does). With ``n % B == 0`` every example is seen exactly once per epoch.

References: Goyal, Dollar, Girshick, Noordhuis, Wesolowski, Kyrola, Tulloch, Jia, He (2017), "Accurate,
Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677; PyTorch's documentation of
``torch.nn.parallel.DistributedDataParallel``, ``torch.distributed`` and ``torchrun``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import nn

from .data import TensorLoader
from .schedules import _checked_rate
from .train import group_momentum, weight_norm

__all__ = ["ShardedLoader", "shard", "linear_scaled_lr", "warmup_updates", "DistEnv", "setup", "teardown",
           "train_ddp", "main", "launch"]

_LAUNCH = "run it with torchrun --nproc_per_node=N -m lrlab.distributed ..."
_ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {name}={value!r}")
    return value


def _check_divisible(global_batch: int, world_size: int, name: str = "global batch") -> None:
    """ValueError unless every one of ``world_size`` processes gets the same share of ``global_batch``."""
    if global_batch % world_size:
        lo, hi = global_batch // world_size * world_size, -(-global_batch // world_size) * world_size
        raise ValueError(
            f"{name} {global_batch} is not divisible by the world size {world_size} (the number of processes): every "
            f"process must get the same number of examples (DDP averages their gradients with equal weight); use a "
            f"global batch that is a multiple of {world_size}, e.g. {hi}" + (f" or {lo}" if lo else ""))


# --------------------------------------------------------------------------- the data


class ShardedLoader:
    """Rank ``rank``'s share of every global batch of a seeded shuffling loader (see the module docstring).

    Each epoch draws ``torch.randperm(n, generator=g)`` from a generator seeded with ``seed``, exactly as
    ``TensorLoader(X, y, global_batch, shuffle=True, seed=seed)`` does, on every rank. Step ``k`` yields
    ``order[k*B + r*b : k*B + (r+1)*b]`` with ``b = B // world_size``. ``len()`` is the number of steps
    (updates) per epoch, ``n // B`` (the partial last global batch is dropped), at most ``max_batches``.
    ``state_dict()`` / ``load_state_dict()`` save and restore the shuffling state, as TensorLoader's.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, global_batch: int, rank: int, world_size: int, *,
                 seed: int, max_batches: Optional[int] = None, transform: Optional[Callable] = None, device=None):
        if (not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor) or X.dim() == 0
                or X.shape[:1] != y.shape[:1]):
            raise ValueError("ShardedLoader: X and y must be tensors with the same first dimension (one row each)")
        world_size = _int("world_size", world_size)
        _int("rank", rank, 0)
        if rank >= world_size:
            raise ValueError(f"rank must be in 0..world_size - 1 = {world_size - 1}; got rank={rank}")
        global_batch = _int("global_batch", global_batch)
        _check_divisible(global_batch, world_size)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, the same on every rank (they draw the same order); got {seed!r}")
        if max_batches is not None:
            _int("max_batches", max_batches)
        if X.shape[0] < global_batch:
            raise ValueError(f"the global batch {global_batch} is larger than the dataset ({X.shape[0]} examples): "
                             f"an epoch would have no update; use a smaller global batch")
        if device is not None:
            X, y = X.to(device), y.to(device)
        self.X, self.y, self.transform = X, y, transform
        self.global_batch, self.rank, self.world_size = global_batch, rank, world_size
        self.local_batch = global_batch // world_size
        self.seed, self.max_batches = seed, max_batches
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        steps = self.X.shape[0] // self.global_batch
        return steps if self.max_batches is None else min(steps, self.max_batches)

    @property
    def num_examples(self) -> int:
        """Examples per epoch on all ranks together: ``len(self) * global_batch``."""
        return len(self) * self.global_batch

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(self.X.shape[0], generator=self._generator).to(self.X.device)
        for k in range(len(self)):
            start = k * self.global_batch + self.rank * self.local_batch
            idx = order[start:start + self.local_batch]
            Xb = self.X[idx]
            yield (Xb if self.transform is None else self.transform(Xb)), self.y[idx]

    def state_dict(self) -> dict:
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"generator"}:
            raise ValueError(f"ShardedLoader.load_state_dict: expected the key 'generator', got {sorted(state)}")
        self._generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (f"ShardedLoader({self.X.shape[0]} examples, global_batch={self.global_batch}, rank {self.rank} of "
                f"{self.world_size} (local batch {self.local_batch}), seed={self.seed}, {len(self)} steps per epoch)")


def shard(loader: TensorLoader, rank: int, world_size: int, *, global_batch: Optional[int] = None,
          seed: Optional[int] = None, max_batches: Optional[int] = None) -> ShardedLoader:
    """A :class:`ShardedLoader` over ``loader``'s tensors and transform; by default its batch size (as the
    global batch), its seed and its ``max_batches``."""
    seed = loader.seed if seed is None else seed
    if seed is None:
        raise ValueError("shard: the loader has no seed; pass seed= (the same on every rank)")
    return ShardedLoader(loader.X, loader.y, loader.batch_size if global_batch is None else global_batch, rank,
                         world_size, seed=seed, max_batches=loader.max_batches if max_batches is None else max_batches,
                         transform=loader.transform)


# --------------------------------------------------------------------------- large-batch rules


def _finite(name: str, value, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}; got {name}={value!r}")
    return float(value)


def linear_scaled_lr(base_lr: float, global_batch: int, base_batch: int = 256) -> float:
    """Goyal et al.'s linear scaling rule: ``base_lr * global_batch / base_batch``.

    "When the minibatch size is multiplied by k, multiply the learning rate by k": ``base_lr`` is the rate
    tuned at ``base_batch`` (Goyal et al.: 0.1 at 256, so 3.2 at 8192; d2l: 0.3 at 256). It holds while the
    rate is not too large for the early, fast-changing network: pair it with :func:`warmup_updates`.
    """
    base_lr = _finite("base_lr", base_lr, positive=True)
    return base_lr * _int("global_batch", global_batch) / _int("base_batch", base_batch)


def warmup_updates(epochs: float, global_batch: int, num_examples: int) -> int:
    """A warmup of ``epochs`` epochs in updates at this global batch: ``ceil(epochs * (num_examples // global_batch))``.

    An epoch is ``num_examples // global_batch`` updates (the partial last batch dropped, as in
    :class:`ShardedLoader`), so whole epochs give whole epochs (5 epochs at 8192 on 60,000 examples: 7
    updates per epoch, 35 updates); a fraction of an epoch is rounded up, so a warmup never vanishes.

    The pitfall this avoids: a warmup written in iterations changes meaning with the batch. d2l's 5 epochs
    at batch 256 on Fashion-MNIST are 5 * 234 = 1170 updates; kept as "1170 updates" on 8 ranks of 256
    (global 2048, 29 updates per epoch) it lasts about 40 epochs; the other way round, 35 updates tuned at
    8192 are 0.15 epochs at 256. Give warmups in epochs and convert them here, for each global batch.
    """
    epochs = _finite("epochs", epochs, positive=False)
    per_epoch = _int("num_examples", num_examples) // _int("global_batch", global_batch)
    if per_epoch == 0:
        raise ValueError(f"global_batch {global_batch} is larger than num_examples {num_examples}: no update per epoch")
    return math.ceil(round(epochs * per_epoch, 9))


# --------------------------------------------------------------------------- the process group


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its global ``rank``, the ``world_size``, its ``local_rank`` on the machine,
    the ``backend`` and the ``device`` it trains on (``cuda:LOCAL_RANK`` with nccl, the CPU with gloo)."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device


def _launch_env() -> dict:
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT as torchrun sets them, checked."""
    missing = [v for v in _ENV_VARS if not os.environ.get(v)]
    if missing:
        raise RuntimeError(f"the environment variable(s) {', '.join(missing)} that torchrun sets are missing: this "
                           f"process was not started by torchrun; {_LAUNCH}")
    try:
        env = {v: int(os.environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    except ValueError as err:
        raise RuntimeError(f"RANK, WORLD_SIZE, LOCAL_RANK and MASTER_PORT must be integers ({err}); {_LAUNCH}") \
            from None
    if env["WORLD_SIZE"] < 1 or not 0 <= env["RANK"] < env["WORLD_SIZE"] or env["LOCAL_RANK"] < 0:
        raise RuntimeError(f"RANK={env['RANK']}, WORLD_SIZE={env['WORLD_SIZE']}, LOCAL_RANK={env['LOCAL_RANK']} are "
                           f"inconsistent (need 0 <= RANK < WORLD_SIZE); {_LAUNCH}")
    return env


def setup(backend: Optional[str] = None, *, timeout=None) -> DistEnv:
    """Join the process group that ``torchrun`` set up (``init_method="env://"``) and return the :class:`DistEnv`.

    ``backend``: ``"nccl"`` (CUDA GPUs; the default where CUDA is available) or ``"gloo"`` (the CPU; the
    default otherwise). With nccl the process works on GPU ``LOCAL_RANK`` (``torch.cuda.set_device``).
    Without torchrun's environment, with nccl but no CUDA, or with a group already set up: RuntimeError.
    ``timeout`` (a ``datetime.timedelta``) goes to ``init_process_group``.
    """
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPU) or 'nccl' (CUDA GPUs); got backend={backend!r}")
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed support")
    if backend == "nccl" and not torch.cuda.is_available():
        raise RuntimeError("backend 'nccl' needs CUDA GPUs and this machine has none (torch.cuda.is_available() is "
                           "False); use backend 'gloo' (the default without CUDA) to train on the CPU")
    if not (dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available()):
        raise RuntimeError(f"this PyTorch build has no {backend} backend; use the other one")
    env = _launch_env()
    if dist.is_initialized():
        raise RuntimeError("a process group is already set up in this process; call lrlab.distributed.teardown() first")
    device, extra = torch.device("cpu"), {}
    if backend == "nccl":
        if env["LOCAL_RANK"] >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={env['LOCAL_RANK']} but this machine has {torch.cuda.device_count()} GPUs: "
                               f"start at most that many processes per machine (--nproc_per_node)")
        device = torch.device("cuda", env["LOCAL_RANK"])
        torch.cuda.set_device(device)
        extra["device_id"] = device
    if timeout is not None:
        extra["timeout"] = timeout
    dist.init_process_group(backend=backend, init_method="env://", rank=env["RANK"], world_size=env["WORLD_SIZE"],
                            **extra)
    return DistEnv(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], backend, device)


def teardown() -> None:
    """Leave the process group (``destroy_process_group``); nothing to do if there is none."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- training


def _evaluate(net: nn.Module, test_iter: TensorLoader, loss: Callable, device) -> Tuple[float, float]:
    """(accuracy, mean loss) on the first ``test_iter.num_examples`` examples, each rank a contiguous part, summed."""
    m, rank, world = test_iter.num_examples, dist.get_rank(), dist.get_world_size()
    lo, hi = rank * m // world, (rank + 1) * m // world
    stats = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for s in range(lo, hi, test_iter.batch_size):
            X, y = test_iter.X[s:min(s + test_iter.batch_size, hi)], test_iter.y[s:min(s + test_iter.batch_size, hi)]
            X = (X if test_iter.transform is None else test_iter.transform(X)).to(device)
            y_hat, y = net(X), y.to(device)
            stats += torch.stack([loss(y_hat, y).double() * len(y), (y_hat.argmax(1) == y).sum().double(),
                                  torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
    net.train(was_training)
    dist.all_reduce(stats)
    return (stats[1] / stats[2]).item(), (stats[0] / stats[2]).item()


def _save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_ddp(net: nn.Module, train_loader: ShardedLoader, test_iter: Optional[TensorLoader], num_epochs: int,
              schedule: Callable, *, step_per: str = "update", momentum: float = 0.0, weight_decay: float = 0.0,
              loss: Optional[Callable] = None, labels: Optional[dict] = None, checkpoint=None,
              on_epoch: Optional[Callable[[dict], None]] = None) -> list:
    """Train ``net`` with SGD, wrapped in ``DistributedDataParallel``, for ``num_epochs``; return one row per epoch.

    Call on every rank after :func:`setup`, with the net on this rank's device, the same initial weights
    (DDP also broadcasts rank 0's) and ``train_loader`` this rank's :class:`ShardedLoader`. ``schedule(t)``
    is set on every parameter group before update ``t`` (``step_per="update"``) or epoch ``t``
    (``"epoch"``). ``loss`` (default ``nn.CrossEntropyLoss()``) must average over the local batch.

    After every epoch the training loss and accuracy are summed over all ranks (``all_reduce`` of loss x
    count, correct, count), and ``test_iter`` (an unshuffled TensorLoader, or None) is evaluated in equal
    contiguous parts by all ranks and reduced the same way, so every rank gets the same rows. Rows have
    the columns of :data:`lrlab.results.COLUMNS`: ``labels`` gives experiment, variant, schedule, seed,
    data; ``lr`` is the rate of the epoch's first update; ``seconds`` this rank's wall time.

    ``checkpoint``: a path that rank 0 alone writes (atomically) after every epoch: net, optimizer, loader,
    rows. If it exists when called, every rank resumes from it (it must be visible to every rank: one
    machine or a shared file system; the ranks check that they agree). A non-finite training loss stops
    training after that epoch on all ranks (the reduced loss is the same on all).
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"train_ddp needs a process group: call lrlab.distributed.setup() first ({_LAUNCH})")
    rank, world = dist.get_rank(), dist.get_world_size()
    if (train_loader.rank, train_loader.world_size) != (rank, world):
        raise ValueError(f"train_loader is rank {train_loader.rank} of {train_loader.world_size}, but this process is "
                         f"rank {rank} of {world}: build it with shard(loader, env.rank, env.world_size)")
    _int("num_epochs", num_epochs, 0)
    if step_per not in ("update", "epoch"):
        raise ValueError(f"step_per must be 'update' or 'epoch'; got {step_per!r}")
    loss = nn.CrossEntropyLoss() if loss is None else loss
    device = next(net.parameters()).device
    optimizer = torch.optim.SGD(net.parameters(), lr=_checked_rate(schedule(0), "schedule(0)"), momentum=momentum,
                                weight_decay=weight_decay)
    config = {"global_batch": train_loader.global_batch, "steps": len(train_loader), "seed": train_loader.seed}
    rows, start = [], 0
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None:
        if path.exists():
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state["config"] != config:
                raise RuntimeError(f"{path} was saved for {state['config']}, this run is {config}; "
                                   f"delete it to start over")
            net.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            train_loader.load_state_dict(state["loader"])
            rows, start = state["rows"], state["epoch"]
        seen = torch.tensor([start, -start], dtype=torch.float64, device=device)
        dist.all_reduce(seen, op=dist.ReduceOp.MAX)
        if seen[0].item() != -seen[1].item():
            raise RuntimeError(f"the ranks resume from different epochs ({-seen[1].item():g} to {seen[0].item():g}): "
                               f"{path} must be visible to every rank (one machine or a shared file system)")
    ddp = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    labels = {"experiment": "ddp", "variant": f"global{train_loader.global_batch}_ranks{world}",
              "schedule": type(schedule).__name__, "seed": train_loader.seed,
              "data": f"{train_loader.X.shape[0]} examples", **(labels or {})}
    update = start * len(train_loader)

    def set_lr(t):
        lr = _checked_rate(schedule(t), f"schedule({t})")
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    for epoch in range(start, num_epochs):
        tick = time.perf_counter()
        epoch_lr = set_lr(epoch) if step_per == "epoch" else None
        stats = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
        ddp.train()
        for X, y in train_loader:
            lr = set_lr(update) if step_per == "update" else epoch_lr
            epoch_lr = lr if epoch_lr is None else epoch_lr
            X, y = X.to(device), y.to(device)
            y_hat = ddp(X)
            batch_loss = loss(y_hat, y)  # the mean over the local batch
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()  # DDP all-reduces (averages) the gradients here
            optimizer.step()
            update += 1
            with torch.no_grad():
                stats += torch.stack([batch_loss.detach().double() * len(y), (y_hat.argmax(1) == y).sum().double(),
                                      torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
        dist.all_reduce(stats)
        train_loss, train_acc = (stats[0] / stats[2]).item(), (stats[1] / stats[2]).item()
        finite = math.isfinite(train_loss)
        test_acc, test_loss = (_evaluate(net, test_iter, loss, device) if finite and test_iter is not None
                               else (math.nan, math.nan))
        rows.append({**labels, "epoch": epoch, "lr": epoch_lr, "momentum": group_momentum(optimizer.param_groups[0]),
                     "train_loss": train_loss, "train_acc": train_acc, "val_loss": math.nan, "val_acc": math.nan,
                     "test_loss": test_loss, "test_acc": test_acc, "seconds": time.perf_counter() - tick,
                     "weight_norm": weight_norm(net)})
        if path is not None:
            if rank == 0:
                _save_atomic({"config": config, "epoch": epoch + 1, "rows": rows, "net": net.state_dict(),
                              "optimizer": optimizer.state_dict(), "loader": train_loader.state_dict()}, path)
            dist.barrier()  # nobody reads the checkpoint before rank 0 has written it
        if on_epoch is not None:
            on_epoch(rows[-1])
        if not finite:
            break
    return rows


# --------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    from .profiles import PROFILES

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

    p = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m lrlab.distributed",
                                description="Data-parallel SGD (DDP) in d2l's setting (LeNet, Fashion-MNIST) at a "
                                            "global batch split across the processes torchrun starts.")
    p.add_argument("--global-batch", type=positive(int), default=None,
                   help="examples per update on all processes together; a multiple of the world size (default: 256)")
    p.add_argument("--epochs", type=positive(int), default=None, help="default: the profile's")
    p.add_argument("--base-lr", type=positive(float), default=0.3, help="the rate at batch 256 (d2l: 0.3)")
    p.add_argument("--scale", choices=("none", "linear"), default="linear",
                   help="linear: base-lr x global-batch / 256 (Goyal et al.); none: base-lr as given")
    p.add_argument("--warmup-epochs", type=non_negative, default=0.0, help="linear warmup, in epochs (default 0)")
    p.add_argument("--warmup-begin-lr", type=non_negative, default=0.0,
                   help="the warmup's first rate (default 0; Goyal et al. start at the unscaled base-lr)")
    p.add_argument("--momentum", type=non_negative, default=0.0, help="SGD momentum (d2l: 0)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and the data order (default 0)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="default: $LRLAB_PROFILE, else full")
    p.add_argument("--max-batches", type=positive(int), default=None,
                   help="at most this many updates (and test batches) per epoch")
    p.add_argument("--root", default=None, help="the datasets' folder (default: $LRLAB_DATA, else ~/.cache/lrlab)")
    p.add_argument("--out", default=None, help="CSV of the per-epoch rows, written by rank 0")
    p.add_argument("--checkpoint", default=None, help="written by rank 0 after every epoch; resumed from if present")
    p.add_argument("--backend", choices=("gloo", "nccl"), default=None, help="default: nccl with CUDA, else gloo")
    p.add_argument("--local-rank", "--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # legacy launch
    return p


def _agree(error: Optional[BaseException], what: str, device) -> None:
    """Raise on every rank if ``what`` failed on any rank (so no rank goes on to wait in a collective)."""
    failed = torch.tensor([0.0 if error is None else 1.0], device=device)
    dist.all_reduce(failed)
    if error is not None:
        raise error
    if failed.item():
        raise RuntimeError(f"{what} failed on {failed.item():g} other rank(s); see their messages")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``torchrun ... -m lrlab.distributed [options]``: check the arguments, train, and write rank 0's CSV."""
    from . import profiles, results
    from .data import CorruptDataError, MissingDataError
    from .schedules import ConstantScheduler, LinearWarmup

    args = _parser().parse_args(argv)
    try:  # every check that needs no process group, before it is set up
        world = _launch_env()["WORLD_SIZE"]
        exp = profiles.experiment("d2l", args.profile)
        if args.max_batches is not None:
            exp = dataclasses.replace(exp, max_batches=args.max_batches)
        batch = exp.batch_size if args.global_batch is None else args.global_batch
        _check_divisible(batch, world, "--global-batch")
        peak = linear_scaled_lr(args.base_lr, batch, exp.batch_size) if args.scale == "linear" else args.base_lr
        epochs = exp.num_epochs if args.epochs is None else args.epochs
        env = setup(args.backend)
    except (ValueError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    try:
        loaded, error = None, None
        for turn in (0, 1):  # local rank 0 first (it may download), then the others read the files
            if (env.local_rank == 0) == (turn == 0):
                try:
                    train_iter, test_iter = exp.load_data(args.root, seed=args.seed, device=env.device)
                    loaded = shard(train_iter, env.rank, env.world_size, global_batch=batch, seed=args.seed)
                    warmup = warmup_updates(args.warmup_epochs, batch, loaded.num_examples)
                except Exception as err:  # noqa: BLE001 - any failure must reach the other ranks
                    error = err
            _agree(error, "loading the data", env.device)
        schedule = ConstantScheduler(peak)
        if warmup:
            schedule = LinearWarmup(schedule, warmup, args.warmup_begin_lr)
        torch.manual_seed(args.seed)
        net = exp.make_model().to(env.device)
        title = exp.spec.title if exp.uses_real_data(args.root) else f"synthetic stand-in for {exp.spec.title}"
        labels = {"experiment": "ddp", "variant": f"global{batch}_ranks{world}",
                  "schedule": f"{args.scale}_lr{peak:g}_warmup{args.warmup_epochs:g}ep", "seed": args.seed,
                  "data": f"{title}, {exp.profile} profile"}
        if env.rank == 0:
            print(f"lrlab.distributed: {world} x {batch // world} = global batch {batch} on {env.backend}, peak lr "
                  f"{peak:g}, warmup {warmup} updates, {len(loaded)} updates per epoch, {epochs} epochs", flush=True)

        def report(row):
            if env.rank == 0:
                print(f"epoch {row['epoch'] + 1}/{epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  "
                      f"train acc {row['train_acc']:.4f}  test acc {row['test_acc']:.4f}  {row['seconds']:.1f} s",
                      flush=True)

        rows = train_ddp(net, loaded, test_iter, epochs, schedule, momentum=args.momentum, labels=labels,
                         checkpoint=args.checkpoint, on_epoch=report)
        if env.rank == 0 and args.out:
            results.write_table(args.out, rows)
            print(f"lrlab.distributed: wrote {len(rows)} rows to {args.out}", flush=True)
    except (ValueError, RuntimeError, MissingDataError, CorruptDataError) as err:
        raise SystemExit(f"error (rank {env.rank}): {err}") from None
    finally:
        teardown()
    return 0


def launch(argv: Sequence, nproc_per_node: int = 2, *, echo: bool = True) -> str:
    """Run ``torchrun --standalone --nproc_per_node=N -m lrlab.distributed ARGV`` and return its output.

    The processes start on this machine (``--standalone``: torchrun picks a free port), with this
    Python and this process's environment (so ``LRLAB_DATA``, ``LRLAB_PROFILE`` carry over). Their
    output (stdout and stderr) is printed line by line as it comes when ``echo`` (a notebook shows it,
    which a bare ``subprocess.run`` would not). A non-zero exit raises RuntimeError with the processes'
    ``error`` lines (else the last lines of the output).
    """
    nproc_per_node = _int("nproc_per_node", nproc_per_node)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}",
               "-m", "lrlab.distributed", *(str(a) for a in argv)]
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
    if proc.returncode:
        said = [line for line in lines if line.startswith("error")][:4] or lines[-15:]  # main's own messages first
        raise RuntimeError(f"torchrun exited with status {proc.returncode}: {' '.join(command[2:])}\n{''.join(said)}")
    return "".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
