"""Every statement the book makes about PyTorch's behaviour, checked against the installed PyTorch.

The chapters assert many of their claims in their own cells (nbval runs them). This file checks the
rest: statements in prose, in exercise solutions shown as text, and in chapter 9's correspondence
table. Each test names the chapter and quotes the claim it checks, so a PyTorch release that changes
the behaviour fails here, next to the sentence that must change.
"""

import inspect
import math
import pkgutil
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as S

import lrlab
from lrlab import course  # noqa: E402 (the course's models)
from lrlab import (ConstantScheduler, CosineScheduler, ExponentialScheduler, FactorScheduler, LinearWarmup,
                   MultiFactorScheduler, PolyScheduler, SequentialScheduler, SquareRootScheduler, StepScheduler,
                   trace_scheduler)


def steps(n):
    return np.arange(n)


def one_param_sgd(lr=0.1, **kwargs):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, **kwargs)


# ------------------------------------------------------------------------------------------------ chapter 2


def test_ch2_group_without_lr_uses_the_default_and_halving_keeps_the_ratio():
    """"a group without its own "lr" uses the default" ... print(...)  # [0.15, 0.015]"""
    params = list(course.LeNet().parameters())
    trainer = torch.optim.SGD([{"params": params[:-2]}, {"params": params[-2:], "lr": 0.03}], lr=0.3)
    assert [g["lr"] for g in trainer.param_groups] == [0.3, 0.03]
    for g in trainer.param_groups:
        g["lr"] *= 0.5
    assert [g["lr"] for g in trainer.param_groups] == [0.15, 0.015]


def test_ch2_next_step_uses_an_lr_written_into_param_groups():
    """"the next call to trainer.step() uses the new value" (plain SGD: w <- w - lr * g)."""
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.3)
    opt.param_groups[0]["lr"] = 0.1
    (2 * w).sum().backward()
    opt.step()
    assert w.item() == pytest.approx(1 - 0.1 * 2, abs=0)


# ------------------------------------------------------------------------------------------------ chapter 4


def test_ch4_gamma_01_recursion_can_differ_from_the_closed_form_in_the_last_bit():
    """"With a factor such as 0.1, PyTorch multiplies the current rate ... the two can then differ in the last bit.\""""
    torch_lrs = trace_scheduler(lambda o: S.MultiStepLR(o, [5, 10, 15, 20, 25], gamma=0.1), 30, lr=0.1)
    closed = MultiFactorScheduler(steps=[5, 10, 15, 20, 25], factor=0.1, base_lr=0.1)(steps(30))
    assert not np.array_equal(torch_lrs, closed)
    assert np.allclose(torch_lrs, closed, rtol=4 * np.finfo(float).eps, atol=0)


def test_ch4_and_ch9_gamma_one_half_is_exact():
    """"The values agree exactly ... powers of one half, which floating-point arithmetic represents without error.\""""
    for make, ours in [(lambda o: S.MultiStepLR(o, [15, 30], gamma=0.5), MultiFactorScheduler([15, 30], 0.5, 0.5)),
                       (lambda o: S.StepLR(o, 10, gamma=0.5), StepScheduler(10, 0.5, 0.5))]:
        assert list(trace_scheduler(make, 60, lr=0.5)) == list(ours(steps(60)))


def test_ch9_schedulers_compute_recursively_from_the_current_rate():
    """"PyTorch computes them recursively, from the previous step's rate": a rate written by hand is carried on."""
    opt = one_param_sgd(0.1)
    sched = S.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    opt.param_groups[0]["lr"] = 1.0  # overwrite mid-run: the closed form would give 0.05 at t = 4
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.5  # 1.0 * gamma, not 0.1 * gamma ** 2


# ------------------------------------------------------------------------------------------------ chapter 6


