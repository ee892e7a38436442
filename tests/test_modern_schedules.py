"""One-cycle, warm restarts, cyclical rates and warmup-stable-decay against independent references:
torch's OneCycleLR, CosineAnnealingWarmRestarts and CyclicLR traced step by step, HuggingFace's WSD formula, and
values worked by hand; plus invariants (hypothesis) and every parameter error."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as L

from lrlab import (CosineCyclesScheduler, CosineRestartsScheduler, CyclicScheduler, InverseSqrtScheduler,
                   OneCycleScheduler,
                   PiecewiseInterpolateScheduler, ScheduleLR, SquareRootScheduler, WSDScheduler)

TOL = 1e-12


def trace(make_scheduler, n, optimizer="sgd", step=None):
    """(lr, momentum) in the optimizer's first group during each of ``n`` updates."""
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=0.1, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam(p, lr=0.1)
    sched = make_scheduler(opt)
    lrs, moms = [], []
    for t in range(n):
        g = opt.param_groups[0]
        lrs.append(g["lr"])
        moms.append(g["momentum"] if optimizer == "sgd" else g["betas"][0])
        opt.step()
        if t < n - 1:
            sched.step()
    return np.array(lrs), np.array(moms)


# ----------------------------------------------------------------- one-cycle


ONE_CYCLE_CASES = [
    dict(pct_start=0.3),
    dict(pct_start=0.25, anneal_strategy="linear"),
    dict(pct_start=0.3, three_phase=True),
    dict(pct_start=0.4, three_phase=True, anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0),
    dict(pct_start=0.5, base_momentum=0.8, max_momentum=0.99),
]


@pytest.mark.parametrize("kwargs", ONE_CYCLE_CASES)
@pytest.mark.parametrize("total", [20, 97])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_cycle_equals_torch_at_every_step(kwargs, total, optimizer):
    # total + 1 steps: torch also defines the value at t = total_steps (its last phase, one step on)
    lrs, moms = trace(lambda o: L.OneCycleLR(o, max_lr=0.3, total_steps=total, **kwargs), total + 1, optimizer)
    ours = OneCycleScheduler(total, 0.3, **kwargs)
    t = np.arange(total + 1.0)
    np.testing.assert_allclose(ours(t), lrs, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours.momentum(t), moms, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_schedule_lr_drives_momentum_like_one_cycle_lr(optimizer):
    one = OneCycleScheduler(40, 0.5, three_phase=True)
    ours = trace(lambda o: ScheduleLR(o, one, momentum=one.momentum), 41, optimizer)
    theirs = trace(lambda o: L.OneCycleLR(o, 0.5, total_steps=40, three_phase=True), 41, optimizer)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=TOL, atol=TOL)


def test_one_cycle_lr_writes_momentum_into_plain_sgd():
    # The chapter's claim: SGD built without momentum gets one from OneCycleLR (and from our adapter).
    for make in (lambda o: L.OneCycleLR(o, 0.3, total_steps=10),
                 lambda o: ScheduleLR(o, (one := OneCycleScheduler(10, 0.3)), momentum=one.momentum)):
        p = [torch.nn.Parameter(torch.ones(1))]
        opt = torch.optim.SGD(p, lr=0.3)
        assert opt.param_groups[0]["momentum"] == 0
        make(opt)
        assert opt.param_groups[0]["momentum"] == 0.95
        p[0].grad = torch.ones(1)
        opt.step()
        assert "momentum_buffer" in opt.state[p[0]] and opt.state[p[0]]["momentum_buffer"] is not None


def test_one_cycle_by_hand():
    one = OneCycleScheduler(total_steps=11, max_lr=1.0, pct_start=0.5, div_factor=4.0, final_div_factor=5.0,
                            anneal_strategy="linear")
    # initial 0.25, min 0.05; phase ends 4.5 and 10
    assert one(0) == 0.25
    assert one(4.5) == pytest.approx(1.0, abs=TOL)
    assert one(2.25) == pytest.approx(0.625, abs=TOL)
    assert one(10) == pytest.approx(0.05, abs=TOL)
    assert one(7.25) == pytest.approx(0.525, abs=TOL)  # halfway from 4.5 to 10
    assert one(12) == one.min_lr == pytest.approx(0.05)
    cos = OneCycleScheduler(total_steps=11, max_lr=1.0, pct_start=0.5, div_factor=4.0, final_div_factor=5.0)
    assert cos(2.25) == pytest.approx(0.25 + 0.75 * (1 - math.cos(math.pi / 2)) / 2, abs=TOL)


