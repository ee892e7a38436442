"""Tests of lrlab.train: when each kind of scheduler sets the rate, what History records, NaN stops,
repeatability, evaluate_accuracy against d2l's, and the real-data bar on the genuine MNIST test split."""

import gzip
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.optim import lr_scheduler

import lrlab
from lrlab import course  # noqa: E402 (the course's models)
from lrlab.train import History, evaluate_accuracy, train

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MNIST" / "raw"


# --------------------------------------------------------------------------- tiny problems


def tiny_data(n=96, seed=0, classes=3):
    """A learnable 3-class problem on 1x4x4 'images': the class is which quarter is brightest."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    X = torch.randn(n, 1, 4, 4, generator=g) * 0.3
    for c in range(classes):
        X[y == c, 0, c, :] += 1.5
    return X, y


def batches(X, y, batch_size):
    """A plain list of (X, y) batches: the simplest iterable train() must accept."""
    return [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def setup(lr=0.1, n=96, batch_size=32, seed=0):
    X, y = tiny_data(n, seed)
    net = tiny_net(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    return net, opt, batches(X, y, batch_size), batches(X[:48], y[:48], 24)


LOSS = nn.CrossEntropyLoss()


def run(net, opt, tr, te, epochs, scheduler=None, **kw):
    kw.setdefault("live", False)
    return train(net, tr, te, epochs, LOSS, opt, "cpu", scheduler, **kw)


# --------------------------------------------------------------------------- schedules: no off-by-one


def test_lrlab_schedule_is_applied_before_each_epoch():
    schedule = lrlab.CosineScheduler(4, base_lr=0.2, final_lr=0.02)
    net, opt, tr, te = setup(lr=99.0)  # the optimizer's own rate must never be used
    h = run(net, opt, tr, te, 6, schedule)
    assert h.lr == [schedule(t) for t in range(6)]
    assert h.lr[0] == pytest.approx(0.2) and h.lr[4] == pytest.approx(0.02)
    assert opt.param_groups[0]["lr"] == schedule(5)


def test_any_callable_schedule_sets_every_param_group():
    X, y = tiny_data()
    net = tiny_net()
    opt = torch.optim.SGD([{"params": net[1].parameters(), "lr": 5.0}, {"params": net[3].parameters()}], lr=7.0)
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.1 / (t + 1)

    h = run(net, opt, batches(X, y, 32), None, 3, schedule)
    assert seen == [0, 1, 2]  # called once per epoch, before it, with the epoch number
    assert h.lr == [0.1, 0.05, 0.1 / 3]
    assert [g["lr"] for g in opt.param_groups] == [0.1 / 3, 0.1 / 3]


def test_epoch_rate_is_what_the_optimizer_used_during_the_epoch():
    # Record the rate at every optimizer.step: within epoch t all updates use h.lr[t] == schedule(t).
    net, opt, tr, te = setup()
    used = []
    original_step = opt.step

    def spying_step(*args, **kwargs):
        used.append(opt.param_groups[0]["lr"])
        return original_step(*args, **kwargs)

    opt.step = spying_step
    schedule = lrlab.FactorScheduler(factor=0.5, base_lr=0.4)
    h = run(net, opt, tr, te, 3, schedule)
    per_epoch = len(tr)
    assert used == [schedule(t) for t in range(3) for _ in range(per_epoch)]
    assert h.lr == [0.4, 0.2, 0.1]


def test_callable_schedule_per_update_counts_updates():
    net, opt, tr, te = setup()
    schedule = lrlab.ExponentialScheduler(gamma=0.9, base_lr=0.3)
    h = run(net, opt, tr, te, 2, schedule, step_per="update")
    updates = 2 * len(tr)
    assert h.lr_per_update == pytest.approx([0.3 * 0.9 ** u for u in range(updates)], rel=1e-12)
    assert h.lr == pytest.approx([0.3, 0.3 * 0.9 ** len(tr)], rel=1e-12)  # first update of each epoch
    assert h.step_per == "update"


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=5))
def test_history_lr_equals_schedule_for_any_rates(rates):
    net, opt, tr, _ = setup(n=32, batch_size=32)
    h = run(net, opt, tr, None, len(rates), lambda t: rates[t])
    assert h.lr == rates


# --------------------------------------------------------------------------- torch schedulers


def test_torch_scheduler_steps_after_each_epoch():
    net, opt, tr, te = setup(lr=0.4)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    h = run(net, opt, tr, te, 4, sched)
    assert h.lr == [0.4, 0.2, 0.2, 0.1]
    assert sched.last_epoch == 4


def test_torch_scheduler_per_update():
    net, opt, tr, te = setup(lr=0.4)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    h = run(net, opt, tr, te, 2, sched, step_per="update")
    n = 2 * len(tr)
    assert h.lr_per_update == pytest.approx([0.4 * 0.5 ** (u // 2) for u in range(n)], rel=1e-12)
    assert h.lr == pytest.approx([0.4, 0.4 * 0.5 ** (len(tr) // 2)], rel=1e-12)
    assert sched.last_epoch == n


class HalvingLR(lr_scheduler.LRScheduler):
    """A user-defined scheduler living outside torch.optim.lr_scheduler (d2l's string check rejects it)."""

    def get_lr(self):
        return [base * 0.5 ** self.last_epoch for base in self.base_lrs]


def test_user_defined_lrscheduler_subclass_is_stepped_not_called():
    net, opt, tr, te = setup(lr=0.8)
    sched = HalvingLR(opt)
    assert HalvingLR.__module__ != lr_scheduler.__name__
    h = run(net, opt, tr, te, 3, sched)
    assert h.lr == [0.8, 0.4, 0.2]


def test_lrlab_schedulelr_is_accepted():
    net, opt, tr, te = setup(lr=0.3)
    schedule = lrlab.CosineScheduler(3, base_lr=0.3, final_lr=0.0)
    h = run(net, opt, tr, te, 4, lrlab.ScheduleLR(opt, schedule))
    assert h.lr == pytest.approx([schedule(t) for t in range(4)], abs=1e-15)


class RecordingPlateau(lr_scheduler.ReduceLROnPlateau):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.metrics_seen = []

    def step(self, metrics, *args, **kwargs):
        self.metrics_seen.append(float(metrics))
        return super().step(metrics, *args, **kwargs)


@pytest.mark.parametrize("metric", ["valid_loss", "train_loss", "test_loss"])
def test_reduce_lr_on_plateau_gets_the_epoch_loss(metric):
    net, opt, tr, te = setup(lr=0.5)
    X, y = tiny_data(48, seed=1)
    va = batches(X, y, 24)
    sched = RecordingPlateau(opt, factor=0.5, patience=0, threshold=0.9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = run(net, opt, tr, te, 5, sched, plateau_metric=metric, valid_iter=va)
    assert sched.metrics_seen == getattr(h, metric)
    assert any("test loss" in str(w.message) for w in caught) == (metric == "test_loss")
    # Replay the same metrics through a fresh ReduceLROnPlateau: the rates must match History.lr.
    replay_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    replay = lr_scheduler.ReduceLROnPlateau(replay_opt, factor=0.5, patience=0, threshold=0.9)
    expected = []
    for value in sched.metrics_seen:
        expected.append(replay_opt.param_groups[0]["lr"])
        replay.step(value)
    assert h.lr == expected
    assert min(h.lr) < 0.5  # the 90% threshold makes some epochs count as no improvement


def test_validation_metrics_are_recorded_and_shown():
    net, opt, tr, te = setup()
    X, y = tiny_data(48, seed=2)
    h = run(net, opt, tr, te, 2, valid_iter=batches(X, y, 16))
    with torch.no_grad():
        expected = nn.functional.cross_entropy(net(X), y).item()
    assert h.valid_loss[-1] == pytest.approx(expected, rel=1e-6)
    assert 0 <= h.valid_acc[-1] <= 1 and "valid_acc" in h.to_table().splitlines()[0]
    plain = run(tiny_net(), torch.optim.SGD(tiny_net().parameters(), lr=0.1), tr, te, 1)
    assert math.isnan(plain.valid_loss[0]) and "valid" not in plain.to_table()


def test_test_loss_is_the_mean_loss_on_the_test_data():
    net, opt, tr, te = setup()
    h = run(net, opt, tr, te, 1)
    X = torch.cat([b[0] for b in te])
    y = torch.cat([b[1] for b in te])
    with torch.no_grad():
        expected = nn.functional.cross_entropy(net(X), y).item()
    assert h.test_loss[0] == pytest.approx(expected, rel=1e-6)


def test_with_lr_zero_train_metrics_equal_an_independent_evaluation():
    # lr = 0 leaves the weights unchanged, so the running train loss/accuracy must equal a direct computation.
    X, y = tiny_data(100)
    net = tiny_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32, shuffle=True)
    h = train(net, loader, loader, 2, LOSS, opt, "cpu", live=False)
    with torch.no_grad():
        logits = net(X)
        loss = nn.functional.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).sum().item() / len(y)
    assert h.train_loss == pytest.approx([loss, loss], rel=1e-6)
    assert h.train_acc == pytest.approx([acc, acc], abs=1e-12)
    assert h.test_acc == pytest.approx([acc, acc], abs=1e-12)


