"""Tests of lrlab.lr_find: ramp, smoothing, early stop, exact restoration, the rules, the spread over seeds."""

import copy
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lrlab.data import TensorLoader  # noqa: E402
from lrlab.lr_find import (  # noqa: E402
    RULES,
    LRFindResult,
    LRFindSpread,
    lr_find,
    lr_find_seeds,
    lr_ramp,
    smooth_losses,
)


# torch imports torch._dynamo when the first optimizer is built (about 1.5 s here): pay it at import, not
# inside whichever test happens to run first.
torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def regression_data(n=32, d=3, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = scale * torch.randn(n, d, generator=g)
    return X, X @ torch.randn(d, 1, generator=g) + 0.05 * torch.randn(n, 1, generator=g)


class RecordingSGD(torch.optim.SGD):
    """SGD that records every param group's lr at the moment of each update."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def step(self, closure=None):
        self.seen.append([group["lr"] for group in self.param_groups])
        return super().step(closure)


# --------------------------------------------------------------------------- 1. the ramp


@pytest.mark.parametrize("mode, start, end, expected", [
    ("exp", 1e-4, 1.0, [1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    ("linear", 0.1, 0.5, [0.1, 0.2, 0.3, 0.4, 0.5]),
])
def test_ramp_is_the_formula_and_is_what_every_param_group_trains_at(mode, start, end, expected):
    X, y = regression_data(scale=0.01)  # tiny Hessian: nothing diverges even at lr=1
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = RecordingSGD([{"params": [net.weight], "lr": 0.05}, {"params": [net.bias], "lr": 0.07, "momentum": 0.5}])
    result = lr_find(net, TensorLoader(X, y, 8), torch.nn.MSELoss(), opt, start, end, 5, step_mode=mode)
    assert not result.stopped_early and result.stop_iteration is None
    np.testing.assert_allclose(result.lrs, expected, rtol=1e-12)
    np.testing.assert_allclose(lr_ramp(start, end, 5, mode), expected, rtol=1e-12)
    assert opt.seen == [[lr, lr] for lr in result.lrs.tolist()]  # both groups, during each of the 5 updates
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.07]  # and the optimizer's own rates are back


@settings(max_examples=30, deadline=None)
@given(st.floats(1e-8, 1e-1), st.floats(1.5, 1e6), st.integers(2, 300))
def test_exp_ramp_runs_from_start_to_end_with_a_constant_ratio(start, factor, n):
    lrs = lr_ramp(start, start * factor, n, "exp")
    assert lrs[0] == start and math.isclose(lrs[-1], start * factor, rel_tol=1e-9)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], factor ** (1 / (n - 1)), rtol=1e-9)


def test_iterator_is_restarted_when_exhausted_and_a_one_shot_one_is_reported():
    batches = [(torch.full((2, 1), float(k)), torch.zeros(2, 1)) for k in (1, 2)]
    seen = []

    def loss(out, y):
        seen.append(net.last_x)
        return ((out - y) ** 2).mean()

    class Net(torch.nn.Linear):
        def forward(self, X):
            self.last_x = float(X[0, 0])
            return super().forward(X)

    net = Net(1, 1)
    lr_find(net, batches, loss, torch.optim.SGD(net.parameters(), lr=0.1), 1e-6, 1e-5, 5, diverge_th=1e9)
    assert seen == [1.0, 2.0, 1.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="train_iter gave no batch"):
        lr_find(net, iter(batches), loss, torch.optim.SGD(net.parameters(), lr=0.1), 1e-6, 1e-5, 5, diverge_th=1e9)


# --------------------------------------------------------------------------- 2. exact restoration


def small_net():
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(8, 1))


def assert_identical(a, b, where="state"):
    """Recursive bit-for-bit equality of nested dicts / lists / tensors / numbers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, z) in enumerate(zip(a, b)):
            assert_identical(x, z, f"{where}[{i}]")
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def trained_setup(opt_name, seed=0):
    """Net, optimizer (after 2 real updates, so momentum / Adam moments exist) and a seeded shuffling loader."""
    torch.manual_seed(seed)
    X, y = regression_data(n=24)
    net = small_net()
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4) if opt_name == "sgd"
           else torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.8, 0.95)))
    loader = TensorLoader(X, y, 8, shuffle=True, seed=3)
    for (Xb, yb), _ in zip(loader, range(2)):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(Xb), yb).backward()
        opt.step()
    return net, opt, loader