def test_one_cycle_past_the_end_holds_min_where_torch_raises():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=0.1)
    sched = L.OneCycleLR(opt, 0.3, total_steps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):
            opt.step()
            sched.step()
        with pytest.raises(ValueError, match="Tried to step"):
            opt.step()
            sched.step()
    one = OneCycleScheduler(5, 0.3)
    assert one(6) == one(100) == one.min_lr


# ----------------------------------------------------------------- warm restarts


@pytest.mark.parametrize("T_0, T_mult", [(10, 1), (5, 2), (3, 3), (1, 2), (7, 1)])
def test_restarts_equal_torch_at_integer_steps(T_0, T_mult):
    lrs, _ = trace(lambda o: L.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult, eta_min=0.01), 120)
    ours = CosineRestartsScheduler(T_0, T_mult, eta_min=0.01, base_lr=0.1)  # trace's optimizer starts at 0.1
    np.testing.assert_allclose(ours(np.arange(120.0)), lrs, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("T_0, T_mult", [(10, 1), (5, 2), (3, 3)])
def test_restarts_equal_torch_at_fractional_steps(T_0, T_mult):
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=0.3)
    sched = L.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult, eta_min=0.01)
    steps = np.arange(0.0, 80.0, 0.37)
    theirs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # step(epoch) is torch's documented way to step per update
        for x in steps:
            opt.step()
            sched.step(float(x))
            theirs.append(opt.param_groups[0]["lr"])
    ours = CosineRestartsScheduler(T_0, T_mult, eta_min=0.01, base_lr=0.3)
    np.testing.assert_allclose(ours(steps), theirs, rtol=TOL, atol=TOL)


def test_restarts_by_hand():
    s = CosineRestartsScheduler(T_0=10, T_mult=2, eta_min=0.0, base_lr=1.0)
    # cycles [0, 10), [10, 30), [30, 70)
    assert s(0) == 1.0 and s(10) == 1.0 and s(30) == 1.0 and s(70) == 1.0
    assert s(5) == pytest.approx(0.5, abs=TOL)
    assert s(20) == pytest.approx(0.5, abs=TOL)
    assert s(50) == pytest.approx(0.5, abs=TOL)
    assert s(29.999) < 1e-6
    np.testing.assert_array_equal(s.cycle(np.array([0.0, 9.9, 10.0, 29.0, 30.0]))[0], [0, 0, 10, 10, 30])


# ----------------------------------------------------------------- warmup-stable-decay


def hf_wsd_factor(step, *, num_warmup_steps, num_stable_steps, num_decay_steps, decay_type, min_lr_ratio):
    """HuggingFace transformers' ``_get_wsd_scheduler_lambda`` (linear warmup, num_cycles=0.5), as documented."""
    if step < num_warmup_steps:
        progress = float(step) / float(max(1, num_warmup_steps))
        return max(0.0, progress * (1.0 - min_lr_ratio) + min_lr_ratio)
    if step < num_warmup_steps + num_stable_steps:
        return 1.0
    if step < num_warmup_steps + num_stable_steps + num_decay_steps:
        progress = float(step - num_warmup_steps - num_stable_steps) / float(max(1, num_decay_steps))
        factor = {"linear": 1.0 - progress, "cosine": 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)),
                  "1-sqrt": 1.0 - math.sqrt(progress)}[decay_type]
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    return min_lr_ratio


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("warmup, decay, final", [(5, 20, 0.0), (0, 7, 0.01), (10, 90, 0.003)])
def test_wsd_equals_huggingface_formula(shape, warmup, decay, final):
    T, base = 100, 0.3
    ours = WSDScheduler(T, peak_lr=base, final_lr=final, warmup_steps=warmup, decay_steps=decay,
                        decay_shape=shape, warmup_begin_lr=final)
    ratio = final / base
    expected = [base * hf_wsd_factor(t, num_warmup_steps=warmup, num_stable_steps=T - warmup - decay,
                                     num_decay_steps=decay, decay_type=shape, min_lr_ratio=ratio)
                for t in range(T + 10)]
    np.testing.assert_allclose(ours(np.arange(T + 10.0)), expected, rtol=TOL, atol=TOL)


