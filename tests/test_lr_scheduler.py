"""The torch drop-ins: exact values, several param groups, torch references, and resuming."""

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as L

from lrlab import (
    ConstantScheduler,
    CosineScheduler,
    LinearWarmup,
    MultiFactorScheduler,
    PolyScheduler,
    ScheduleLR,
    SquareRootScheduler,
    WarmupMultiFactorLR,
    updates_per_epoch,
    trace_scheduler,
)


def sgd(lr=0.1, groups=1):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(groups)]
    if groups == 1:
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr)


def run(optimizer, scheduler, n):
    """The lrs of every group for n steps: [[group lrs at step t] for t]."""
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize(
    "schedule",
    [
        CosineScheduler(20, base_lr=0.3, final_lr=0.01, warmup_steps=5),
        SquareRootScheduler(0.1),
        PolyScheduler(30, base_lr=0.005, power=0.9),
        lambda t: 0.1 / (1 + t),  # any callable t -> lr
    ],
)
def test_one_group_equals_the_schedule_exactly(schedule):
    opt = sgd(lr=123.0)  # the optimizer's own lr is replaced from step 0 on
    lrs = run(opt, ScheduleLR(opt, schedule), 40)
    assert [row[0] for row in lrs] == [float(schedule(t)) for t in range(40)]


def test_several_groups_keep_their_ratio_to_the_first():
    opt = sgd(lr=0.1, groups=3)  # initial lrs 0.1, 0.2, 0.3
    schedule = MultiFactorScheduler([2, 4], factor=0.5, base_lr=1.0)
    lrs = np.array(run(opt, ScheduleLR(opt, schedule), 6))
    np.testing.assert_allclose(lrs[:, 0], [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(lrs[:, 1], 2 * lrs[:, 0], rtol=1e-15)
    np.testing.assert_allclose(lrs[:, 2], 3 * lrs[:, 0], rtol=1e-15)


def test_first_group_at_zero_with_several_groups_is_refused():
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.0},
                           {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}])
    with pytest.raises(ValueError, match="first param group"):
        ScheduleLR(opt, SquareRootScheduler())


def test_schedule_must_be_callable():
    with pytest.raises(TypeError, match="schedule"):
        ScheduleLR(sgd(), 0.1)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, float("inf")])
def test_a_callable_returning_a_bad_lr_is_refused(bad):
    with pytest.raises(ValueError, match=r"schedule\(0\)"):
        ScheduleLR(sgd(), lambda t: bad)


def test_matches_torch_multistep_when_driven_through_schedulelr():
    opt = sgd(lr=0.5)
    ours = [row[0] for row in run(opt, ScheduleLR(opt, MultiFactorScheduler([15, 30], 0.5, 0.5)), 40)]
    ref = trace_scheduler(lambda o: L.MultiStepLR(o, [15, 30], 0.5), 40, lr=0.5)
    np.testing.assert_allclose(ours, ref, rtol=1e-15)


# ----------------------------------------------------------------- WarmupMultiFactorLR


def test_warmup_multifactor_hand_values():
    opt = sgd(lr=0.02)
    lrs = [row[0] for row in run(opt, WarmupMultiFactorLR(opt, [], warmup_factor=1 / 3, warmup_epochs=500), 501)]
    assert round(lrs[0], 6) == 0.006667
    assert round(lrs[250], 6) == 0.013333
    assert lrs[500] == 0.02


def test_the_course_call_works_as_written():
    opt = sgd(lr=0.01)
    scheduler = WarmupMultiFactorLR(opt, milestones=[50, 75], gamma=0.1, warmup_factor=0.001,
                                           warmup_epochs=10, last_epoch=-1)
    lrs = [row[0] for row in run(opt, scheduler, 100)]
    assert lrs[0] == pytest.approx(1e-5, rel=1e-12)  # rises from 0.01 * 0.001 ...
    assert lrs[5] == pytest.approx(0.01 * (0.001 * 0.5 + 0.5), rel=1e-12)
    assert lrs[10] == 0.01  # ... to 0.01, then decays
    assert lrs[49] == 0.01 and lrs[50] == pytest.approx(1e-3, rel=1e-12) and lrs[75] == pytest.approx(1e-4, rel=1e-12)
    assert max(lrs) == 0.01 and lrs == sorted(lrs[:11]) + lrs[11:]