def snapshot(net, opt, loader):
    return {"net": copy.deepcopy(net.state_dict()), "opt": copy.deepcopy(opt.state_dict()),
            "grads": [None if p.grad is None else p.grad.clone() for p in net.parameters()],
            "rng": torch.get_rng_state(), "loader": copy.deepcopy(loader.state_dict()),
            "modes": [m.training for m in net.modules()]}


def next_epoch(loader):
    return [(X.clone(), y.clone()) for X, y in loader]


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("fail_at", [None, 3])
def test_everything_is_restored_bit_for_bit(opt_name, fail_at):
    net, opt, loader = trained_setup(opt_name)
    net.eval()
    net[3].train()  # mixed modes: restored module by module
    assert "momentum_buffer" in opt.state_dict()["state"][0] or "exp_avg" in opt.state_dict()["state"][0]
    before = snapshot(net, opt, loader)
    twin = TensorLoader(loader.X, loader.y, 8, shuffle=True, seed=3)
    twin.load_state_dict(loader.state_dict())
    calls = []

    def loss(out, y):
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("boom")
        return torch.nn.functional.mse_loss(out, y)

    if fail_at is None:
        result = lr_find(net, loader, loss, opt, 1e-5, 100.0, 30)
        assert len(result.lrs) >= 10
    else:
        with pytest.raises(RuntimeError, match="boom"):
            lr_find(net, loader, loss, opt, 1e-5, 100.0, 30)
    after = snapshot(net, opt, loader)
    for key in before:
        assert_identical(before[key], after[key], key)
    assert all(a is b for a, b in zip(opt.param_groups[0]["params"], net.parameters()))
    for (Xa, ya), (Xb, yb) in zip(next_epoch(loader), next_epoch(twin), strict=True):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_training_after_lr_find_is_training_without_it(opt_name):
    def train_more(net, opt, loader):
        net.train()
        for X, y in loader:  # dropout and the loader's shuffling both draw random numbers
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(X), y).backward()
            opt.step()
        return [p.detach().clone() for p in net.parameters()] + [b.clone() for b in net.buffers()]

    net, opt, loader = trained_setup(opt_name)
    plain = train_more(net, opt, loader)
    net, opt, loader = trained_setup(opt_name)
    lr_find(net, loader, torch.nn.MSELoss(), opt, 1e-5, 10.0, 20)
    with_finder = train_more(net, opt, loader)
    assert all(torch.equal(a, b) for a, b in zip(plain, with_finder, strict=True))


def test_nan_at_the_first_iteration_raises_and_restores():
    net, opt, loader = trained_setup("sgd")
    before = snapshot(net, opt, loader)
    with pytest.raises(ValueError, match="first iteration"):
        lr_find(net, loader, lambda out, y: torch.nn.functional.mse_loss(out, y) * float("nan"), opt, 1e-5, 1.0, 10)
    after = snapshot(net, opt, loader)
    for key in before:
        assert_identical(before[key], after[key], key)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_batches_follow_the_net_and_the_cuda_random_state_is_restored():
    X, y = regression_data(n=24)
    torch.manual_seed(0)
    net = small_net().cuda()  # dropout on CUDA draws from the CUDA generator
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    torch.nn.functional.mse_loss(net(X.cuda()), y.cuda()).backward()
    opt.step()
    loader = TensorLoader(X, y, 8, shuffle=True, seed=3)  # batches on the CPU, moved by lr_find
    before = snapshot(net, opt, loader)
    cuda_rng = torch.cuda.get_rng_state_all()
    result = lr_find(net, loader, torch.nn.MSELoss(), opt, 1e-5, 10.0, 20)
    assert len(result.lrs) >= 5 and np.all(np.isfinite(result.losses[:5]))
    after = snapshot(net, opt, loader)
    for key in before:
        assert_identical(before[key], after[key], key)
    assert all(torch.equal(a, b) for a, b in zip(cuda_rng, torch.cuda.get_rng_state_all()))


