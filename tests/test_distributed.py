"""lrlab.distributed and the course's command lrlab.course.ddp: sharding, the large-batch rules, clear errors,
and DDP on two real CPU processes (gloo) through the one training loop, lrlab.train.

Two tests start processes and are the slow ones (several seconds each, mostly importing torch in the
new processes); they run by default, as CI runs them:

* ``test_ddp_on_two_processes_equals_one_process_at_the_global_batch`` (the acceptance test):
  ``torch.multiprocessing`` starts 2 ranks on 127.0.0.1 and a free port;
* ``test_torchrun_smoke``: ``torchrun --standalone --nproc_per_node=2 -m lrlab.course.ddp``.

Nothing touches the network beyond the loopback interface.
"""

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F

import lrlab
from lrlab import Checkpoint, TensorLoader
from lrlab.callbacks import RecordWeightNorm
from lrlab import distributed as D
from lrlab.course import ddp, results
from lrlab.schedules import CosineScheduler, LinearWarmup

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread (as tests/test_data.py's fixture): machine-independent sums, no fight over 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_launch_env(monkeypatch):
    for name in D._ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def launch_env(monkeypatch, rank=0, world_size=1, port=None):
    for name, value in {"RANK": rank, "WORLD_SIZE": world_size, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": free_port() if port is None else port}.items():
        monkeypatch.setenv(name, str(value))


# ------------------------------------------------------------------------------------------------ sharding


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_shards_together_are_the_single_process_batches_and_cover_each_epoch_once(world_size):
    n, B, seed = 96, 16, 7
    X, y = torch.arange(n, dtype=torch.float64).unsqueeze(1) * 10, torch.arange(n)  # y[i] = i: the index
    single = TensorLoader(X, y, B, shuffle=True, seed=seed)
    shards = [D.ShardedLoader(X, y, B, r, world_size, seed=seed) for r in range(world_size)]
    assert [len(s) for s in shards] == [n // B] * world_size and shards[0].num_examples == n
    orders = []
    for _epoch in range(2):
        steps = list(zip(single, *shards))
        assert len(steps) == n // B
        for (X_ref, y_ref), *local in steps:
            assert [len(yb) for _, yb in local] == [B // world_size] * world_size
            assert torch.equal(torch.cat([yb for _, yb in local]), y_ref)  # rank r holds part r, in order
            assert torch.equal(torch.cat([Xb for Xb, _ in local]), X_ref)
        order = torch.cat([y_ref for (_, y_ref), *_ in steps])
        assert sorted(order.tolist()) == list(range(n))  # every example exactly once per epoch, over all ranks
        orders.append(order)
    assert not torch.equal(orders[0], orders[1])  # a new permutation each epoch


def test_the_partial_last_global_batch_is_dropped_and_max_batches_caps_the_steps():
    n, B, seed = 100, 16, 3
    X, y = torch.zeros(n, 2), torch.arange(n)
    single = TensorLoader(X, y, B, shuffle=True, seed=seed)
    shards = [D.ShardedLoader(X, y, B, r, 2, seed=seed) for r in range(2)]
    assert len(shards[0]) == 6 and len(single) == 7 and shards[0].num_examples == 96
    dropped = []
    for _epoch in range(2):
        ref = list(single)
        seen = [torch.cat([a[1], b[1]]) for a, b in zip(*shards)]
        assert len(seen) == 6 and all(torch.equal(s, r[1]) for s, r in zip(seen, ref))
        assert len(set(torch.cat(seen).tolist())) == 96
        dropped.append(set(range(n)) - set(torch.cat(seen).tolist()))
    assert dropped[0] != dropped[1]  # the 4 examples left out differ from epoch to epoch
    capped, ref = D.ShardedLoader(X, y, B, 1, 2, seed=seed, max_batches=2), TensorLoader(X, y, B, True, seed, 2)
    assert len(capped) == 2
    for _epoch in range(2):  # the same permutation per epoch as the capped single-process loader
        assert [yb.tolist() for _, yb in capped] == [yb[8:].tolist() for _, yb in ref]


def test_state_dict_restores_the_next_epochs_order_and_shard_copies_a_loader():
    X, y = torch.randn(64, 3), torch.arange(64)
    loader = D.ShardedLoader(X, y, 16, 1, 2, seed=5)
    list(loader)
    state = loader.state_dict()
    second = [yb for _, yb in loader]
    again = D.ShardedLoader(X, y, 16, 1, 2, seed=5)
    again.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(second, (yb for _, yb in again)))
    with pytest.raises(ValueError, match="generator"):
        again.load_state_dict({})
    base = TensorLoader(X, y, 32, shuffle=True, seed=9, max_batches=1, transform=lambda x: x * 2)
    sharded = D.shard(base, 0, 2)
    assert (sharded.global_batch, sharded.local_batch, sharded.seed, len(sharded)) == (32, 16, 9, 1)
    Xb, yb = next(iter(sharded))
    assert torch.equal(Xb, X[yb] * 2)
    with pytest.raises(ValueError, match="seed"):
        D.shard(TensorLoader(X, y, 32, shuffle=True), 0, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(global_batch=30, world_size=4), r"global batch 30 is not divisible by the world size 4.*of 4, e\.g\. 32 or 28"),
    (dict(global_batch=3, world_size=4), r"global batch 3 is not divisible by the world size 4.*e\.g\. 4"),
    (dict(global_batch=128), r"global batch 128 is larger than the dataset \(100 examples\)"),
    (dict(rank=2), r"rank must be in 0\.\.world_size - 1 = 1"),
    (dict(world_size=0), "world_size must be an int >= 1"),
    (dict(seed=None), "seed must be an int, the same on every rank"),
    (dict(max_batches=0), "max_batches must be an int >= 1"),
])
def test_sharded_loader_rejects_bad_arguments(kwargs, message):
    args = dict(global_batch=32, rank=0, world_size=2, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        D.ShardedLoader(torch.zeros(100, 1), torch.zeros(100), args.pop("global_batch"), args.pop("rank"),
                        args.pop("world_size"), **args)


# ------------------------------------------------------------------------------------------------ large batches


def test_linear_scaling_rule_by_hand():
    assert D.linear_scaled_lr(0.1, 8192) == pytest.approx(3.2)  # Goyal et al.: 0.1 x 8192 / 256
    assert D.linear_scaled_lr(0.1, 256) == pytest.approx(0.1)
    assert D.linear_scaled_lr(0.3, 1024) == pytest.approx(1.2)  # d2l's 0.3 at 256, four times the batch
    assert D.linear_scaled_lr(0.1, 64, base_batch=32) == pytest.approx(0.2)


def test_warmup_in_updates_lasts_the_same_epochs_at_every_batch():
    # 60,000 examples at 8192: 7 full updates per epoch (the 2,656 left over are dropped), so 5 epochs = 35
    assert D.warmup_updates(5, 8192, 60000) == 35
    assert D.warmup_updates(5, 256, 60000) == 5 * 234 == 1170
    assert D.warmup_updates(5, 2048, 60000) == 5 * 29
    assert D.warmup_updates(0.5, 8192, 60000) == 4  # 3.5 updates, rounded up
    assert D.warmup_updates(0.1, 1, 70) == 7  # 0.1 * 70 is 7.000000000000001 in floats: still 7
    assert D.warmup_updates(0, 256, 60000) == 0
    for batch in (64, 256, 1024, 8192):
        assert D.warmup_updates(5, batch, 60000) == 5 * (60000 // batch)


@pytest.mark.parametrize("call, message", [
    (lambda: D.linear_scaled_lr(0, 256), "base_lr must be a finite number > 0"),
    (lambda: D.linear_scaled_lr(-0.1, 256), "base_lr must be a finite number > 0"),
    (lambda: D.linear_scaled_lr(math.nan, 256), "base_lr must be a finite number > 0"),
    (lambda: D.linear_scaled_lr("0.1", 256), "base_lr must be a finite number > 0"),
    (lambda: D.linear_scaled_lr(0.1, 0), "global_batch must be an int >= 1"),
    (lambda: D.linear_scaled_lr(0.1, 256.0), "global_batch must be an int >= 1"),
    (lambda: D.linear_scaled_lr(0.1, True), "global_batch must be an int >= 1"),
    (lambda: D.linear_scaled_lr(0.1, 256, base_batch=0), "base_batch must be an int >= 1"),
    (lambda: D.warmup_updates(-1, 256, 60000), "epochs must be a finite number >= 0"),
    (lambda: D.warmup_updates(math.inf, 256, 60000), "epochs must be a finite number >= 0"),
    (lambda: D.warmup_updates(5, 0, 60000), "global_batch must be an int >= 1"),
    (lambda: D.warmup_updates(5, 256, 0), "num_examples must be an int >= 1"),
    (lambda: D.warmup_updates(5, 8192, 5000), "global_batch 8192 is larger than num_examples 5000"),
])
def test_large_batch_rules_reject_bad_values(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------------------------ the process group


def test_setup_without_torchrun_says_how_to_launch(no_launch_env, monkeypatch):
    with pytest.raises(RuntimeError, match=r"RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT .*"
                                           r"start it with torchrun --nproc_per_node=N"):
        D.setup("gloo")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match=r"variable\(s\) WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT that"):
        D.setup("gloo")
    launch_env(monkeypatch, rank=2, world_size=2)
    with pytest.raises(RuntimeError, match="RANK=2, WORLD_SIZE=2, LOCAL_RANK=2 are inconsistent"):
        D.setup("gloo")
    monkeypatch.setenv("RANK", "zero")
    with pytest.raises(RuntimeError, match="must be integers"):
        D.setup("gloo")
    assert not dist.is_initialized()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA to provoke the failure")
def test_nccl_without_cuda_is_a_clear_error(monkeypatch):
    launch_env(monkeypatch)
    with pytest.raises(RuntimeError, match="backend 'nccl' needs CUDA GPUs and this machine has none.*use .*'gloo'"):
        D.setup("nccl")
    with pytest.raises(ValueError, match="backend must be 'gloo' .* or 'nccl'"):
        D.setup("mpi")
    assert not dist.is_initialized()


def test_setup_and_teardown_in_one_process(monkeypatch):
    launch_env(monkeypatch)
    env = D.setup("gloo")
    try:
        assert env == D.DistEnv(rank=0, world_size=1, local_rank=0, backend="gloo", device=torch.device("cpu"))
        assert dist.is_initialized() and dist.get_world_size() == 1
        with pytest.raises(RuntimeError, match="already set up"):
            D.setup("gloo")
        totals = torch.tensor([1.0, 2.0])
        assert D.all_reduce_sum(totals) is totals and totals.tolist() == [1.0, 2.0]  # one process: the sum is itself
    finally:
        D.teardown()
    assert not dist.is_initialized()
    D.teardown()  # nothing to do


def test_evaluation_parts_are_disjoint_and_cover_the_set():
    loader = TensorLoader(torch.arange(103.0)[:, None], torch.arange(103), 10)
    for world in (1, 2, 3):
        parts = [D.evaluation_part(loader, r, world) for r in range(world)]
        seen = torch.cat([y for part in parts for _, y in part])
        assert seen.tolist() == list(range(103))
        assert all(part.batch_size == 10 for part in parts)
    with pytest.raises(ValueError, match=r"rank must be in 0\.\.world_size - 1 = 1"):
        D.evaluation_part(loader, 2, 2)


# ------------------------------------------------------------------------------------------------ the course's command


def test_a_run_goes_to_the_command_line_and_back():
    run = ddp.DDPRun(global_batch=1024, base_lr=0.1, scale="linear", warmup_epochs=5, warmup_begin_lr=0.1,
                     momentum=0.9, seed=2, profile="smoke", epochs=3, max_batches=4, out="x.csv", status="s.json")
    assert ddp.DDPRun.parse(run.argv()) == run
    assert ddp.DDPRun.parse([]) == ddp.DDPRun()
    assert run.peak_lr == pytest.approx(0.4) and run.updates_per_epoch(60000) == 4
    assert run.warmup_updates(60000) == 20  # 5 epochs of 4 updates (max_batches caps them)
    schedule = run.schedule(60000)
    assert schedule(0) == pytest.approx(0.1) and schedule(20) == pytest.approx(0.4) and schedule(10) == pytest.approx(0.25)
    assert ddp.DDPRun(global_batch=512, scale="none").schedule(60000)(0) == 0.3


def test_main_checks_its_arguments_before_any_process_group(monkeypatch, no_launch_env, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("setup() was called")

    monkeypatch.setattr(ddp, "setup", refuse)
    with pytest.raises(SystemExit, match=r"error: .*start it with torchrun --nproc_per_node=N"):
        ddp.main(["--profile", "smoke"])
    launch_env(monkeypatch, rank=0, world_size=2)
    with pytest.raises(SystemExit, match=r"--global-batch 33 is not divisible by the world size 2 .*e\.g\. 34"):
        ddp.main(["--profile", "smoke", "--global-batch", "33"])
    for bad in (["--global-batch", "0"], ["--warmup-epochs", "-1"], ["--base-lr", "nan"], ["--scale", "sqrt"]):
        with pytest.raises(SystemExit) as exit_info:
            ddp.main(["--profile", "smoke"] + bad)
        assert exit_info.value.code == 2  # argparse's usage error
    assert "must be" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ DDP on 2 processes

N, B, EPOCHS, SEED, N_TEST = 256, 32, 2, 3, 101
SGD_KW = dict(momentum=0.9, weight_decay=1e-3)


def _problem():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(N, 1, 28, 28, generator=g, dtype=torch.float64), torch.randint(0, 10, (N,), generator=g)
    Xt = torch.randn(N_TEST, 1, 28, 28, generator=g, dtype=torch.float64)
    yt = torch.randint(0, 10, (N_TEST,), generator=g)
    return X, y, Xt, yt


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Tanh(), nn.Linear(32, 10)).double()


def _schedule():  # per update: 4 updates of warmup, then a cosine; 16 updates in all
    return LinearWarmup(CosineScheduler(max_update=12, base_lr=0.5, final_lr=0.01), 4)


def _ddp_train(env, net, epochs, X, y, test, checkpoint=None):
    """lrlab.train on a DDP-wrapped net: this rank's shard, its part of the test set, the sums reduced."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0, **SGD_KW)
    loader = D.ShardedLoader(X, y, B, env.rank, env.world_size, seed=SEED)
    saver = None if checkpoint is None else Checkpoint(checkpoint, write=env.rank == 0, barrier=dist.barrier)
    start, history, _ = (0, None, {}) if saver is None else saver.restore(net, optimizer, None, loader)
    history = lrlab.train(D.wrap(net, env), loader, D.evaluation_part(test, env.rank, env.world_size), epochs,
                          nn.CrossEntropyLoss(), optimizer, env.device, _schedule(), step_per="update", live=False,
                          start_epoch=start, history=history,
                          callbacks=[RecordWeightNorm()] + ([saver] if saver else []),
                          reduce=D.all_reduce_sum)
    return results.history_rows(history, experiment="ddp", variant=f"global{B}_ranks{env.world_size}",
                                schedule="warmup_cosine", seed=SEED, data="random")


def _ddp_worker(rank, world_size, port, out):
    """One rank: a full run, then the same run in two calls through a checkpoint; results saved to ``out``."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    out = Path(out)
    env = D.setup("gloo")
    try:
        X, y, Xt, yt = _problem()
        test = TensorLoader(Xt, yt, 25)
        net = _net()
        rows = _ddp_train(env, net, EPOCHS, X, y, test)
        torch.save({"state": net.state_dict(), "rows": rows}, out / f"full{rank}.pt")
        _ddp_train(env, _net(), 1, X, y, test, checkpoint=out / "checkpoint.pt")
        net = _net(seed=99)  # other weights: resuming must replace them
        rows = _ddp_train(env, net, EPOCHS, X, y, test, checkpoint=out / "checkpoint.pt")
        torch.save({"state": net.state_dict(), "rows": rows}, out / f"resumed{rank}.pt")
    finally:
        D.teardown()


def spawn(fn, nprocs, out, timeout=120):
    """``fn(rank, nprocs, port, out)`` in ``nprocs`` new processes; fail (and stop them) after ``timeout`` s."""
    context = mp.start_processes(fn, args=(nprocs, free_port(), str(out)), nprocs=nprocs, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):  # raises if a process failed, with its traceback
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            pytest.fail(f"the {nprocs} processes did not finish within {timeout} s")


def _without_seconds(rows):
    """The rows without their wall times, NaN (no validation set) as None so that equal rows compare equal."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items() if k != "seconds"}
            for row in rows]


def test_ddp_on_two_processes_equals_one_process_at_the_global_batch(tmp_path):
    """The acceptance test (slow: starts 2 processes). 2 ranks x 16 examples, DDP, gloo == 1 process x 32."""
    spawn(_ddp_worker, 2, tmp_path)

    X, y, Xt, yt = _problem()
    net, schedule = _net(), _schedule()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0, **SGD_KW)
    loader = TensorLoader(X, y, B, shuffle=True, seed=SEED)  # one process, batch B: a new order each epoch
    update, expected = 0, []
    for epoch in range(EPOCHS):
        loss_sum = correct = 0.0
        for Xb, yb in loader:
            for group in optimizer.param_groups:
                group["lr"] = float(schedule(update))
            y_hat = net(Xb)
            loss = F.cross_entropy(y_hat, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            update += 1
            loss_sum += loss.item() * len(yb)
            correct += (y_hat.argmax(1) == yb).sum().item()
        with torch.no_grad():
            out = net(Xt)
        expected.append({"epoch": epoch, "lr": float(schedule(epoch * N // B)), "momentum": 0.9,
                         "train_loss": loss_sum / N, "train_acc": correct / N,
                         "test_loss": F.cross_entropy(out, yt).item(),
                         "test_acc": (out.argmax(1) == yt).double().mean().item()})

    full = [torch.load(tmp_path / f"full{r}.pt", weights_only=True) for r in (0, 1)]
    resumed = [torch.load(tmp_path / f"resumed{r}.pt", weights_only=True) for r in (0, 1)]
    for r in (0, 1):
        torch.testing.assert_close(full[r]["state"], net.state_dict())  # float64 tolerances: ~1e-7 relative
        torch.testing.assert_close(resumed[r]["state"], full[0]["state"], rtol=0, atol=0)  # resuming is exact
    rows = full[0]["rows"]
    assert _without_seconds(rows) == _without_seconds(full[1]["rows"])  # every rank has the reduced metrics
    assert _without_seconds(resumed[0]["rows"]) == _without_seconds(rows)
    assert [set(row) for row in rows] == [set(results.COLUMNS)] * EPOCHS
    for row, want in zip(rows, expected):
        assert row["variant"] == "global32_ranks2" and row["seed"] == SEED
        for key, value in want.items():
            assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt", "full0.pt", "full1.pt", "resumed0.pt", "resumed1.pt"]  # no temporary file left


def test_torchrun_smoke(tmp_path):
    """``python -m lrlab.course.ddp`` under torchrun with 2 processes (slow: 3 processes); rank 0 writes once."""
    out, status = tmp_path / "ddp.csv", tmp_path / "status.json"
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    command = launcher + ["--standalone", "--nproc_per_node=2", "-m", "lrlab.course.ddp", "--profile", "smoke",
                          "--epochs", "1", "--max-batches", "3", "--global-batch", "64", "--base-lr", "0.3",
                          "--scale", "linear", "--backend", "gloo", "--out", str(out), "--status", str(status)]
    proc = subprocess.run(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("lrlab.course.ddp: wrote 1 rows to") == 1, proc.stdout
    frame = results.read_table(out)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.experiment, row.variant, row.epoch, row.seed) == ("ddp", "global64_ranks2", 0, 0)
    assert row.lr == pytest.approx(0.075)  # 0.3 x 64 / 256
    assert math.isfinite(row.train_loss) and math.isfinite(row.test_loss)
    assert 0 <= row.train_acc <= 1 and 0 <= row.test_acc <= 1 and row.weight_norm > 0
    assert json.loads(status.read_text()) == {"stopped": None, "epochs": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.csv", "status.json"]


def test_launch_raises_with_the_commands_own_error(capsys):
    """lrlab.course.ddp.launch: a failing command (a global batch that 2 processes cannot share) is a
    RuntimeError that shows the command's own message; echo=False prints nothing."""
    with pytest.raises(RuntimeError, match=r"(?s)torchrun exited with status \d+: .*--global-batch 63.*"
                                           r"--global-batch 63 is not divisible by the world size 2"):
        ddp.launch(ddp.DDPRun(profile="smoke", global_batch=63), 2, echo=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="nproc_per_node must be an int >= 1"):
        D.launch("lrlab.course.ddp", [], 0)
