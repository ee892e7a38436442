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
* Training is :func:`lrlab.train` itself, with three pieces from here: the net in :func:`wrap`
  (``DistributedDataParallel``), each process's :class:`ShardedLoader` and :func:`evaluation_part`,
  and ``reduce=``:func:`all_reduce_sum`, so every process records the same history::

      env = setup()
      net = wrap(make_net().to(env.device), env)
      history = lrlab.train(net, shard(train_iter, env.rank, env.world_size, global_batch=1024),
                            evaluation_part(test_iter, env.rank, env.world_size), epochs, loss, optimizer,
                            env.device, schedule, step_per="update", reduce=all_reduce_sum)

* :func:`launch`: a module under ``torchrun`` from Python (a notebook, an experiment runner), its
  output shown as it comes. The course's command, ``python -m lrlab.course.ddp``, trains its LeNet
  experiment this way (see the README for torchrun on one machine, a cluster and SLURM).

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

import dataclasses
import math
import os
import subprocess
import sys
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import nn

from .checks import count
from .data import TensorLoader

__all__ = ["ShardedLoader", "shard", "linear_scaled_lr", "warmup_updates", "DistEnv", "setup", "teardown",
           "all_reduce_sum", "evaluation_part", "wrap", "agree", "launch"]

_LAUNCH = "start it with torchrun --nproc_per_node=N (lrlab.distributed.launch does it from Python)"
_ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _int(name: str, value, low: int = 1) -> int:
    return count(name, value, low)


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


# --------------------------------------------------------------------------- training: lrlab.train with a wrapped net


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place: the ``reduce`` that :func:`lrlab.train` takes for
    data-parallel training (each process's loss, correct and example counts, summed before dividing)."""
    dist.all_reduce(tensor)
    return tensor


def evaluation_part(loader: TensorLoader, rank: int, world_size: int) -> TensorLoader:
    """Rank ``rank``'s contiguous part of an evaluation loader's examples (the first ``loader.num_examples``),
    in the loader's batch size: the processes evaluate disjoint parts and :func:`all_reduce_sum` adds
    their counts, so every process gets the metrics of the whole set."""
    _int("world_size", world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0..world_size - 1 = {world_size - 1}; got rank={rank}")
    m = loader.num_examples
    lo, hi = rank * m // world_size, (rank + 1) * m // world_size
    return TensorLoader(loader.X[lo:hi], loader.y[lo:hi], loader.batch_size, shuffle=False,
                        transform=loader.transform)


def wrap(net: nn.Module, env: "DistEnv") -> nn.Module:
    """``net`` (already on ``env.device``, the same initial weights on every process) in
    ``DistributedDataParallel``, which averages the gradients over the processes in ``backward()``."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(net, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def agree(error: Optional[BaseException], what: str, device) -> None:
    """Raise on every process if ``what`` failed on any (so no process goes on to wait in a collective)."""
    failed = torch.tensor([0.0 if error is None else 1.0], device=device)
    dist.all_reduce(failed)
    if error is not None:
        raise error
    if failed.item():
        raise RuntimeError(f"{what} failed on {failed.item():g} other process(es); see their messages")


def launch(module: str, argv: Sequence, nproc_per_node: int = 2, *, echo: bool = True) -> str:
    """Run ``torchrun --standalone --nproc_per_node=N -m MODULE ARGV`` and return its output.

    The processes start on this machine (``--standalone``: torchrun picks a free port), with this
    Python and this process's environment (so ``LRLAB_DATA``, ``LRLAB_PROFILE`` carry over). Their
    output (stdout and stderr) is printed line by line as it comes when ``echo`` (a notebook shows it,
    which a bare ``subprocess.run`` would not). A non-zero exit raises RuntimeError with the processes'
    ``error`` lines (else the last lines of the output).
    """
    nproc_per_node = _int("nproc_per_node", nproc_per_node)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}",
               "-m", module, *(str(a) for a in argv)]
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
    if proc.returncode:
        said = [line for line in lines if line.startswith("error")][:4] or lines[-15:]  # the command's own messages first
        raise RuntimeError(f"torchrun exited with status {proc.returncode}: {' '.join(command[2:])}\n{''.join(said)}")
    return "".join(lines)
