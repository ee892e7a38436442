"""lrlab.get_schedule against HuggingFace transformers' get_scheduler, traced step by step through the
LambdaLR it returns: every name lrlab builds, equal to 1e-12 up to num_training_steps (and after it
where both define the same rate), the differences after it, and every refusal."""

import warnings

import numpy as np
import pytest
import torch

from lrlab import ScheduleLR, get_schedule, trace_scheduler

transformers = pytest.importorskip("transformers")

TOL = 1e-12
PEAK = 0.3


def theirs(name, n, **kwargs):
    """The rate of each of n steps under transformers' scheduler on an optimizer at PEAK."""
    specific = {k: v for k, v in kwargs.items() if k not in ("num_warmup_steps", "num_training_steps")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own deprecation notices
        return trace_scheduler(lambda opt: transformers.get_scheduler(
            name, opt, num_warmup_steps=kwargs.get("num_warmup_steps"),
            num_training_steps=kwargs.get("num_training_steps"), scheduler_specific_kwargs=specific), n, lr=PEAK)


CASES = [  # (name, kwargs, steps compared: up to T inclusive, or beyond where both hold their floor)
    ("linear", dict(num_warmup_steps=10, num_training_steps=100), 130),
    ("linear", dict(num_warmup_steps=0, num_training_steps=37), 50),
    ("cosine", dict(num_warmup_steps=10, num_training_steps=100), 101),
    ("cosine", dict(num_warmup_steps=0, num_training_steps=64), 65),
    ("cosine_with_restarts", dict(num_warmup_steps=10, num_training_steps=100, num_cycles=3), 130),
    ("cosine_with_restarts", dict(num_warmup_steps=0, num_training_steps=60, num_cycles=1), 80),
    ("polynomial", dict(num_warmup_steps=5, num_training_steps=50, lr_end=1e-4, power=2.0), 70),
    ("polynomial", dict(num_warmup_steps=0, num_training_steps=50), 70),
    ("constant", dict(), 40),
    ("constant_with_warmup", dict(num_warmup_steps=7), 40),
    ("inverse_sqrt", dict(num_warmup_steps=10), 300),
    ("inverse_sqrt", dict(num_warmup_steps=10, timescale=40), 300),
    ("cosine_with_min_lr", dict(num_warmup_steps=10, num_training_steps=100, min_lr=0.003), 101),
    ("cosine_with_min_lr", dict(num_warmup_steps=4, num_training_steps=40, min_lr_rate=0.1), 41),
    ("warmup_stable_decay", dict(num_warmup_steps=10, num_training_steps=100, num_decay_steps=20), 130),
    ("warmup_stable_decay", dict(num_warmup_steps=5, num_stable_steps=30, num_decay_steps=15, decay_type="1-sqrt",
                                 min_lr_ratio=0.1), 70),
    ("warmup_stable_decay", dict(num_warmup_steps=0, num_training_steps=60, num_decay_steps=12, decay_type="linear",
                                 min_lr_ratio=0.01), 70),
]


@pytest.mark.parametrize("name, kwargs, n", CASES)
def test_get_schedule_equals_transformers(name, kwargs, n):
    ours = get_schedule(name, PEAK, **kwargs)
    np.testing.assert_allclose(ours(np.arange(float(n))), theirs(name, n, **kwargs), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name, kwargs", [("cosine", dict(num_warmup_steps=10, num_training_steps=100)),
                                          ("cosine_with_min_lr", dict(num_warmup_steps=0, num_training_steps=50,
                                                                      min_lr=0.03))])
def test_after_the_end_transformers_cosine_rises_and_ours_stays(name, kwargs):
    T = kwargs["num_training_steps"]
    ours, hf = get_schedule(name, PEAK, **kwargs), theirs(name, T + 30, **kwargs)
    floor = ours(T)
    assert hf[T] == pytest.approx(floor, abs=TOL) and hf[T + 29] > floor + 1e-3 and ours(T + 29) == floor


def test_schedule_lr_drives_an_optimizer_as_transformers_does():
    kwargs = dict(num_warmup_steps=8, num_training_steps=80)
    ours = trace_scheduler(lambda o: ScheduleLR(o, get_schedule("linear", PEAK, **kwargs)), 81, lr=PEAK)
    np.testing.assert_allclose(ours, theirs("linear", 81, **kwargs), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("call, error, match", [
    (lambda: get_schedule("cosine_annealing", 0.1), ValueError, "unknown schedule name 'cosine_annealing'; known: linear, cosine"),
    (lambda: get_schedule("reduce_lr_on_plateau", 0.1), ValueError, "no function of the step"),
    (lambda: get_schedule("linear", 0.1, num_warmup_steps=5), ValueError, "needs num_training_steps"),
    (lambda: get_schedule("linear", 0.1, num_warmup_steps=10, num_training_steps=10), ValueError, "must exceed"),
    (lambda: get_schedule("linear", 0.1, num_training_steps=10, power=2), TypeError, "takes no argument power"),
    (lambda: get_schedule("cosine", 0.1, num_training_steps=10, num_cycles=1.5), ValueError, "num_cycles=0.5 only"),
    (lambda: get_schedule("cosine_with_restarts", 0.1, num_training_steps=10, num_cycles=3), ValueError, "multiple of"),
    (lambda: get_schedule("cosine_with_min_lr", 0.1, num_training_steps=10), ValueError, "exactly one of min_lr"),
    (lambda: get_schedule("warmup_stable_decay", 0.1, num_training_steps=10), ValueError, "needs num_decay_steps"),
    (lambda: get_schedule("warmup_stable_decay", 0.1, num_decay_steps=2, warmup_type="cosine",
                          num_training_steps=10), ValueError, "warmup_type='linear'"),
    (lambda: get_schedule("constant", -0.1), ValueError, "peak_lr"),
    (lambda: get_schedule("constant_with_warmup", 0.1, num_warmup_steps=-1), ValueError, "num_warmup_steps"),
])
def test_refusals_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_every_transformers_name_is_built_or_refused_with_a_reason():
    for name in (s.value for s in transformers.SchedulerType):
        try:
            get_schedule(name, 0.1, num_warmup_steps=2, num_training_steps=10, **(
                {"num_decay_steps": 2} if name == "warmup_stable_decay" else
                {"min_lr": 0.0} if name == "cosine_with_min_lr" else {}))
        except ValueError as err:
            assert "unknown" not in str(err), name