def test_wsd_by_hand_and_fraction_equals_steps():
    s = WSDScheduler(30, peak_lr=0.3, warmup_steps=2, decay_fraction=0.2, decay_shape="1-sqrt")
    assert s.decay_length == pytest.approx(6.0) and s.decay_start == pytest.approx(24.0)
    assert s(0) == 0.0 and s(1) == pytest.approx(0.15)
    assert s(2) == s(23) == 0.3
    assert s(24) == 0.3
    assert s(25.5) == pytest.approx(0.3 * (1 - math.sqrt(0.25)))  # x = 1.5 / 6
    assert s(30) == 0.0 and s(31) == 0.0
    same = WSDScheduler(30, peak_lr=0.3, warmup_steps=2, decay_steps=6, decay_shape="1-sqrt")
    t = np.arange(0.0, 35.0, 0.5)
    np.testing.assert_array_equal(s(t), same(t))


@given(T1=st.integers(10, 200), T2=st.integers(10, 200), frac=st.floats(0.05, 0.8),
       shape=st.sampled_from(["linear", "cosine", "1-sqrt"]))
@settings(max_examples=60, deadline=None)
def test_wsd_stable_phase_does_not_depend_on_the_budget(T1, T2, frac, shape):
    a = WSDScheduler(T1, peak_lr=0.2, warmup_steps=2, decay_fraction=frac, decay_shape=shape)
    b = WSDScheduler(T2, peak_lr=0.2, warmup_steps=2, decay_fraction=frac, decay_shape=shape)
    shared = np.arange(0.0, min(a.decay_start, b.decay_start), 0.25)
    np.testing.assert_array_equal(a(shared), b(shared))


@given(total=st.integers(10, 500), pct=st.floats(0.1, 0.9), three=st.booleans(),
       strategy=st.sampled_from(["cos", "linear"]), t=st.floats(0, 600))
@settings(max_examples=100, deadline=None)
def test_one_cycle_stays_between_its_bounds(total, pct, three, strategy, t):
    try:
        one = OneCycleScheduler(total, 0.4, pct_start=pct, three_phase=three, anneal_strategy=strategy)
    except ValueError as err:  # a phase without steps: refused, where torch would divide by zero
        assert "phase without steps" in str(err)
        assume(False)
    if t <= total - 1:  # torch extrapolates one step past the last phase's end
        assert one.min_lr - 1e-15 <= one(t) <= one.max_lr + 1e-15
        assert one.base_momentum - 1e-15 <= one.momentum(t) <= one.max_momentum + 1e-15


@given(T_0=st.integers(1, 20), T_mult=st.integers(1, 4), t=st.floats(0, 1e4))
@settings(max_examples=100, deadline=None)
def test_restarts_stay_in_range_and_cycle_contains_t(T_0, T_mult, t):
    s = CosineRestartsScheduler(T_0, T_mult, eta_min=0.01, base_lr=0.2)
    start, length = s.cycle(np.array([t]))
    assert start[0] <= t < start[0] + length[0]
    assert 0.01 - 1e-15 <= s(t) <= 0.2 + 1e-15


# ----------------------------------------------------------------- cyclical rates (CyclicLR)


CYCLIC_CASES = [
    dict(step_size_up=5),
    dict(step_size_up=4, step_size_down=7),
    dict(step_size_up=6, mode="triangular2"),
    dict(step_size_up=3, step_size_down=2, mode="triangular2"),
    dict(step_size_up=5, mode="exp_range", gamma=0.97),
    dict(step_size_up=5, mode="exp_range", gamma=0.97, base_momentum=0.85, max_momentum=0.95),
]


