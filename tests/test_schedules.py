"""The pure schedules against independent references: torch's own schedulers, d2l's formulas
(lrlab.d2l_section, its published code), and values computed by hand; plus property-based invariants."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as L

from lrlab.sources import d2l_section
from lrlab import (
    ConstantScheduler,
    CosineScheduler,
    ExponentialScheduler,
    FactorScheduler,
    LinearWarmup,
    MultiFactorScheduler,
    PolyScheduler,
    ProductScheduler,
    SequentialScheduler,
    SquareRootScheduler,
    StepScheduler,
    WarmupMultiFactorSchedule,
    trace_scheduler,
)

REL = 1e-12  # torch's schedulers are recursive (lr *= gamma); ours are closed forms


def values(schedule, n):
    return np.array([schedule(t) for t in range(n)])


# ----------------------------------------------------------------- torch's schedulers as references


@pytest.mark.parametrize(
    "ours, make_torch, base, n",
    [
        (MultiFactorScheduler([15, 30], factor=0.5, base_lr=0.5), lambda o: L.MultiStepLR(o, [15, 30], 0.5), 0.5, 50),
        (MultiFactorScheduler([3, 3, 7], factor=0.1, base_lr=1.0), lambda o: L.MultiStepLR(o, [3, 3, 7], 0.1), 1.0, 12),
        (MultiFactorScheduler([], factor=0.1, base_lr=0.2), lambda o: L.MultiStepLR(o, [], 0.1), 0.2, 5),
        (StepScheduler(5, gamma=0.5, base_lr=0.001), lambda o: L.StepLR(o, step_size=5, gamma=0.5), 0.001, 40),
        (ExponentialScheduler(0.9, base_lr=0.1), lambda o: L.ExponentialLR(o, gamma=0.9), 0.1, 60),
        (PolyScheduler(100, base_lr=0.005, power=0.9), lambda o: L.PolynomialLR(o, total_iters=100, power=0.9), 0.005, 130),
        (PolyScheduler(10, base_lr=0.1, power=2.0), lambda o: L.PolynomialLR(o, total_iters=10, power=2.0), 0.1, 15),
        (CosineScheduler(20, base_lr=0.3, final_lr=0.01), lambda o: L.CosineAnnealingLR(o, T_max=20, eta_min=0.01), 0.3, 21),
        (CosineScheduler(50, base_lr=1.0), lambda o: L.CosineAnnealingLR(o, T_max=50), 1.0, 51),
        (
            LinearWarmup(CosineScheduler(15, base_lr=0.3, final_lr=0.01), 5, warmup_begin_lr=0.03),
            lambda o: L.SequentialLR(
                o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=15, eta_min=0.01)], [5]
            ),
            0.3,
            21,
        ),
        (
            LinearWarmup(ExponentialScheduler(0.8, base_lr=0.2), 4),
            lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1e-12, total_iters=4), L.ExponentialLR(o, 0.8)], [4]),
            0.2,
            15,
        ),
        (
            ProductScheduler([LinearWarmup(ConstantScheduler(1.0), 5, warmup_begin_lr=0.1), ExponentialScheduler(0.9, base_lr=0.3)]),
            lambda o: L.ChainedScheduler([L.LinearLR(o, start_factor=0.1, total_iters=5), L.ExponentialLR(o, 0.9)]),
            0.3,
            30,
        ),
        (
            ProductScheduler([StepScheduler(4, gamma=0.5, base_lr=0.2), ExponentialScheduler(0.95, base_lr=1.0)]),
            lambda o: L.ChainedScheduler([L.StepLR(o, step_size=4, gamma=0.5), L.ExponentialLR(o, 0.95)]),
            0.2,
            25,
        ),
    ],
)
def test_matches_torch_scheduler(ours, make_torch, base, n):
    expected = trace_scheduler(make_torch, n, lr=base)
    np.testing.assert_allclose(values(ours, n), expected, rtol=REL, atol=1e-12)


def test_cosine_matches_torch_only_up_to_t_max():
    # CosineAnnealingLR keeps going (it rises again after T_max); d2l's cosine stays at final_lr.
    ours = CosineScheduler(10, base_lr=1.0, final_lr=0.0)
    torch_lrs = trace_scheduler(lambda o: L.CosineAnnealingLR(o, T_max=10), 15, lr=1.0)
    assert ours(12) == 0.0 and torch_lrs[12] > 0.0


def test_product_by_hand_and_of_one_schedule():
    p = ProductScheduler([ConstantScheduler(0.5), ExponentialScheduler(0.5, base_lr=0.4)])
    assert [p(t) for t in range(3)] == pytest.approx([0.2, 0.1, 0.05], rel=1e-15)
    c = CosineScheduler(20, base_lr=0.3, final_lr=0.01)
    t = np.arange(0.0, 30.0, 0.5)
    np.testing.assert_array_equal(ProductScheduler([c])(t), c(t))
    with pytest.raises(ValueError, match="at least one schedule"):
        ProductScheduler([])
    with pytest.raises(TypeError, match=r"schedules\[1\] must be callable"):
        ProductScheduler([c, 0.5])


def test_warmup_stable_decay_one_liner():
    wsd = SequentialScheduler(
        [LinearWarmup(ConstantScheduler(0.1), 5), PolyScheduler(20, base_lr=0.1)], milestones=[80]
    )
    assert [wsd(t) for t in (0, 1, 5, 79, 80, 90, 100, 200)] == pytest.approx(
        [0.0, 0.02, 0.1, 0.1, 0.1, 0.05, 0.0, 0.0], abs=1e-15
    )


# ----------------------------------------------------------------- d2l's formulas, by hand


def test_square_root_by_hand():
    s = SquareRootScheduler(lr=0.1)
    assert s(0) == 0.1
    assert s(3) == pytest.approx(0.05, rel=1e-15)  # 0.1 / sqrt(4)
    assert s(99) == pytest.approx(0.01, rel=1e-15)  # 0.1 / sqrt(100)


def test_factor_by_hand_and_floor():
    s = FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0)
    assert s(0) == 2.0
    assert s(1) == pytest.approx(1.8, rel=1e-15)
    assert s(10) == pytest.approx(2.0 * 0.9**10, rel=1e-15)
    # 2 * 0.9^t falls below 1e-2 once t > log(200)/log(1/0.9) = 50.29
    assert s(50) > 1e-2 and s(51) == 1e-2 and s(500) == 1e-2


def test_square_root_equals_d2l():
    ref = d2l_section.SquareRootScheduler(lr=0.1)
    ours = SquareRootScheduler(lr=0.1)
    assert [ours(t) for t in range(100)] == pytest.approx([ref(t) for t in range(100)], rel=1e-15)


def test_factor_relation_to_d2l_stateful_version():
    # d2l's FactorScheduler multiplies its state on every call: its n-th call is our value at t = n.
    ref = d2l_section.FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0)
    d2l_calls = [ref(0) for _ in range(60)]  # d2l ignores its argument
    ours = FactorScheduler(0.9, 1e-2, 2.0)
    np.testing.assert_allclose(d2l_calls, [ours(n) for n in range(1, 61)], rtol=1e-13)


@pytest.mark.parametrize("warmup", [0, 5])
def test_cosine_equals_d2l_called_in_increasing_t(warmup):
    ref = d2l_section.CosineScheduler(20, base_lr=0.3, final_lr=0.01, warmup_steps=warmup)
    s = CosineScheduler(20, base_lr=0.3, final_lr=0.01, warmup_steps=warmup)
    for t in range(30):  # d2l's keeps its last value past max_update: fine in this order only
        assert s(t) == pytest.approx(ref(t), rel=1e-14, abs=1e-15)
    assert s(warmup) == pytest.approx(0.3, rel=1e-15)  # the peak, at the end of the warmup
    assert s(20) == pytest.approx(0.01, rel=1e-15) and s(21) == 0.01


def test_d2l_cosine_fails_where_ours_does_not():
    with pytest.raises(AttributeError):
        d2l_section.CosineScheduler(20)(25)
    with pytest.raises(ZeroDivisionError):
        d2l_section.CosineScheduler(10, warmup_steps=10)(10)
    assert CosineScheduler(20)(25) == 0.0 and CosineScheduler(10, base_lr=0.5, warmup_steps=10)(10) == 0.5


def test_poly_policy_by_hand():
    # lr = base_lr * (1 - epoch / num_epoch) ** power
    s = PolyScheduler(100, base_lr=0.005, power=2)
    assert s(50) == pytest.approx(0.005 * 0.25, rel=1e-15)
    assert s(100) == 0.0 and s(150) == 0.0


def test_multifactor_changes_at_the_step_itself():
    s = MultiFactorScheduler(steps=[15, 30], factor=0.5, base_lr=0.5)
    assert [s(t) for t in (0, 14, 15, 29, 30, 31)] == [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert s(14.999) == 0.5


def test_warmup_multifactor_schedule_by_hand():
    s = WarmupMultiFactorSchedule([], warmup_factor=1 / 3, warmup_steps=500, base_lr=0.02)
    assert round(s(0), 6) == 0.006667
    assert round(s(250), 6) == 0.013333
    assert s(500) == 0.02
    c = WarmupMultiFactorSchedule([50, 75], warmup_factor=0.001, warmup_steps=10, warmup_method="constant", base_lr=0.01)
    assert c(0) == pytest.approx(1e-5, rel=1e-12) and c(9) == pytest.approx(1e-5, rel=1e-12)
    assert c(10) == 0.01 and c(50) == pytest.approx(1e-3, rel=1e-12) and c(75) == pytest.approx(1e-4, rel=1e-12)


# ----------------------------------------------------------------- valid edge cases


@pytest.mark.parametrize(
    "schedule, at_zero, at_end",
    [
        (CosineScheduler(10, base_lr=0.5, final_lr=0.1, warmup_steps=10), 0.0, 0.1),
        (PolyScheduler(10, base_lr=0.5, final_lr=0.1, warmup_steps=10), 0.0, 0.1),
        (PolyScheduler(10, base_lr=0.5, power=0), 0.5, 0.0),
        (FactorScheduler(factor=1, base_lr=0.5), 0.5, 0.5),
        (MultiFactorScheduler([], factor=0.1, base_lr=0.5), 0.5, 0.5),
        (LinearWarmup(ConstantScheduler(0.5), 0), 0.5, 0.5),
        (WarmupMultiFactorSchedule([], warmup_steps=0, base_lr=0.5), 0.5, 0.5),
    ],
)
def test_edge_cases_work_for_every_t(schedule, at_zero, at_end):
    out = schedule(np.concatenate([np.arange(0, 30, 0.25), [1e6]]))
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    assert out[0] == at_zero and out[-1] == at_end


def test_warmup_as_long_as_schedule():
    s = CosineScheduler(10, base_lr=0.5, final_lr=0.1, warmup_steps=10, warmup_begin_lr=0.0)
    assert s(5) == 0.25 and s(10) == 0.5 and s(10.5) == 0.1


def test_power_zero_keeps_base_until_the_end():
    s = PolyScheduler(10, base_lr=0.5, final_lr=0.1, power=0)
    assert [s(t) for t in (0, 5, 10, 11)] == [0.5, 0.5, 0.5, 0.1]


# ----------------------------------------------------------------- inputs: scalars, arrays, tensors


def test_array_and_tensor_inputs_agree_with_scalars():
    s = CosineScheduler(20, base_lr=0.3, final_lr=0.01, warmup_steps=5)
    steps = np.arange(30)
    scalars = [s(int(t)) for t in steps]
    assert all(isinstance(v, float) for v in scalars)
    arr = s(steps)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64
    np.testing.assert_array_equal(arr, scalars)
    ten = s(torch.arange(30))
    assert isinstance(ten, torch.Tensor) and ten.dtype == torch.float64
    np.testing.assert_array_equal(ten.numpy(), scalars)
    np.testing.assert_array_equal(s(steps.reshape(5, 6)), arr.reshape(5, 6))


def test_calling_never_changes_a_schedule():
    s = CosineScheduler(20, base_lr=0.3, final_lr=0.01)
    first = [s(t) for t in (25, 0, 10)]  # d2l's version raises AttributeError on the first of these
    assert [s(t) for t in (25, 0, 10)] == first
    assert [s(t) for t in (10, 0, 25)] == first[::-1]


def test_a_million_steps_vectorised():
    out = PolyScheduler(10**6, base_lr=0.1, warmup_steps=1000)(np.arange(10**6))
    assert out.shape == (10**6,) and out.max() == pytest.approx(0.1)


# ----------------------------------------------------------------- bad input fails early and clearly


@pytest.mark.parametrize(
    "build, error, name",
    [
        (lambda: SquareRootScheduler(lr=-0.1), ValueError, "lr"),
        (lambda: SquareRootScheduler(lr=float("nan")), ValueError, "lr"),
        (lambda: ConstantScheduler(lr=float("inf")), ValueError, "lr"),
        (lambda: ConstantScheduler(lr="0.1"), TypeError, "lr"),
        (lambda: FactorScheduler(factor=0), ValueError, "factor"),
        (lambda: FactorScheduler(factor=-0.5), ValueError, "factor"),
        (lambda: FactorScheduler(factor=0.9, stop_factor_lr=-1), ValueError, "stop_factor_lr"),
        (lambda: MultiFactorScheduler([30, 15]), ValueError, "steps"),
        (lambda: MultiFactorScheduler([-1, 15]), ValueError, "steps[0]"),
        (lambda: MultiFactorScheduler(15), TypeError, "steps"),
        (lambda: MultiFactorScheduler([1], factor=0), ValueError, "factor"),
        (lambda: StepScheduler(0), ValueError, "step_size"),
        (lambda: ExponentialScheduler(gamma=0), ValueError, "gamma"),
        (lambda: CosineScheduler(0), ValueError, "max_update"),
        (lambda: CosineScheduler(-5), ValueError, "max_update"),
        (lambda: CosineScheduler(10, warmup_steps=11), ValueError, "warmup_steps"),
        (lambda: CosineScheduler(10, final_lr=float("nan")), ValueError, "final_lr"),
        (lambda: CosineScheduler(10, warmup_begin_lr=-1), ValueError, "warmup_begin_lr"),
        (lambda: PolyScheduler(10, power=-1), ValueError, "power"),
        (lambda: PolyScheduler(10, warmup_steps=20), ValueError, "warmup_steps"),
        (lambda: LinearWarmup(0.1, 5), TypeError, "schedule"),
        (lambda: LinearWarmup(ConstantScheduler(), -1), ValueError, "warmup_steps"),
        (lambda: SequentialScheduler([ConstantScheduler()], [5]), ValueError, "milestones"),
        (lambda: SequentialScheduler([ConstantScheduler(), "x"], [5]), TypeError, "schedules[1]"),
        (lambda: SequentialScheduler([ConstantScheduler(), ConstantScheduler()], [5, 3]), ValueError, "milestones"),
        (lambda: WarmupMultiFactorSchedule([5], gamma=0), ValueError, "gamma"),
        (lambda: WarmupMultiFactorSchedule([5], warmup_factor=0), ValueError, "warmup_factor"),
        (lambda: WarmupMultiFactorSchedule([5], warmup_method="cosine"), ValueError, "warmup_method"),
        (lambda: WarmupMultiFactorSchedule([5, 1]), ValueError, "milestones"),
    ],
)
def test_bad_parameters_name_themselves(build, error, name):
    with pytest.raises(error, match=name.replace("[", r"\[").replace("]", r"\]")):
        build()


@pytest.mark.parametrize("t", [-1, -0.5, float("nan"), float("inf"), np.array([1.0, -2.0]), torch.tensor([float("nan")])])
def test_bad_steps_raise(t):
    with pytest.raises(ValueError, match="t must be"):
        CosineScheduler(10)(t)


@pytest.mark.parametrize("t", ["3", None, True, np.array(["a"])])
def test_wrong_step_types_raise(t):
    with pytest.raises(TypeError, match="t must"):
        SquareRootScheduler()(t)


def test_overflow_is_an_error_not_an_inf():
    with pytest.raises(OverflowError, match="not finite"):
        ExponentialScheduler(gamma=10.0, base_lr=1.0)(1000)


def test_a_user_callable_returning_nan_is_caught():
    with pytest.raises(OverflowError, match="not finite"):
        LinearWarmup(lambda t: float("nan"), 2)(5)


# ----------------------------------------------------------------- invariants (hypothesis)

lrs = st.floats(0.0, 10.0, allow_nan=False)


@st.composite
def decay_params(draw):
    max_update = draw(st.floats(0.5, 1000.0))
    base = draw(lrs)
    return dict(
        max_update=max_update,
        base_lr=base,
        final_lr=draw(st.floats(0.0, base)),
        warmup_steps=draw(st.floats(0.0, max_update)),
        warmup_begin_lr=draw(st.floats(0.0, base)),
    )


@st.composite
def decaying_schedules(draw):
    kind = draw(st.sampled_from(["cosine", "poly"]))
    params = draw(decay_params())
    if kind == "cosine":
        return CosineScheduler(**params)
    return PolyScheduler(**params, power=draw(st.floats(0.0, 5.0)))


@settings(max_examples=200, deadline=None)
@given(decaying_schedules(), st.lists(st.floats(0.0, 3000.0), min_size=1, max_size=20))
def test_cosine_and_poly_invariants(s, ts):
    t = np.array(ts)
    v = s(t)
    lo = min(s.final_lr, s.warmup_begin_lr)
    assert np.all(np.isfinite(v))
    assert np.all(v >= lo - 1e-12 * (1 + s.base_lr)) and np.all(v <= s.base_lr * (1 + 1e-12) + 1e-300)
    # non-increasing after warmup
    after = np.sort(t[t >= s.warmup_steps])
    va = s(after)
    assert np.all(np.diff(va) <= 1e-12 * (1 + s.base_lr))


@settings(max_examples=200, deadline=None)
@given(decaying_schedules())
def test_continuous_at_the_end_of_warmup(s):
    w = s.warmup_steps
    assume(w > 1e-3)
    eps = w * 1e-9
    left, right = s(w - eps), s(w)
    assert right == pytest.approx(s.base_lr, rel=1e-9, abs=1e-12)
    assert abs(left - right) <= 1e-6 * (1 + s.base_lr)


@st.composite
def step_decays(draw):
    base = draw(lrs)
    factor = draw(st.floats(1e-3, 1.0))
    kind = draw(st.sampled_from(["factor", "multi", "step", "exp", "sqrt", "wmf"]))
    if kind == "factor":
        return FactorScheduler(factor, draw(st.floats(0.0, base)), base)
    if kind == "multi":
        return MultiFactorScheduler(sorted(draw(st.lists(st.integers(0, 100), max_size=5))), factor, base)
    if kind == "step":
        return StepScheduler(draw(st.integers(1, 50)), factor, base)
    if kind == "exp":
        return ExponentialScheduler(factor, base)
    if kind == "sqrt":
        return SquareRootScheduler(base)
    return WarmupMultiFactorSchedule(sorted(draw(st.lists(st.integers(0, 100), max_size=4))), factor,
                                     draw(st.floats(1e-3, 1.0)), draw(st.integers(0, 20)), "linear", base)


@settings(max_examples=300, deadline=None)
@given(step_decays(), st.lists(st.floats(0.0, 500.0), min_size=2, max_size=20))
def test_decays_are_finite_bounded_and_non_increasing(s, ts):
    t = np.sort(np.array(ts))
    v = s(t)
    base = s.lr if isinstance(s, SquareRootScheduler) else s.base_lr
    assert np.all(np.isfinite(v)) and np.all(v >= 0) and np.all(v <= base * (1 + 1e-12))
    if isinstance(s, WarmupMultiFactorSchedule):
        t = t[t >= s.warmup_steps]
        v = s(t)
    assert np.all(np.diff(v) <= 1e-12 * (1 + base))
    # purity: the same values in any order, scalar or vectorised
    assert [s(float(x)) for x in t[::-1]] == list(v[::-1])


def optax_warmup_cosine_decay(init_value, peak_value, warmup_steps, decay_steps, end_value, count):
    """optax 0.2.8, ``optax/schedules/_schedule.py``: ``warmup_cosine_decay_schedule`` (exponent 1), restated:
    ``join_schedules([linear_schedule(init, peak, warmup), cosine_decay_schedule(peak, decay - warmup,
    alpha=end / peak)], [warmup])``."""
    if count < warmup_steps:
        frac = 1 - count / warmup_steps
        return (init_value - peak_value) * frac + peak_value
    steps = float(decay_steps - warmup_steps)
    c = min(float(count - warmup_steps), steps)
    alpha = end_value / peak_value
    return peak_value * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * c / steps)) + alpha)


@pytest.mark.parametrize("init, warmup, decay, end", [(0.0, 5, 20, 0.01), (0.03, 10, 100, 0.0), (0.0, 1, 7, 0.002)])
def test_cosine_with_warmup_equals_optax_warmup_cosine_decay(init, warmup, decay, end):
    # optax counts the warmup inside decay_steps and holds end_value after it, as d2l's CosineScheduler does
    ours = CosineScheduler(decay, base_lr=0.3, final_lr=end, warmup_steps=warmup, warmup_begin_lr=init)
    t = np.arange(decay + 15)
    expected = [optax_warmup_cosine_decay(init, 0.3, warmup, decay, end, x) for x in t]
    np.testing.assert_allclose(ours(t), expected, rtol=REL, atol=1e-15)