def test_ch6_polynomial_lr_and_the_closed_form_differ_only_by_rounding():
    """"the largest difference is of the order of 1e-18, far below the 1e-12 the assertion demands\""""
    worst = 0.0
    for p in [0.5, 0.9, 1, 2, 3]:
        torch_lrs = trace_scheduler(lambda o: S.PolynomialLR(o, total_iters=100, power=p), 101, lr=0.005)
        worst = max(worst, np.max(np.abs(torch_lrs - PolyScheduler(100, base_lr=0.005, power=p)(steps(101)))))
    assert 0 < worst < 1e-17


def test_ch6_the_helpers_formula_past_the_end_is_complex():
    """"the helper's formula would raise a negative number to a fractional power there and return a complex number\""""
    value = 0.005 * (1 - 101 / 100) ** 0.9
    assert isinstance(value, complex)
    assert PolyScheduler(100, base_lr=0.005, power=0.9)(101) == 0.0


def test_ch6_exercise_linear_lr_is_poly_with_power_one():
    """Exercise poly-ex-linear: LinearLR(1, 0, 100) equals the poly policy with p = 1, "about 1e-18"."""
    lrs = trace_scheduler(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=100), 101, lr=0.005)
    assert np.max(np.abs(lrs - PolyScheduler(100, base_lr=0.005, power=1)(steps(101)))) < 1e-17


def test_ch6_exercise_schedulers_keep_each_groups_initial_lr():
    """Exercise poly-ex-groups: "PyTorch's schedulers and lrlab.ScheduleLR keep exactly this initial_lr per group"."""
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    for make in (lambda o: S.PolynomialLR(o, total_iters=10, power=0.9),
                 lambda o: lrlab.ScheduleLR(o, PolyScheduler(10, base_lr=0.1, power=0.9))):
        opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1)
        sched = make(opt)
        assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.01]
        for _ in range(4):
            opt.step()
            sched.step()
        ratio = opt.param_groups[1]["lr"] / opt.param_groups[0]["lr"]
        assert ratio == pytest.approx(0.1, rel=1e-12)


# ------------------------------------------------------------------------------------------------ chapter 7


def test_ch7_torchvision_has_no_lr_scheduler():
    """"torchvision ships no learning-rate schedulers at all"; "torchvision.utils is a single module\""""
    import torchvision

    names = [m.name for m in pkgutil.walk_packages(torchvision.__path__, "torchvision.")]
    assert not [n for n in names if "lr_scheduler" in n or "scheduler" in n.rsplit(".", 1)[-1]]
    assert not hasattr(torchvision.utils, "__path__") and not hasattr(torchvision.utils, "lr_scheduler")
    with pytest.raises(AttributeError):
        from torchvision import utils

        utils.lr_scheduler  # the tutorial's `utils.lr_scheduler.WarmupMultiFactorLR(...)`


def test_ch7_warmup_multistep_is_linear_lr_chained_with_multistep_lr():
    """Exercise ex-warmup-torch: ChainedScheduler([LinearLR, MultiStepLR]) equals WarmupMultiFactorLR."""
    def composition(opt):
        return S.ChainedScheduler([S.LinearLR(opt, start_factor=0.001, end_factor=1.0, total_iters=10),
                                   S.MultiStepLR(opt, milestones=[50, 75], gamma=0.1)])
    ours = trace_scheduler(lambda o: lrlab.WarmupMultiFactorLR(o, [50, 75], 0.1, 0.001, 10), 100, lr=0.01)
    assert np.allclose(trace_scheduler(composition, 100, lr=0.01), ours, rtol=1e-9, atol=0)