@pytest.mark.parametrize("kwargs", CYCLIC_CASES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cyclic_equals_torch_at_every_step(kwargs, optimizer):
    lrs, moms = trace(lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.2, **kwargs), 60, optimizer)
    ours = CyclicScheduler(0.01, 0.2, **kwargs)
    t = np.arange(60.0)
    np.testing.assert_allclose(ours(t), lrs, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours.momentum(t), moms, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_schedule_lr_drives_momentum_like_cyclic_lr(optimizer):
    cyc = CyclicScheduler(0.01, 0.2, step_size_up=3, step_size_down=5, mode="triangular2")
    ours = trace(lambda o: ScheduleLR(o, cyc, momentum=cyc.momentum), 40, optimizer)
    theirs = trace(lambda o: L.CyclicLR(o, 0.01, 0.2, step_size_up=3, step_size_down=5, mode="triangular2"), 40,
                   optimizer)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=TOL, atol=TOL)


def test_cyclic_by_hand():
    # up 4 steps from 0.01 to 0.09, down 4: 0.02 a step; triangular2 halves the height each cycle
    tri = CyclicScheduler(0.01, 0.09, step_size_up=4)
    np.testing.assert_allclose(tri(np.arange(10.0)), [0.01, 0.03, 0.05, 0.07, 0.09, 0.07, 0.05, 0.03, 0.01, 0.03],
                               rtol=0, atol=1e-15)
    half = CyclicScheduler(0.01, 0.09, step_size_up=4, mode="triangular2")
    assert half(12) == pytest.approx(0.01 + 0.08 / 2) and half(20) == pytest.approx(0.01 + 0.08 / 4)
    # exp_range: the height times gamma ** t, at the peak t = 4
    exp = CyclicScheduler(0.0, 1.0, step_size_up=4, mode="exp_range", gamma=0.5)
    assert exp(4) == 0.5 ** 4
    # momentum: 0.9 at the base, 0.8 at the peak, halfway at halfway
    assert tri.momentum(0) == 0.9 and tri.momentum(4) == pytest.approx(0.8) and tri.momentum(2) == pytest.approx(0.85)


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 50), st.floats(1, 50), st.sampled_from(["triangular", "triangular2"]),
       st.floats(0, 1000, allow_nan=False))
def test_cyclic_stays_between_base_and_max(up, down, mode, t):
    s = CyclicScheduler(0.01, 0.2, step_size_up=up, step_size_down=down, mode=mode)
    assert 0.01 - 1e-15 <= s(t) <= 0.2 + 1e-15
    assert 0.8 - 1e-15 <= s.momentum(t) <= 0.9 + 1e-15


# ----------------------------------------------------------------- inverse square root with a timescale


def hf_inverse_sqrt_lambda(current_step, *, num_warmup_steps, timescale=None):
    """HuggingFace transformers 5.24.0, ``src/transformers/optimization.py``: ``get_inverse_sqrt_schedule``'s
    default timescale and ``_get_inverse_sqrt_schedule_lr_lambda``, restated."""
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    shift = timescale - num_warmup_steps
    return 1.0 / math.sqrt((current_step + shift) / timescale)


@pytest.mark.parametrize("warmup, timescale", [(10, None), (0, None), (10, 50), (1, 3), (0, 7)])
def test_inverse_sqrt_equals_huggingface_through_lambda_lr(warmup, timescale):
    # traced the way transformers returns it: a LambdaLR over the optimizer's rate (0.1 in trace)
    lrs, _ = trace(lambda o: L.LambdaLR(o, lambda t: hf_inverse_sqrt_lambda(t, num_warmup_steps=warmup,
                                                                              timescale=timescale)), 300)
    ours = InverseSqrtScheduler(0.1, warmup_steps=warmup, timescale=timescale)
    np.testing.assert_allclose(ours(np.arange(300.0)), lrs, rtol=TOL, atol=TOL)


def test_inverse_sqrt_by_hand():
    s = InverseSqrtScheduler(0.4, warmup_steps=4, timescale=2)
    assert s(0) == 0.0 and s(1) == pytest.approx(0.1) and s(4) == pytest.approx(0.4)
    assert s(4 + 3 * 2) == pytest.approx(0.2)  # halved 3 timescales after the warmup
    assert InverseSqrtScheduler(0.1).tau == 10_000 and InverseSqrtScheduler(0.1, warmup_steps=8).tau == 8