# --------------------------------------------------------------------------- 3. early stop


def quadratic():
    """loss(w) = w**2 (Hessian 2): one SGD step shrinks it iff 0 < lr < 1."""
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    return net, [(torch.ones(1, 1), torch.zeros(1, 1))]


def test_divergence_stops_early_after_recording_the_iteration_that_triggered_it():
    net, batches = quadratic()
    result = lr_find(net, batches, torch.nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.1), 1e-3, 1e4, 60)
    n = len(result.lrs)
    assert result.stopped_early and result.stop_iteration == n - 1 < 59
    assert result.lrs[-1] > 1.0  # it only diverges above lr = 2/L = 1
    best = np.minimum.accumulate(result.smoothed)
    assert result.smoothed[-1] > 5.0 * best[-1]
    assert np.all(result.smoothed[:-1] <= 5.0 * best[:-1])  # nothing fired earlier
    frame = result.to_frame()
    assert list(frame.columns) == ["iteration", "lr", "loss", "smoothed"] and len(frame) == n
    assert net.weight.item() == 1.0


def test_a_nan_loss_later_stops_the_test_and_the_rules_ignore_it():
    net, batches = quadratic()
    calls = []

    def loss(out, y):
        calls.append(1)
        value = torch.nn.functional.mse_loss(out, y)
        return value * float("nan") if len(calls) == 8 else value

    result = lr_find(net, batches, loss, torch.optim.SGD(net.parameters(), lr=0.1), 1e-4, 1e-2, 20)
    assert result.stopped_early and result.stop_iteration == 7 and np.isnan(result.smoothed[-1])
    assert result.suggestion("minimum", skip_start=0, skip_end=0) == pytest.approx(result.lrs[6] / 10)


# --------------------------------------------------------------------------- 4. smoothing


def test_smoothing_is_the_bias_corrected_ema():
    # beta = 0.5: avg = 2, 2, 1.5; corrections 1 - 0.5**k = 0.5, 0.75, 0.875
    np.testing.assert_allclose(smooth_losses([4.0, 2.0, 1.0], smooth_f=0.5), [4.0, 8 / 3, 12 / 7], rtol=1e-15)
    np.testing.assert_array_equal(smooth_losses([3.0, 1.0, 2.0], smooth_f=1.0), [3.0, 1.0, 2.0])
    assert smooth_losses([7.0, 1.0], smooth_f=0.02)[0] == pytest.approx(7.0)  # fastai: debiased, starts at the loss


def test_lr_find_smooths_with_the_helper():
    X, y = regression_data()
    net = torch.nn.Linear(3, 1)
    result = lr_find(net, TensorLoader(X, y, 4), torch.nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.1),
                     1e-4, 1.0, 20, smooth_f=0.3)
    np.testing.assert_array_equal(result.smoothed, smooth_losses(result.losses, 0.3))
    assert result.lrs.dtype == result.losses.dtype == result.smoothed.dtype == np.float64


# --------------------------------------------------------------------------- 5. a known good range