def test_ch7_maskrcnn_warmup_multistep_formula_by_hand():
    """maskrcnn-benchmark's WarmupMultiStepLR.get_lr, written out: alpha = t / W, factor = wf * (1 - alpha) + alpha,
    lr = base * factor * gamma ** bisect_right(milestones, t)."""
    import bisect

    def maskrcnn(t, base=0.01, wf=0.001, W=10, milestones=(50, 75), gamma=0.1):
        factor = 1.0
        if t < W:
            alpha = float(t) / W
            factor = wf * (1 - alpha) + alpha
        return base * factor * gamma ** bisect.bisect_right(milestones, t)

    ours = trace_scheduler(lambda o: lrlab.WarmupMultiFactorLR(o, [50, 75], 0.1, 0.001, 10), 100, lr=0.01)
    assert np.allclose(ours, [maskrcnn(t) for t in range(100)], rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------ chapter 8


def test_ch8_get_last_lr_after_step_is_the_next_epochs_rate():
    """The tutorial prints scheduler.get_last_lr()[0] after scheduler.step(): the rate of the *next* epoch."""
    opt = one_param_sgd(0.001)
    sched = S.StepLR(opt, step_size=5, gamma=0.5)
    trained, printed = [], []
    for epoch in range(1, 11):
        trained.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        printed.append(sched.get_last_lr()[0])
    assert printed[:-1] == trained[1:]
    assert printed[4] == 0.0005 and trained[4] == 0.001  # "Epoch 5, Learning Rate: 0.000500" after an epoch at 0.001
    assert printed[-1] == 0.00025 and 0.00025 not in trained


def test_ch8_adam_steps_scale_with_the_learning_rate():
    """"every one of those steps is still scaled by the learning rate of the optimizer's parameter group\""""
    moves = []
    for lr in (1e-3, 2e-3):
        torch.manual_seed(0)
        w = torch.randn(5, dtype=torch.float64, requires_grad=True)
        start = w.detach().clone()
        opt = torch.optim.Adam([w], lr=lr)
        for _ in range(3):
            opt.zero_grad()
            (w ** 3).sum().backward()
            opt.step()
            with torch.no_grad():  # equal gradients for both runs: reset w, keep Adam's state
                move = w - start
                w.copy_(start)
        moves.append(move)
    assert torch.allclose(moves[1], 2 * moves[0], rtol=1e-10, atol=0)  # w - start rounds at ~1e-13


def test_ch8_cosine_t_max_20_over_10_epochs_ends_near_half_the_rate():
    """CosineAnnealingLR(T_max=20) over the tutorial's 10 epochs: the last epoch trains at 0.001 (1 + cos(9 pi/20)) / 2."""
    lrs = trace_scheduler(lambda o: S.CosineAnnealingLR(o, T_max=20), 10, lr=0.001)
    assert lrs[-1] == pytest.approx(0.001 * (1 + math.cos(9 * math.pi / 20)) / 2, rel=1e-12)
    assert lrs[-1] > 0.00057
    corrected = trace_scheduler(lambda o: S.CosineAnnealingLR(o, T_max=10), 10, lr=0.001)
    assert corrected[-1] == pytest.approx(0.001 * (1 + math.cos(9 * math.pi / 10)) / 2, rel=1e-12) and corrected[-1] < 3e-5


# ------------------------------------------------------------------------------------------------ chapter 9


def test_ch9_cosine_annealing_rises_after_t_max_and_is_back_at_eta0_at_2_t_max():
    """"it keeps following the cosine, which rises again and is back at eta_0 at t = 2 T_max\""""
    lrs = trace_scheduler(lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=0.01), 41, lr=0.1)
    assert np.all(np.diff(lrs[20:41]) > 0)
    assert lrs[40] == pytest.approx(0.1, rel=1e-9)


def test_ch9_constant_lr_after_cosine_returns_to_the_base_rate():
    """The chapter's correction: ConstantLR inside SequentialLR holds its factor only for total_iters, then the base rate."""
    def cosine_then_constant(opt):
        return S.SequentialLR(opt, [S.CosineAnnealingLR(opt, T_max=30, eta_min=0.001),
                                    S.ConstantLR(opt, factor=0.01, total_iters=5)], milestones=[30])
    lrs = trace_scheduler(cosine_then_constant, 45, lr=0.1)
    assert np.allclose(lrs[30:35], 0.001, rtol=1e-12, atol=0)
    assert np.all(lrs[35:] == 0.1)