def test_inverse_sqrt_without_warmup_and_unit_timescale_is_d2ls_square_root():
    t = np.arange(0.0, 500.0, 0.5)
    np.testing.assert_allclose(InverseSqrtScheduler(0.1, timescale=1)(t), SquareRootScheduler(0.1)(t),
                               rtol=1e-15, atol=0)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 100), st.floats(0.5, 1000), st.floats(0, 1e5))
def test_inverse_sqrt_peaks_at_the_end_of_the_warmup(warmup, timescale, t):
    s = InverseSqrtScheduler(0.3, warmup_steps=warmup, timescale=timescale)
    assert 0 <= s(t) <= 0.3 * (1 + 1e-12)
    assert s(warmup) == pytest.approx(0.3)


# ----------------------------------------------------------------- piecewise interpolation (optax)


def optax_piecewise_interpolate(interpolate_type, init_value, boundaries_and_scales, count):
    """optax 0.2.8, ``optax/schedules/_schedule.py``: ``piecewise_interpolate_schedule``, restated in NumPy."""
    boundaries, scales = zip(*sorted(boundaries_and_scales.items())) if boundaries_and_scales else ((), ())
    bounds = np.array((0,) + boundaries, dtype=np.float64)
    values = np.cumprod(np.array((init_value,) + scales, dtype=np.float64))
    interval_sizes = np.maximum(bounds[1:] - bounds[:-1], 1)
    indicator = np.logical_and(bounds[:-1] <= count, count < bounds[1:])
    pct = (count - bounds[:-1]) / interval_sizes
    start, end = values[:-1], values[1:]
    if interpolate_type == "linear":
        interp = (end - start) * pct + start
    else:
        interp = end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
    return float(indicator.dot(interp) + (bounds[-1] <= count) * values[-1])


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("bs", [{4: 0.1, 8: 0.01}, {10: 2.0, 25: 0.5, 26: 0.1}, {}, {0: 0.5, 7: 0.2}, {3: 0.0}])
def test_piecewise_interpolate_equals_optax_formula(kind, bs):
    ours = PiecewiseInterpolateScheduler(kind, 0.3, bs)
    t = np.arange(0.0, 40.0, 0.25)
    expected = [optax_piecewise_interpolate(kind, 0.3, bs, x) for x in t]
    np.testing.assert_allclose(ours(t), expected, rtol=TOL, atol=TOL)


def test_piecewise_interpolate_by_hand():
    # optax's docstring example: 1.0, 0.55, 0.1, 0.0505, 0.001, 0.001 at steps 0, 2, ..., 10
    s = PiecewiseInterpolateScheduler("linear", 1.0, {4: 0.1, 8: 0.01})
    np.testing.assert_allclose(s(np.arange(0.0, 11.0, 2.0)), [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001], rtol=1e-14)
    c = PiecewiseInterpolateScheduler("cosine", 1.0, {4: 0.1})
    assert c(2) == pytest.approx(0.55) and c(1) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(1, 100), st.floats(0.0, 3.0), max_size=5), st.sampled_from(["linear", "cosine"]),
       st.floats(0, 200))
def test_piecewise_interpolate_stays_between_its_values(bs, kind, t):
    s = PiecewiseInterpolateScheduler(kind, 0.3, bs)
    values = np.cumprod([0.3] + [bs[k] for k in sorted(bs)])
    assert values.min() * (1 - 1e-12) - 1e-15 <= s(t) <= values.max() * (1 + 1e-12) + 1e-15


# ----------------------------------------------------------------- cosine cycles (timm's CosineLRScheduler)


COSINE_CYCLES_CASES = [
    dict(t_initial=20),
    dict(t_initial=10, cycle_limit=3, cycle_decay=0.5, lr_min=0.01),
    dict(t_initial=5, cycle_mul=2.0, cycle_limit=4, cycle_decay=0.8),
    dict(t_initial=30, warmup_t=5, warmup_lr_init=0.001),
    dict(t_initial=30, warmup_t=5, warmup_lr_init=0.001, warmup_prefix=True, cycle_limit=2),
    dict(t_initial=12, k_decay=2.0, cycle_limit=3),
    dict(t_initial=7, cycle_mul=1.5, cycle_limit=5, warmup_t=3, warmup_prefix=True, cycle_decay=0.9),
]