def least_squares(n=64, d=4, mu=0.5, L=2.0, seed=0):
    """MSE least squares whose Hessian (2/n) X^T X has eigenvalues exactly linspace(mu, L, d)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    U, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    X = (n / 2) ** 0.5 * U @ torch.diag(torch.linspace(mu, L, d, dtype=torch.float64).sqrt()) @ Q.T
    w = torch.randn(d, 1, generator=g, dtype=torch.float64)
    y = X @ w + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X.float(), y.float()


def test_suggestions_lie_where_one_sgd_step_reduces_the_loss():
    # Gradient descent on a quadratic with Hessian eigenvalues in [mu, L] = [0.5, 2] reduces the loss from
    # every starting point iff 0 < lr < 2/L = 1, and diverges above. Full batch: no noise, deterministic.
    X, y = least_squares()
    eig = torch.linalg.eigvalsh(2 / X.shape[0] * X.double().T @ X.double())
    assert eig.min().item() == pytest.approx(0.5, rel=1e-5) and eig.max().item() == pytest.approx(2.0, rel=1e-5)
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1, bias=False)
    start = [p.detach().clone() for p in net.parameters()]
    result = lr_find(net, TensorLoader(X, y, 64), torch.nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.1),
                     1e-4, 100.0, 100)
    assert result.stopped_early and result.lrs[-1] > 1.0
    lrs = result.suggestions()
    for rule, lr in lrs.items():
        assert 1e-2 < lr < 1.0, (rule, lr)  # inside (0, 2/L), and well clear of the flat start of the ramp
        probe = copy.deepcopy(net)
        before = torch.nn.functional.mse_loss(probe(X), y)
        probe.zero_grad()
        before.backward()
        with torch.no_grad():
            probe.weight -= lr * probe.weight.grad
        assert torch.nn.functional.mse_loss(probe(X), y) < before, rule
    assert all(torch.equal(a, b) for a, b in zip(start, net.parameters()))


# --------------------------------------------------------------------------- 6. the rules on hand-made curves


def curve(smoothed, lrs=None):
    smoothed = np.asarray(smoothed, dtype=float)
    lrs = 10.0 ** np.linspace(-4, 0, len(smoothed)) if lrs is None else np.asarray(lrs, dtype=float)
    return LRFindResult(lrs, smoothed.copy(), smoothed, False, float(lrs[0]), float(lrs[-1]), len(lrs))


def test_minimum_and_steepest_on_known_functions_of_log_lr():
    x = np.linspace(-4, 0, 41)  # log10(lr) in steps of 0.1
    assert curve((x + 2) ** 2).suggestion("minimum", skip_start=0, skip_end=0) == pytest.approx(1e-3)  # 1e-2 / 10
    sigmoid = curve(-np.tanh(3 * (x + 2.5)))  # steepest descent at log10(lr) = -2.5 (index 15)
    assert sigmoid.suggestion("steepest") == pytest.approx(10 ** -2.5)  # default skips 10 / 5 keep index 15
    assert sigmoid.suggestion("steepest", skip_start=0, skip_end=0) == pytest.approx(10 ** -2.5)
    assert sigmoid.lrs[np.argmin(np.gradient(sigmoid.smoothed))] == pytest.approx(10 ** -2.5)  # torch-lr-finder's


def test_valley_by_hand():
    s = [5, 6, 4, 4.5, 3, 2, 2.5, 1, 1.2, 0.9, 3, 7]
    # longest strictly decreasing subsequence: 6 points (5, 4, 3, 2, 1, 0.9), first ending at index 9;
    # fastai's index: 9 - 6 + 6 // 3 + 6 // 6 = 6
    r = curve(s)
    assert r.suggestion("valley", skip_start=0, skip_end=0) == r.lrs[6]
    # skipping the first point leaves 6, 4, 3, 2, 1, 0.9 ending at index 8 of the rest: 8 - 6 + 2 + 1 = 5, i.e. 6
    assert r.suggestion("valley", skip_start=1, skip_end=0) == r.lrs[6]


def valley_reference(losses):
    """fastai's valley, loop for loop; None where its index would be < 0 or the valley has < 3 points."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return None if lds[max_end] < 3 else idx


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=3, max_size=25))
def test_valley_matches_fastais_loops(values):
    r = curve([float(v) for v in values])
    idx = valley_reference(values)
    if idx is None:
        with pytest.raises(ValueError, match="valley"):
            r.suggestion("valley", skip_start=0, skip_end=0)
    else:
        assert r.suggestion("valley", skip_start=0, skip_end=0) == r.lrs[idx]


def slide_reference(lrs, losses, lr_diff=15, thresh=0.005, adjust_value=1.0):
    """fastai 2.8.12's ``slide`` (``fastai/callback/schedule.py``), line for line, on NumPy arrays."""
    loss_grad = np.gradient(losses)
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr) * adjust_value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 5.0), min_size=16, max_size=60), st.integers(0, 3))
def test_slide_matches_fastais_lines(values, skip_start):
    r = curve(values)
    lrs, s = r.lrs[skip_start:], r.smoothed[skip_start:]
    if len(s) < 16:
        with pytest.raises(ValueError, match="'slide' needs at least 16"):
            r.suggestion("slide", skip_start=skip_start, skip_end=0)
    else:
        assert r.suggestion("slide", skip_start=skip_start, skip_end=0) == slide_reference(lrs, s)