def test_ch9_lambda_lr_hold_after_cosine_stays_at_eta_min():
    """Exercise torch-schedulers-ex-cosine-end: SequentialLR([CosineAnnealingLR, LambdaLR(const)]) holds 0.001."""
    def cosine_then_hold(opt):
        return S.SequentialLR(opt, [S.CosineAnnealingLR(opt, T_max=30, eta_min=0.001),
                                    S.LambdaLR(opt, lambda t: 0.001 / 0.1)], milestones=[30])
    lrs = trace_scheduler(cosine_then_hold, 40, lr=0.1)
    ours = CosineScheduler(30, base_lr=0.1, final_lr=0.001)(steps(40))
    assert np.allclose(lrs, ours, rtol=1e-9, atol=0)
    plain = trace_scheduler(lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.001), 40, lr=0.1)
    assert round(plain[39], 4) == 0.0214


def test_ch9_one_cycle_lr_writes_momentum_into_plain_sgd():
    """"OneCycleLR does write momentum into plain SGD: its default momentum=0 is a key it cycles, 0.95 to 0.85\""""
    opt = one_param_sgd(0.3)
    assert opt.param_groups[0]["momentum"] == 0  # plain SGD: the key exists, set to 0
    sched = S.OneCycleLR(opt, max_lr=0.3, total_steps=100)
    momenta = []
    for _ in range(99):
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert momenta[0] == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85)
    assert int(np.argmin(momenta)) == int(0.3 * 100 - 1)  # lowest where the rate peaks
    off = one_param_sgd(0.3)
    S.OneCycleLR(off, max_lr=0.3, total_steps=100, cycle_momentum=False)
    assert off.param_groups[0]["momentum"] == 0


def test_ch9_one_cycle_momentum_is_two_cosines_joined():
    opt = one_param_sgd(0.3)
    sched = S.OneCycleLR(opt, max_lr=0.3, total_steps=100)
    momenta = []
    for _ in range(100):
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        if len(momenta) < 100:
            sched.step()
    k = 0.3 * 100 - 1
    ours = SequentialScheduler([CosineScheduler(k, base_lr=0.95, final_lr=0.85),
                                CosineScheduler(100 - 1 - k, base_lr=0.85, final_lr=0.95)], milestones=[k])
    assert np.allclose(momenta, ours(steps(100)), rtol=1e-9, atol=0)


def test_ch9_one_cycle_exercise_numbers():
    """Exercise torch-schedulers-ex-onecycle: peak at update 2114, start 0.012, end 1.2e-06."""
    rates = trace_scheduler(lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=7050), 7050, lr=0.3)
    assert int(np.argmax(rates)) == 2114 and round(rates[0], 6) == 0.012
    assert rates[-1] == pytest.approx(1.2e-6, rel=1e-9)


def test_ch9_linear_lr_rejects_a_start_factor_of_zero():
    """"LinearLR requires a start factor above zero\""""
    with pytest.raises(ValueError):
        S.LinearLR(one_param_sgd(), start_factor=0.0, total_iters=5)


def test_ch9_reduce_lr_on_plateau_defaults_and_trace():
    """Defaults "factor 0.1, patience 10, threshold 1e-4"; the made-up curve halves after epochs 7, 13, 16 and 19."""
    params = inspect.signature(S.ReduceLROnPlateau).parameters
    assert (params["factor"].default, params["patience"].default, params["threshold"].default) == (0.1, 10, 1e-4)
    losses = [1.0, 0.8, 0.7, 0.65, 0.64, 0.64, 0.64, 0.64, 0.64, 0.5,
              0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45]
    lrs = trace_scheduler(lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2), len(losses), lr=0.1,
                          metrics=losses)
    cuts = [t for t in range(1, len(lrs)) if lrs[t] < lrs[t - 1]]
    assert cuts == [8, 14, 17]  # epochs that first train at the new rate; the cut after epoch 19 comes too late
    sched = S.ReduceLROnPlateau(one_param_sgd(0.1), factor=0.5, patience=2)
    for value in losses:
        sched.step(value)
    assert sched.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 16)