def test_training_learns_and_works_with_a_dataloader():
    X, y = tiny_data(192)
    net = tiny_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    ds = torch.utils.data.TensorDataset(X, y)
    tr = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True)
    te = torch.utils.data.DataLoader(ds, batch_size=64)
    h = train(net, tr, te, 8, LOSS, opt, "cpu", live=False)
    assert len(h) == 8 and h.stopped is None
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.test_acc[-1] > 0.9


def test_works_with_lrlab_tensorloader():
    X, y = tiny_data(128)
    tr = lrlab.TensorLoader(X, y, 32, shuffle=True, seed=1)
    te = lrlab.TensorLoader(X, y, 64)
    net = tiny_net()
    h = train(net, tr, te, 3, LOSS, torch.optim.SGD(net.parameters(), lr=0.5), None, live=False)
    assert len(h) == 3 and all(0 <= a <= 1 for a in h.test_acc)


# --------------------------------------------------------------------------- divergence


def test_nan_loss_stops_at_once_and_names_epoch_and_lr():
    net, opt, tr, te = setup()
    schedule = lambda t: 0.1 if t < 2 else 1e30  # noqa: E731 - diverges in epoch 2
    calls = []
    with pytest.warns(RuntimeWarning, match=r"epoch 2 \(of 6\) at learning rate 1e\+30"):
        h = run(net, opt, tr, te, 6, lambda t: calls.append(t) or schedule(t))
    assert calls == [0, 1, 2]  # no epoch after the divergent one
    assert len(h) == 3 and h.lr == [0.1, 0.1, 1e30]
    assert h.diverged and "epoch 2" in h.stopped
    assert all(math.isfinite(v) for v in h.train_loss[:2]) and not math.isfinite(h.train_loss[2])
    assert math.isnan(h.test_acc[2]) and math.isfinite(h.test_acc[1])
    assert "stopped:" in h.to_table()