@pytest.mark.parametrize("kwargs", COSINE_CYCLES_CASES)
@pytest.mark.parametrize("per", ["epoch", "update"])
def test_cosine_cycles_equal_timm_at_every_step(kwargs, per):
    timm_cosine = pytest.importorskip("timm.scheduler.cosine_lr")
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=0.1)
    sched = timm_cosine.CosineLRScheduler(opt, t_in_epochs=per == "epoch", **kwargs)
    theirs = []
    for t in range(90):  # timm's protocol: step(epoch) per epoch, step_update(num_updates) per update
        sched.step(t) if per == "epoch" else sched.step_update(t)
        theirs.append(opt.param_groups[0]["lr"])
    ours = CosineCyclesScheduler(base_lr=0.1, **kwargs)
    np.testing.assert_allclose(ours(np.arange(90.0)), theirs, rtol=TOL, atol=TOL)


def test_cosine_cycles_by_hand():
    s = CosineCyclesScheduler(10, base_lr=1.0, cycle_decay=0.5, cycle_limit=3, lr_min=0.0)
    assert [s(t) for t in (0, 10, 20, 30, 45)] == pytest.approx([1.0, 0.5, 0.25, 0.0, 0.0], abs=1e-15)
    assert s(5) == pytest.approx(0.5) and s(15) == pytest.approx(0.25)  # halfway down each cycle
    longer = CosineCyclesScheduler(4, base_lr=1.0, cycle_mul=2.0, cycle_limit=3)
    assert [longer(t) for t in (0, 4, 12)] == pytest.approx([1.0, 1.0, 1.0]) and longer(28) == 0.0  # 4 + 8 + 16
    warm = CosineCyclesScheduler(20, base_lr=0.2, warmup_t=4, warmup_lr_init=0.0, warmup_prefix=True)
    assert warm(2) == pytest.approx(0.1) and warm(4) == pytest.approx(0.2)
    overlap = CosineCyclesScheduler(20, base_lr=0.2, warmup_t=4)  # the cosine takes over where it has got to
    assert overlap(4) == pytest.approx(0.1 * (1 + math.cos(math.pi * 4 / 20)))


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 50), st.floats(1, 3), st.floats(0.1, 1), st.integers(1, 6), st.floats(0, 500))
def test_cosine_cycles_stay_between_the_lowest_peak_or_floor_and_the_first_peak(T0, mul, decay, limit, t):
    s = CosineCyclesScheduler(T0, base_lr=0.3, lr_min=0.01, cycle_mul=mul, cycle_decay=decay, cycle_limit=limit)
    lowest = min(0.01, 0.3 * decay ** (limit - 1))  # a peak decayed below lr_min dips under it, as in timm
    assert lowest - 1e-12 <= s(t) <= 0.3 + 1e-12


# ----------------------------------------------------------------- parameter errors