def test_slide_by_hand_and_not_among_the_course_rules():
    # a straight line has a constant gradient: the first comparison stops the slide at 15 points from the end
    r = curve(np.linspace(3.0, 1.0, 40))
    assert r.suggestion("slide", skip_start=0, skip_end=0) == r.lrs[40 - 16]
    # a gradient that changes by more than 0.005 everywhere slides to the first rate
    steep = curve(np.arange(20.0) ** 2 / 10)
    assert steep.suggestion("slide", skip_start=0, skip_end=0) == steep.lrs[0]
    assert "slide" not in r.suggestions()     # the course's results keep their three rules


def test_unknown_rule_and_too_few_points_are_clear_errors():
    r = curve(np.linspace(3, 1, 12))
    with pytest.raises(ValueError, match="valley.*steepest.*minimum"):
        r.suggestion("steep")
    with pytest.raises(ValueError, match="'steepest' needs at least 2"):
        r.suggestion("steepest")  # 12 points, skips 10 and 5
    with pytest.raises(ValueError, match="'valley' needs at least 3"):
        r.suggestion("valley", skip_start=10, skip_end=0)


# --------------------------------------------------------------------------- 7. parameter errors


@pytest.mark.parametrize("kwargs, name", [
    ({"start_lr": 0.0}, "start_lr"), ({"start_lr": -1e-3}, "start_lr"), ({"start_lr": float("nan")}, "start_lr"),
    ({"end_lr": 1e-8}, "end_lr"), ({"start_lr": 0.1, "end_lr": 0.1}, "end_lr"),
    ({"num_iter": 1}, "num_iter"), ({"num_iter": 2.5}, "num_iter"), ({"num_iter": True}, "num_iter"),
    ({"step_mode": "log"}, "step_mode"), ({"smooth_f": 0.0}, "smooth_f"), ({"smooth_f": 1.5}, "smooth_f"),
    ({"diverge_th": 1.0}, "diverge_th"), ({"diverge_th": "5"}, "diverge_th"),
    ({"optimizer": object()}, "optimizer"), ({"loss": "mse"}, "loss"),
])
def test_bad_parameters_are_named(kwargs, name):
    net = torch.nn.Linear(1, 1)
    args = {"net": net, "train_iter": [(torch.ones(1, 1), torch.ones(1, 1))], "loss": torch.nn.MSELoss(),
            "optimizer": torch.optim.SGD(net.parameters(), lr=0.1)}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        lr_find(**args)


# --------------------------------------------------------------------------- 8. spread over seeds


def seeds_setup():
    X, y = regression_data(n=32)
    loader = TensorLoader(X, y, 8, shuffle=True, seed=0)
    kwargs = dict(start_lr=1e-4, end_lr=30.0, num_iter=40)
    return (lambda: torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)), loader,
            torch.nn.MSELoss(), lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9), kwargs)


def test_lr_find_seeds_table_summary_and_determinism():
    make_net, loader, loss, make_opt, kwargs = seeds_setup()
    rng = torch.get_rng_state()
    spread = lr_find_seeds(make_net, loader, loss, make_opt, [0, 1], **kwargs)
    assert torch.equal(rng, torch.get_rng_state())
    assert isinstance(spread, LRFindSpread) and list(spread.results) == [0, 1]
    table = spread.table()
    assert table.shape == (6, 3) and list(table.columns) == ["seed", "rule", "lr"]
    assert table["lr"].notna().all() and (table["lr"] > 0).all()
    summary = spread.summary()
    assert list(summary["rule"]) == list(RULES) and len(summary) == 3
    assert (summary["spread"] >= 1).all() and (summary["min"] <= summary["median"]).all()
    row = summary.set_index("rule").loc["minimum"]
    lrs = table.loc[table["rule"] == "minimum", "lr"]
    assert row["spread"] == pytest.approx(lrs.max() / lrs.min())
    # the same seed gives the same curve, whatever the loader did in between and in whichever list
    next_epoch(loader)
    again = lr_find_seeds(make_net, loader, loss, make_opt, [1], **kwargs)
    np.testing.assert_array_equal(again.results[1].losses, spread.results[1].losses)
    assert again.results[1].suggestions() == spread.results[1].suggestions()
    # and it is the run one would set up by hand: seed, net, optimizer, a loader shuffled with that seed
    torch.manual_seed(1)
    net = make_net()
    by_hand = lr_find(net, TensorLoader(loader.X, loader.y, 8, shuffle=True, seed=1), loss,
                      make_opt(net.parameters()), **kwargs)
    np.testing.assert_array_equal(by_hand.losses, spread.results[1].losses)