def test_nan_stop_breaks_inside_the_epoch():
    X, y = tiny_data(96)
    X = X.clone()
    X[40] = float("nan")  # second batch of 32
    net = tiny_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen = []

    class Counting(list):
        def __iter__(self):
            for b in list.__iter__(self):
                seen.append(1)
                yield b

    with pytest.warns(RuntimeWarning, match="epoch 0"):
        h = train(net, Counting(batches(X, y, 32)), None, 3, LOSS, opt, "cpu", live=False)
    assert len(seen) == 2  # the third batch was never drawn
    assert len(h) == 1 and math.isnan(h.train_loss[0])


def test_schedule_returning_nan_is_an_error_naming_the_step():
    net, opt, tr, te = setup()
    with pytest.raises(ValueError, match=r"scheduler\(1\) returned nan"):
        run(net, opt, tr, te, 3, lambda t: 0.1 if t == 0 else float("nan"))


# --------------------------------------------------------------------------- repeatability, init, mode


def _seeded_run(init=None):
    torch.manual_seed(123)
    X, y = tiny_data(128)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.9)
    tr = lrlab.TensorLoader(X, y, 16, shuffle=True, seed=7)
    h = train(net, tr, tr, 3, LOSS, opt, "cpu", lrlab.CosineScheduler(3, base_lr=0.3), init=init, live=False)
    return h, [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("init", [None, "xavier"])
def test_seeded_runs_repeat_exactly_on_cpu(init):
    h1, p1 = _seeded_run(init)
    h2, p2 = _seeded_run(init)
    for name in ("lr", "train_loss", "train_acc", "test_loss", "test_acc"):
        assert getattr(h1, name) == getattr(h2, name)
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_init_xavier_matches_d2l_train_ch6_init_weights():
    def d2l_init_weights(m):  # d2l.train_ch6's inner function, verbatim
        if type(m) == nn.Linear or type(m) == nn.Conv2d:  # noqa: E721
            nn.init.xavier_uniform_(m.weight)

    ref = course.LeNet()
    torch.manual_seed(5)
    ref.apply(d2l_init_weights)
    net = course.LeNet()
    net.load_state_dict(ref.state_dict())  # same biases; weights about to be redrawn
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    X, y = torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)
    torch.manual_seed(5)
    train(net, [(X, y)], None, 1, LOSS, opt, "cpu", init="xavier", live=False)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))