@pytest.mark.parametrize("make, match", [
    (lambda: OneCycleScheduler(0, 0.1), "total_steps"),
    (lambda: OneCycleScheduler(10.0, 0.1), "total_steps"),
    (lambda: OneCycleScheduler(10, -0.1), "max_lr"),
    (lambda: OneCycleScheduler(10, 0.1, pct_start=1.5), "pct_start"),
    (lambda: OneCycleScheduler(10, 0.1, pct_start=0.1), "phase without steps"),
    (lambda: OneCycleScheduler(10, 0.1, anneal_strategy="cosine"), "anneal_strategy"),
    (lambda: OneCycleScheduler(10, 0.1, div_factor=0), "div_factor"),
    (lambda: OneCycleScheduler(10, 0.1, final_div_factor=-1), "final_div_factor"),
    (lambda: OneCycleScheduler(10, 0.1, base_momentum=float("nan")), "base_momentum"),
    (lambda: CosineRestartsScheduler(0), "T_0"),
    (lambda: CosineRestartsScheduler(5, T_mult=0), "T_mult"),
    (lambda: CosineRestartsScheduler(5, T_mult=1.5), "T_mult"),
    (lambda: CosineRestartsScheduler(5, eta_min=-1), "eta_min"),
    (lambda: CyclicScheduler(0.01, 0.1, step_size_up=0), "step_size_up"),
    (lambda: CyclicScheduler(0.01, 0.1, step_size_down=-1), "step_size_down"),
    (lambda: CyclicScheduler(0.01, 0.1, mode="triangle"), "mode"),
    (lambda: CyclicScheduler(0.01, 0.1, mode="exp_range", gamma=0), "gamma"),
    (lambda: CyclicScheduler(-0.01, 0.1), "base_lr"),
    (lambda: InverseSqrtScheduler(-0.1), "peak_lr"),
    (lambda: InverseSqrtScheduler(0.1, warmup_steps=-1), "warmup_steps"),
    (lambda: InverseSqrtScheduler(0.1, timescale=0), "timescale"),
    (lambda: PiecewiseInterpolateScheduler("quadratic", 0.1), "interpolate_type"),
    (lambda: PiecewiseInterpolateScheduler("linear", 0.1, {5: -0.1}), "boundaries_and_scales"),
    (lambda: PiecewiseInterpolateScheduler("linear", 0.1, {-5: 0.1}), "boundaries_and_scales step"),
    (lambda: PiecewiseInterpolateScheduler("linear", 0.1, [(5, 0.1), (5.0, 0.2)]), "names a step twice"),
    (lambda: PiecewiseInterpolateScheduler("linear", 0.1, 0.5), "must be a dict"),
    (lambda: CosineCyclesScheduler(0), "t_initial"),
    (lambda: CosineCyclesScheduler(10, cycle_limit=0), "cycle_limit"),
    (lambda: CosineCyclesScheduler(10, cycle_decay=-0.5), "cycle_decay"),
    (lambda: CosineCyclesScheduler(10, warmup_t=-1), "warmup_t"),
    (lambda: WSDScheduler(0, 0.1, decay_fraction=0.2), "total_steps"),
    (lambda: WSDScheduler(10, -0.1, decay_fraction=0.2), "peak_lr"),
    (lambda: WSDScheduler(10, 0.1), "exactly one of decay_steps"),
    (lambda: WSDScheduler(10, 0.1, decay_steps=2, decay_fraction=0.2), "exactly one of decay_steps"),
    (lambda: WSDScheduler(10, 0.1, decay_fraction=0.0), "decay_fraction"),
    (lambda: WSDScheduler(10, 0.1, decay_fraction=1.2), "decay_fraction"),
    (lambda: WSDScheduler(10, 0.1, decay_steps=-2), "decay_steps"),
    (lambda: WSDScheduler(10, 0.1, decay_steps=2, decay_shape="sqrt"), "decay_shape"),
    (lambda: WSDScheduler(10, 0.1, warmup_steps=5, decay_steps=6), "exceed total_steps"),
    (lambda: WSDScheduler(10, 0.1, warmup_steps=11, decay_steps=1), "warmup_steps"),
])
def test_bad_parameters_fail_with_their_name(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_schedule_lr_momentum_errors():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="momentum= needs an optimizer"):
        ScheduleLR(torch.optim.Adagrad(p, lr=0.1), lambda t: 0.1, momentum=lambda t: 0.9)
    with pytest.raises(TypeError, match="momentum must be callable"):
        ScheduleLR(torch.optim.SGD(p, lr=0.1), lambda t: 0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"momentum\(0\) returned 1.5"):
        ScheduleLR(torch.optim.SGD(p, lr=0.1), lambda t: 0.1, momentum=lambda t: 1.5)


def test_schedule_lr_state_dict_leaves_both_schedules_out():
    p = [torch.nn.Parameter(torch.zeros(1))]
    one = OneCycleScheduler(10, 0.3)
    state = ScheduleLR(torch.optim.SGD(p, lr=0.1), one, momentum=one.momentum).state_dict()
    assert "schedule" not in state and "momentum" not in state
    torch.save(state, "/dev/null")