@pytest.mark.parametrize("name, make, ours, n", [
    ("ConstantScheduler = LambdaLR(1)", lambda o: S.LambdaLR(o, lambda t: 1.0), ConstantScheduler(0.3), 30),
    ("SquareRootScheduler = LambdaLR((t+1)^-1/2)", lambda o: S.LambdaLR(o, lambda t: (t + 1) ** -0.5),
     SquareRootScheduler(0.3), 30),
    ("FactorScheduler = LambdaLR(max(stop/lr, f^t))", lambda o: S.LambdaLR(o, lambda t: max(1e-2 / 0.3, 0.9 ** t)),
     FactorScheduler(0.9, 1e-2, 0.3), 80),
    ("ExponentialScheduler = ExponentialLR", lambda o: S.ExponentialLR(o, 0.9), ExponentialScheduler(0.9, 0.3), 40),
    ("PolyScheduler(p=1) = LinearLR(1, 0, T)", lambda o: S.LinearLR(o, 1.0, 0.0, total_iters=20),
     PolyScheduler(20, base_lr=0.3, power=1), 30),
    ("PolyScheduler = PolynomialLR", lambda o: S.PolynomialLR(o, total_iters=20, power=0.9),
     PolyScheduler(20, base_lr=0.3, power=0.9), 30),
    ("LinearWarmup(S, w, b) = SequentialLR([LinearLR(b/lr, 1, w), S'])",
     lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.2, 1.0, total_iters=5), S.StepLR(o, 10, 0.5)], milestones=[5]),
     LinearWarmup(StepScheduler(10, 0.5, 0.3), 5, warmup_begin_lr=0.06), 40),
    ("SequentialScheduler = SequentialLR", lambda o: S.SequentialLR(
        o, [S.ExponentialLR(o, 0.9), S.StepLR(o, 5, 0.5)], milestones=[10]),
     SequentialScheduler([ExponentialScheduler(0.9, 0.3), StepScheduler(5, 0.5, 0.3)], milestones=[10]), 30),
    ("any S = LambdaLR(S(t)/lr)", lambda o: S.LambdaLR(o, lambda t: CosineScheduler(20, 0.3, 0.01, 5)(t) / 0.3),
     CosineScheduler(20, 0.3, 0.01, 5), 30),
])
def test_ch9_correspondence_table(name, make, ours, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's epoch-argument deprecation warning, where raised
        torch_lrs = trace_scheduler(make, n, lr=0.3)
    assert np.allclose(torch_lrs, ours(steps(n)), rtol=1e-12, atol=0), name


def test_nested_sequential_lr_cuts_the_warmup_short_and_milestone_zero_skips_the_first():
    """The pitfalls chapter's claims on the installed torch: a SequentialLR nested in another loses a warmup
    step (0.3 at step 2 where the flat composition has 0.21); milestones=[0] runs the second scheduler from 0."""
    import warnings

    from lrlab import trace_scheduler

    def inner(o):
        return S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.ConstantLR(o, factor=1.0, total_iters=1)],
                              milestones=[3])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nested = trace_scheduler(lambda o: S.SequentialLR(o, [inner(o), S.ExponentialLR(o, 0.5)], milestones=[6]), 10, lr=0.3)
        flat = trace_scheduler(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                                            S.ConstantLR(o, factor=1.0, total_iters=1),
                                                            S.ExponentialLR(o, 0.5)], milestones=[3, 6]), 10, lr=0.3)
        skip = trace_scheduler(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                                            S.ExponentialLR(o, 0.5)], milestones=[0]), 10, lr=0.3)
    assert flat[:4] == pytest.approx([0.03, 0.12, 0.21, 0.3]) and nested[:4] == pytest.approx([0.03, 0.12, 0.3, 0.3])
    assert nested[4:] == pytest.approx(flat[4:])
    assert skip == pytest.approx([0.3 * 0.5 ** t for t in range(10)])