def test_init_none_keeps_the_weights():
    net, opt, tr, _ = setup(lr=0.0)
    before = [p.detach().clone() for p in net.parameters()]
    run(net, opt, tr, None, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("mode", [True, False])
def test_evaluate_accuracy_restores_mode_and_agrees_with_d2l(mode):
    d2l = pytest.importorskip("d2l.torch")
    X, y = tiny_data(100, seed=3)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Dropout(0.5))
    loader = batches(X, y, 32)
    net.train(mode)
    ours = evaluate_accuracy(net, loader)
    assert net.training is mode
    assert all(m.training is mode for m in net.modules())
    theirs = d2l.evaluate_accuracy_gpu(net, loader)
    assert net.training is False  # d2l's leaves the net in eval mode: the bug lrlab fixes
    assert ours == theirs
    with torch.no_grad():
        net.eval()
        independent = (net(X).argmax(1) == y).sum().item() / len(y)
    assert ours == independent


def test_train_leaves_the_net_in_train_mode_after_evaluation():
    net, opt, tr, te = setup()
    run(net, opt, tr, te, 1)
    assert net.training


# --------------------------------------------------------------------------- History


def test_history_table_frame_and_helpers():
    net, opt, tr, te = setup()
    h = run(net, opt, tr, te, 3, lambda t: [0.1, 0.05, 0.025][t])
    assert len(h) == 3 and h.epochs == [0, 1, 2]
    table = h.to_table()
    lines = table.splitlines()
    assert lines[0].split() == ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]
    assert lines[2].split()[:2] == ["1", "0.05"]
    assert f"{h.test_acc[2]:.4f}" in lines[3]
    assert "seconds" not in table and "seconds" in h.to_table(seconds=True)
    frame = h.to_frame()
    assert list(frame.index) == [0, 1, 2]
    assert list(frame["lr"]) == [0.1, 0.05, 0.025]
    assert h.final()["test_acc"] == h.test_acc[-1]
    assert all(s > 0 for s in h.seconds)
    assert not h.diverged and h.stopped is None
    assert History().final() == {} and len(History()) == 0
    assert repr(h).startswith("History(3 epochs, lr 0.1 -> 0.025, final train loss ")


def test_zero_epochs_gives_an_empty_history():
    net, opt, tr, te = setup()
    assert len(run(net, opt, tr, te, 0)) == 0


# --------------------------------------------------------------------------- progress output