@pytest.mark.parametrize("method", ["linear", "constant"])
def test_warmup_multifactor_equals_torch_chain(method):
    # w(t) * gamma^k is torch's LinearLR (or ConstantLR) times MultiStepLR, chained.
    opt = sgd(lr=0.05, groups=2)
    ours = np.array(run(opt, WarmupMultiFactorLR(opt, [8, 8, 15], 0.3, 0.2, 6, method), 25))

    def chain(o):
        warm = (L.LinearLR(o, start_factor=0.2, total_iters=6) if method == "linear"
                else L.ConstantLR(o, factor=0.2, total_iters=6))
        return L.ChainedScheduler([warm, L.MultiStepLR(o, [8, 8, 15], 0.3)])

    opt2 = sgd(lr=0.05, groups=2)
    ref = np.array(run(opt2, chain(opt2), 25))
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(milestones=[75, 50]), ValueError, "milestones"),
        (dict(milestones=[-1]), ValueError, "milestones"),
        (dict(milestones=[5], gamma=0), ValueError, "gamma"),
        (dict(milestones=[5], gamma=-0.1), ValueError, "gamma"),
        (dict(milestones=[5], warmup_factor=0), ValueError, "warmup_factor"),
        (dict(milestones=[5], warmup_epochs=-1), ValueError, "warmup_epochs"),
        (dict(milestones=[5], warmup_method="exp"), ValueError, "warmup_method"),
        (dict(milestones=[5], gamma="0.1"), TypeError, "gamma"),
    ],
)
def test_warmup_multifactor_bad_parameters(kwargs, error, name):
    with pytest.raises(error, match=name):
        WarmupMultiFactorLR(sgd(), **kwargs)


# ----------------------------------------------------------------- save, restore, resume


def make_pair(kind, lr=0.3):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    if kind == "schedule":
        sched = ScheduleLR(opt, LinearWarmup(CosineScheduler(30, base_lr=0.3, final_lr=0.01), 5))
    else:
        sched = WarmupMultiFactorLR(opt, [10, 20], gamma=0.1, warmup_factor=0.001, warmup_epochs=5)
    return net, opt, sched


def roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["schedule", "warmup_multifactor"]), st.integers(0, 34))
def test_resume_anywhere_continues_the_same_sequence(kind, stop):
    net, opt, sched = make_pair(kind)
    straight = [row[0] for row in run(opt, sched, 35)]

    net, opt, sched = make_pair(kind)
    first = [row[0] for row in run(opt, sched, stop)]
    saved = roundtrip({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()})

    net2, opt2, sched2 = make_pair(kind, lr=9.9)  # fresh objects, other lr: all must come from the state
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    rest = [row[0] for row in run(opt2, sched2, 35 - stop)]
    assert first + rest == straight


def test_state_dict_holds_plain_values_only():
    _, _, sched = make_pair("schedule")
    state = sched.state_dict()
    assert "schedule" not in state and "optimizer" not in state
    assert roundtrip(state) == state


def test_loaded_warmup_multifactor_uses_the_loaded_milestones():
    _, _, sched = make_pair("warmup_multifactor")
    opt = sgd(lr=0.3)
    other = WarmupMultiFactorLR(opt, [1, 2], gamma=0.5, warmup_epochs=0)
    other.load_state_dict(roundtrip(sched.state_dict()))
    assert other.milestones == [10, 20] and other.schedule.milestones == (10.0, 20.0)


# ----------------------------------------------------------------- trace_scheduler


def test_trace_scheduler_plateau_needs_metrics():
    with pytest.raises(ValueError, match="metrics"):
        trace_scheduler(lambda o: L.ReduceLROnPlateau(o, patience=0), 3)
    lrs = trace_scheduler(lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=0), 4, lr=1.0, metrics=[1, 1, 1, 1])
    np.testing.assert_allclose(lrs, [1.0, 1.0, 0.5, 0.25])


# ----------------------------------------------------------------- any param-group field


def test_schedulelr_drives_weight_decay_and_momentum_with_the_rate():
    params = [torch.nn.Parameter(torch.ones(2))]
    opt = torch.optim.SGD(params, lr=0.3, momentum=0.0, weight_decay=5e-4)
    wd = CosineScheduler(10, base_lr=5e-4, final_lr=5e-5)
    momentum = lambda t: 0.9 - 0.01 * t  # noqa: E731
    sched = ScheduleLR(opt, CosineScheduler(10, base_lr=0.3, final_lr=0.01), momentum=momentum,
                       fields={"weight_decay": wd})
    seen = []
    for t in range(12):
        group = opt.param_groups[0]
        seen.append((group["lr"], group["momentum"], group["weight_decay"]))
        opt.step()
        sched.step()
    for t, (lr, m, w) in enumerate(seen):
        assert lr == pytest.approx(CosineScheduler(10, base_lr=0.3, final_lr=0.01)(t), rel=1e-12)
        assert m == pytest.approx(0.9 - 0.01 * t, rel=1e-12) and w == pytest.approx(wd(t), rel=1e-12)
    assert "fields" not in sched.state_dict() and sched.momentum is momentum