def test_lr_find_seeds_checks_its_seeds():
    make_net, loader, loss, make_opt, kwargs = seeds_setup()
    for seeds in ([], [0, 0], [0.5]):
        with pytest.raises(ValueError, match="seeds"):
            lr_find_seeds(make_net, loader, loss, make_opt, seeds, **kwargs)


# --------------------------------------------------------------------------- 9. plots


def test_plots_return_figures_with_the_suggestions_marked():
    make_net, loader, loss, make_opt, kwargs = seeds_setup()
    spread = lr_find_seeds(make_net, loader, loss, make_opt, [0, 1], **kwargs)
    result = spread.results[0]
    fig = result.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert "smoothed loss" in labels and "loss" in labels
    for rule, lr in result.suggestions().items():
        assert f"{rule}: {lr:.2g}" in labels
    _, own = plt.subplots()
    assert result.plot(ax=own) is own.figure
    with pytest.raises(ValueError, match="rules"):
        result.plot(rules=("valley", "slide"))
    fig = spread.plot()
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log"
    assert {"seed 0", "seed 1", *RULES} <= {line.get_label() for line in fig.axes[0].get_lines()}


# --------------------------------------------------------------------------- 8. torch-lr-finder itself


@pytest.mark.parametrize("accumulation, validate", [(1, False), (3, False), (1, True), (2, True)])
def test_raw_losses_and_rates_equal_torch_lr_finder(accumulation, validate):
    """With smoothing off in torch-lr-finder (it smooths without fastai's bias correction), its recorded
    losses are the raw ones: lrlab's equal them bit for bit, accumulated and validated alike."""
    torch_lr_finder = pytest.importorskip("torch_lr_finder")
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    X, Xv = torch.randn(96, 5), torch.randn(40, 5)
    w = torch.randn(5, 1)
    train = DataLoader(TensorDataset(X, X @ w + 0.1 * torch.randn(96, 1)), batch_size=16)
    valid = DataLoader(TensorDataset(Xv, Xv @ w), batch_size=16) if validate else None

    def start():
        torch.manual_seed(1)
        net = torch.nn.Linear(5, 1)
        return net, torch.optim.SGD(net.parameters(), lr=1e-4)

    finder = torch_lr_finder.LRFinder(*start(), torch.nn.MSELoss(), device="cpu")
    finder.range_test(train, val_loader=valid, start_lr=1e-4, end_lr=1, num_iter=20, smooth_f=0, diverge_th=1e9,
                      accumulation_steps=accumulation)
    net, opt = start()
    ours = lr_find(net, train, torch.nn.MSELoss(), opt, start_lr=1e-4, end_lr=1, num_iter=20, diverge_th=1e9,
                   valid_iter=valid, accumulation_steps=accumulation)
    np.testing.assert_array_equal(ours.losses, finder.history["loss"])
    np.testing.assert_array_equal(ours.lrs, finder.history["lr"])


def test_accumulation_steps_and_empty_validation_are_checked():
    net = torch.nn.Linear(2, 1)
    batches = [(torch.randn(4, 2), torch.randn(4, 1))]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="accumulation_steps must be an int >= 1"):
        lr_find(net, batches, torch.nn.MSELoss(), opt, accumulation_steps=0)
    with pytest.raises(ValueError, match="valid_iter gave no batch"):
        lr_find(net, batches, torch.nn.MSELoss(), opt, valid_iter=[])