def test_script_mode_prints_one_line_per_epoch(capsys):
    net, opt, tr, te = setup()
    train(net, tr, te, 3, LOSS, opt, "cpu", lambda t: 0.1, live="print")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3  lr 0.1  train loss ")
    assert "test acc" in lines[2]


def test_auto_live_outside_a_notebook_prints_lines_and_false_is_silent(capsys):
    net, opt, tr, te = setup()
    train(net, tr, te, 2, LOSS, opt, "cpu")  # live=None: no kernel here, so lines
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    train(net, tr, te, 2, LOSS, opt, "cpu", live=False)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"step_per": "batch"}, "step_per"),
        ({"plateau_metric": "acc"}, "plateau_metric"),
        ({"live": "yes"}, "live"),
        ({"init": "kaiming"}, "init"),
        ({"channels_last": "auto"}, "channels_last"),
    ],
)
def test_bad_options_fail_early_naming_the_parameter(kwargs, match):
    net, opt, tr, te = setup()
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=match):
        run(net, opt, tr, te, 1, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_bad_num_epochs_and_scheduler_types():
    net, opt, tr, te = setup()
    with pytest.raises(ValueError, match="num_epochs"):
        run(net, opt, tr, te, 1.5)
    with pytest.raises(TypeError, match="scheduler must be"):
        run(net, opt, tr, te, 1, scheduler=0.1)


def test_scheduler_on_another_optimizer_is_rejected():
    net, opt, tr, te = setup()
    other = torch.optim.SGD(tiny_net().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="different optimizer"):
        run(net, opt, tr, te, 1, lr_scheduler.StepLR(other, 1))


def test_plateau_needs_epoch_stepping_and_a_validation_set():
    net, opt, tr, te = setup()
    with pytest.raises(ValueError, match="step_per='epoch'"):
        run(net, opt, tr, te, 1, lr_scheduler.ReduceLROnPlateau(opt), step_per="update", valid_iter=te)
    with pytest.raises(ValueError, match=r"pass valid_iter \(carve one with lrlab.validation_split"):
        run(net, opt, tr, te, 1, lr_scheduler.ReduceLROnPlateau(opt))
    with pytest.raises(ValueError, match="needs a test_iter"):
        run(net, opt, tr, None, 1, lr_scheduler.ReduceLROnPlateau(opt), plateau_metric="test_loss")


def _conv_setup():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    X, y = torch.randn(64, 3, 8, 8), torch.randint(0, 3, (64,))
    return net, torch.optim.SGD(net.parameters(), lr=0.1), batches(X, y, 16)


@pytest.mark.parametrize("channels_last", [None, True, False])
def test_channels_last_layout_same_math(channels_last):
    # Auto (None) on the CPU puts a conv net in NHWC layout; the losses match the plain layout's.
    net, opt, data = _conv_setup()
    h = train(net, data, data, 2, nn.CrossEntropyLoss(), opt, "cpu", live=False, channels_last=channels_last)
    weight = net[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) == (channels_last is not False)
    ref_net, ref_opt, ref_data = _conv_setup()
    ref = train(ref_net, ref_data, ref_data, 2, nn.CrossEntropyLoss(), ref_opt, "cpu", live=False, channels_last=False)
    np.testing.assert_allclose(h.train_loss, ref.train_loss, rtol=1e-5)


def test_empty_train_iter_is_an_error():
    net, opt, _, _ = setup()
    with pytest.raises(ValueError, match="no \\(X, y\\) batch"):
        run(net, opt, [], None, 1)


# --------------------------------------------------------------------------- the real-data bar


def _read_idx_gz(path, header):
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8, offset=header)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"offline MNIST test split not found at {SHARED_MNIST}")
def test_improved_cnn_reaches_96_percent_on_real_mnist_digits():
    """8,000 genuine MNIST test digits for training, the other 2,000 for testing, through train()."""
    images = _read_idx_gz(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = _read_idx_gz(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    assert images.shape == (10000, 1, 28, 28) and np.bincount(labels).tolist()[:2] == [980, 1135]
    X = (torch.from_numpy(images.copy()).float() / 255 - 0.1307) / 0.3081  # as load_data_mnist
    y = torch.from_numpy(labels)
    order = torch.randperm(10000, generator=torch.Generator().manual_seed(0))
    train_idx, test_idx = order[:8000], order[8000:]
    torch.manual_seed(0)
    tr = lrlab.TensorLoader(X[train_idx], y[train_idx], 64, shuffle=True, seed=0)
    te = lrlab.TensorLoader(X[test_idx], y[test_idx], 500)
    net = course.ImprovedCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)  # the MNIST tutorial's optimizer and batch size
    h = train(net, tr, te, 3, LOSS, opt, "cpu", live=False)
    assert h.stopped is None
    assert h.test_acc[-1] >= 0.96, h.to_table()
    assert h.train_loss[-1] < h.train_loss[0]


# --------------------------------------------------------------------------- callbacks


def _tiny_problem(n=64, batch=16):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)
    return lrlab.TensorLoader(X, y, batch, shuffle=True, seed=0)