def test_schedulelr_writes_adams_beta1_for_momentum():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], lr=1e-3)
    ScheduleLR(opt, ConstantScheduler(1e-3), fields={"momentum": lambda t: 0.8})
    assert opt.param_groups[0]["betas"] == (0.8, 0.999)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(fields={"dampening_x": lambda t: 0.1}), ValueError, r"SGD's param groups have no field 'dampening_x'"),
    (dict(fields={"lr": lambda t: 0.1}), ValueError, "the lr is the schedule itself"),
    (dict(fields={"weight_decay": 0.1}), TypeError, "weight_decay must be callable"),
    (dict(momentum=lambda t: 0.9, fields={"momentum": lambda t: 0.9}), ValueError, "give the momentum schedule once"),
])
def test_schedulelr_refuses_fields_it_cannot_drive(kwargs, error, message):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    with pytest.raises(error, match=message):
        ScheduleLR(opt, ConstantScheduler(0.1), **kwargs)


def test_schedulelr_refuses_a_field_value_out_of_range():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"weight_decay\(0\) returned -1; it must be finite and >= 0"):
        ScheduleLR(opt, ConstantScheduler(0.1), fields={"weight_decay": lambda t: -1})


# ----------------------------------------------------------------- updates per epoch


def _updates_of_the_loop(loader, accumulation, partial_update):
    """Count the optimizer steps of the usual accumulation loop over ``loader``."""
    updates = 0
    for i, _ in enumerate(loader):
        if (i + 1) % accumulation == 0 or (partial_update and i + 1 == len(loader)):
            updates += 1
    return updates


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(1, 5), st.integers(1, 6), st.booleans())
def test_updates_per_epoch_counts_what_a_distributed_accumulating_loop_does(n, batch, world, accumulation, partial):
    from torch.utils.data import DataLoader, DistributedSampler

    data = list(range(n))
    n_batches = len(DataLoader(data, batch_size=batch))
    expected = {_updates_of_the_loop(DataLoader(data, batch_size=batch,
                                                sampler=DistributedSampler(data, num_replicas=world, rank=r,
                                                                           shuffle=False)),
                                     accumulation, partial) for r in range(world)}
    assert expected == {updates_per_epoch(n_batches, accumulation, world, partial_update=partial)}


def test_updates_per_epoch_by_hand_and_errors():
    # d2l's 60,000 images at batch 256: 235 batches; 4 per update on 2 processes: ceil(ceil(235/2)/4) = 30
    assert updates_per_epoch(235) == 235 and updates_per_epoch(235, 4) == 59
    assert updates_per_epoch(235, 4, 2) == 30 and updates_per_epoch(235, 4, 2, partial_update=False) == 29
    for kwargs, name in [(dict(n_batches=0), "n_batches"), (dict(n_batches=10, accumulation=0), "accumulation"),
                         (dict(n_batches=10, world_size=1.5), "world_size")]:
        with pytest.raises(ValueError, match=name):
            updates_per_epoch(**kwargs)


# ----------------------------------------------------------------- a schedule per param group


def test_a_schedule_per_group_equals_lambda_lr_with_a_list():
    """Discriminative rates: a backbone at a tenth of the head's rate, each with its own schedule."""
    backbone, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)

    def optimizer():
        return torch.optim.SGD([{"params": backbone.parameters(), "lr": 0.01}, {"params": head.parameters(), "lr": 0.1}])

    ours_opt = optimizer()
    ours = ScheduleLR(ours_opt, [CosineScheduler(20, base_lr=0.01, final_lr=0.001),
                                 LinearWarmup(ConstantScheduler(0.1), 5)])
    theirs_opt = optimizer()
    theirs = L.LambdaLR(theirs_opt, [lambda t: CosineScheduler(20, base_lr=0.01, final_lr=0.001)(t) / 0.01,
                                     lambda t: LinearWarmup(ConstantScheduler(0.1), 5)(t) / 0.1])
    for t in range(30):
        for a, b in zip(ours_opt.param_groups, theirs_opt.param_groups):
            assert a["lr"] == pytest.approx(b["lr"], rel=1e-12, abs=1e-15)
        assert ours_opt.param_groups[0]["lr"] == CosineScheduler(20, base_lr=0.01, final_lr=0.001)(t)
        ours_opt.step(), theirs_opt.step()
        ours.step(), theirs.step()


def test_a_schedule_per_group_is_checked():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{"params": p, "lr": 0.1}])
    with pytest.raises(ValueError, match="a list of 2 schedules for 1 param groups"):
        ScheduleLR(opt, [ConstantScheduler(0.1), ConstantScheduler(0.2)])
    with pytest.raises(TypeError, match=r"schedule\[0\] must be callable"):
        ScheduleLR(opt, [0.1])
    with pytest.raises(ValueError, match=r"schedule\[0\]\(0\)"):
        ScheduleLR(opt, [lambda t: float("nan")])