def test_callbacks_see_every_hook_in_order_and_can_stop_the_run():
    from lrlab.callbacks import Callback

    calls = []

    class Spy(Callback):
        def on_train_begin(self, state):
            calls.append(("train_begin", state.epoch))

        def on_epoch_begin(self, state):
            calls.append(("epoch_begin", state.epoch))

        def on_update_end(self, state):
            calls.append(("update", state.update))

        def on_epoch_end(self, state):
            calls.append(("epoch_end", state.epoch, len(state.history)))
            if state.epoch == 1:
                state.stop = "enough"

        def on_train_end(self, state):
            calls.append(("train_end", len(state.history)))

    loader = _tiny_problem()
    net = torch.nn.Linear(4, 3)
    h = train(net, loader, None, 5, torch.nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.1), "cpu",
              live=False, callbacks=[Spy()])
    assert len(h) == 2 and h.stopped is None  # a callback's stop ends the run; it is not a failure
    assert calls[0] == ("train_begin", 0) and calls[-1] == ("train_end", 2)
    assert calls[1:7] == [("epoch_begin", 0), ("update", 1), ("update", 2), ("update", 3), ("update", 4),
                          ("epoch_end", 0, 1)]
    assert calls[7] == ("epoch_begin", 1)


def test_a_resumed_history_continues_and_a_mismatched_one_is_refused():
    loader = _tiny_problem()
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    first = train(net, loader, None, 2, torch.nn.CrossEntropyLoss(), opt, "cpu", live=False)
    both = train(net, loader, None, 3, torch.nn.CrossEntropyLoss(), opt, "cpu", live=False, start_epoch=2,
                 history=first)
    assert both is first and len(both) == 3 and both.epochs == [0, 1, 2]
    with pytest.raises(ValueError, match="history must be the History of the epochs before start_epoch=1"):
        train(net, loader, None, 3, torch.nn.CrossEntropyLoss(), opt, "cpu", live=False, start_epoch=1, history=both)


def test_a_damaged_checkpoint_is_refused_with_its_name(tmp_path):
    from lrlab.callbacks import Checkpoint, CheckpointError

    net = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    path = tmp_path / "run.pt"
    train(net, _tiny_problem(), None, 1, torch.nn.CrossEntropyLoss(), opt, "cpu", live=False,
          callbacks=[Checkpoint(path, config={"a": 1})])
    start, history, _ = Checkpoint(path, config={"a": 1}).restore(net, opt)
    assert start == 1 and len(history) == 1
    with pytest.raises(CheckpointError, match=r"run\.pt was saved for another configuration"):
        Checkpoint(path, config={"a": 2}).read()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"run\.pt is damaged or not an lrlab checkpoint .*delete it"):
        Checkpoint(path, config={"a": 1}).read()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"run\.pt is damaged or not an lrlab checkpoint"):
        Checkpoint(path, config={"a": 1}).read()
