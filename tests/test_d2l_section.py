"""Tests of lrlab.d2l_section: the book's code behaves as published (bugs included), and trace_lrs reads
off the rates its loop really trains at. These are the facts the errata chapter shows."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

import lrlab
from lrlab import course  # noqa: E402 (the course's models)
from lrlab.sources import d2l_section as S


def fresh_multistep():
    net = S.net_fn()
    trainer = torch.optim.SGD(net.parameters(), lr=0.5)
    return trainer, lr_scheduler.MultiStepLR(trainer, milestones=[15, 30], gamma=0.5)


# --------------------------------------------------------------------------- the published classes


def test_square_root_scheduler_formula():
    s = S.SquareRootScheduler(lr=0.1)
    assert [s(t) for t in range(4)] == pytest.approx([0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3), 0.05], rel=1e-15)


def test_factor_scheduler_is_stateful_and_starts_one_factor_down():
    s = S.FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0)
    assert s(0) == pytest.approx(1.8)  # not base_lr: the first call already multiplies
    assert s(0) == pytest.approx(1.62)  # same argument, new value: num_update is ignored
    values = [s(t) for t in range(100)]
    assert min(values) == 1e-2 and values[-1] == 1e-2
    # lrlab's pure FactorScheduler is a function of t: base * factor^t, floored
    pure = lrlab.FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0)
    assert pure(0) == 2.0 and pure(0) == 2.0 and pure(1) == pytest.approx(1.8)


def test_cosine_scheduler_published_behaviour():
    s = S.CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01)
    values = [s(t) for t in range(30)]
    assert values[0] == 0.3 and values[20] == pytest.approx(0.01) and values[29] == pytest.approx(0.01)
    assert values[10] == pytest.approx(0.01 + 0.29 * (1 + math.cos(math.pi / 2)) / 2)
    with pytest.raises(AttributeError):  # base_lr only exists after a call with epoch <= max_update
        S.CosineScheduler(max_update=20, base_lr=0.3)(25)
    warm = S.CosineScheduler(20, warmup_steps=5, base_lr=0.3, final_lr=0.01)
    assert [warm(t) for t in range(6)] == pytest.approx([0.0, 0.06, 0.12, 0.18, 0.24, 0.3])
    with pytest.raises(ZeroDivisionError):
        S.CosineScheduler(5, warmup_steps=5, base_lr=0.3)(5)


def test_net_fn_is_lrlab_lenet():
    ours, theirs = course.LeNet(), S.net_fn()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    theirs.load_state_dict(ours.state_dict())
    X = torch.randn(3, 1, 28, 28)
    assert torch.equal(ours(X), theirs(X))


def test_get_lr_steps_the_scheduler_it_reads():
    trainer, sched = fresh_multistep()
    plotted = [S.get_lr(trainer, sched) for _ in range(30)]
    assert plotted == [0.5] * 15 + [0.25] * 15
    assert sched.last_epoch == 30 and trainer.param_groups[0]["lr"] == 0.125


# --------------------------------------------------------------------------- what the loop trains at


def test_multisteplr_stepped_30_times_for_the_plot_trains_at_a_constant_0_125():
    trainer, sched = fresh_multistep()
    [S.get_lr(trainer, sched) for _ in range(30)]  # the book's plotting cell
    assert S.trace_lrs(sched, 30) == [0.125] * 30


def test_multisteplr_fresh_trains_as_planned():
    _, sched = fresh_multistep()
    assert S.trace_lrs(sched, 30) == [0.5] * 15 + [0.25] * 15


def test_custom_schedules_run_one_epoch_late():
    s = S.SquareRootScheduler(lr=0.1)
    trace = S.trace_lrs(s, 10, lr=0.1)
    assert trace[0] == 0.1  # the optimizer's initial rate
    assert trace[1:] == [s(t - 1) for t in range(1, 10)]
    assert trace != [s(t) for t in range(10)]


def test_warmup_cosine_trains_epoch_0_at_0_3_and_epoch_1_at_0():
    s = S.CosineScheduler(20, warmup_steps=5, base_lr=0.3, final_lr=0.01)
    trace = S.trace_lrs(s, 30, lr=0.3)
    assert trace[0] == 0.3 and trace[1] == 0.0
    assert trace[2:7] == pytest.approx([0.06, 0.12, 0.18, 0.24, 0.3])
    assert trace[-1] == pytest.approx(0.01)


def test_lrlab_train_fixes_the_lag():
    schedule = lrlab.CosineScheduler(20, warmup_steps=5, base_lr=0.3, final_lr=0.01)
    net = nn.Linear(4, 2)
    batch = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
    h = lrlab.train(net, batch, batch, 30, nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.3),
                    "cpu", schedule, live=False)
    assert h.lr == [schedule(t) for t in range(30)]
    assert h.lr[0] == 0.0 and h.lr[5] == pytest.approx(0.3)


def test_user_defined_torch_schedulers_fail_the_string_check():
    net = nn.Linear(4, 2)
    trainer = torch.optim.SGD(net.parameters(), lr=0.3)
    sched = lrlab.ScheduleLR(trainer, lrlab.ConstantScheduler(0.3))
    assert sched.__module__ != lr_scheduler.__name__
    with pytest.raises(TypeError, match="not callable"):
        S.trace_lrs(sched, 2)


def test_reduce_lr_on_plateau_is_stepped_without_its_metric():
    trainer = torch.optim.SGD(nn.Linear(4, 2).parameters(), lr=0.3)
    with pytest.raises(TypeError):
        S.trace_lrs(lr_scheduler.ReduceLROnPlateau(trainer), 2)


def test_trace_lrs_arguments():
    _, sched = fresh_multistep()
    with pytest.raises(ValueError, match="lr must be None"):
        S.trace_lrs(sched, 3, lr=0.5)
    with pytest.raises(ValueError, match="lr is required"):
        S.trace_lrs(S.SquareRootScheduler(), 3)
    with pytest.raises(ValueError, match="num_epochs"):
        S.trace_lrs(S.SquareRootScheduler(), 0, lr=0.1)


# --------------------------------------------------------------------------- the loop itself


def test_published_train_runs_quietly_with_the_animator_disabled_and_leaves_eval_mode(capsys):
    torch.manual_seed(0)
    net = S.net_fn()
    trainer = torch.optim.SGD(net.parameters(), lr=0.1)
    X, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    with S.animator_disabled():
        S.train(net, [(X, y)], [(X, y)], 2, S.loss, trainer, torch.device("cpu"))
    out = capsys.readouterr().out
    assert out.startswith("train loss ") and "test acc" in out and "Figure" not in out
    assert net.training is False  # evaluate_accuracy_gpu's eval mode leaks out of d2l's loop


def test_animator_disabled_restores_d2l_animator_after_an_error():
    from d2l import torch as d2l

    original = d2l.Animator
    with pytest.raises(RuntimeError):
        with S.animator_disabled():
            assert d2l.Animator is not original
            raise RuntimeError("boom")
    assert d2l.Animator is original


# ------------------------------------------------------------------------------------------------ the published runs


def test_published_rates_replay_each_runs_cells():
    assert S.published_rates("constant") == [0.3] * 30
    assert S.published_rates("multi_step") == [0.125] * 30           # stepped 30 times by the plot cell
    sqrt = S.published_rates("square_root")
    assert sqrt[:2] == [0.1, 0.1] and sqrt[2] == pytest.approx(0.1 / math.sqrt(2))   # one epoch late
    warm = S.published_rates("cosine_warmup")
    assert warm[:3] == [0.3, 0.0, pytest.approx(0.06)] and warm[6] == pytest.approx(0.3)
    cos = S.published_rates("cosine")
    assert cos[0] == cos[1] == 0.3 and cos[21:] == [pytest.approx(0.01)] * 9
    assert S.published_rates("cosine", 5) == cos[:5]
    with pytest.raises(ValueError, match="is not one of the section's runs"):
        S.published_rates("poly")


SEED_NOTEBOOK = Path(__file__).resolve().parents[1].parent / "shared" / "seeds" / "d2l_zh_lr_scheduler.ipynb"


@pytest.mark.skipif(not SEED_NOTEBOOK.exists(), reason="the course's sources (../shared/seeds) are absent")
def test_printed_numbers_are_the_source_notebooks():
    import json
    import re

    outputs = [o for c in json.loads(SEED_NOTEBOOK.read_text())["cells"] for o in c.get("outputs", [])
               if "text" in o]
    printed = [tuple(float(x) for x in m) for o in outputs
               for m in re.findall(r"train loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)", "".join(o["text"]))]
    assert printed == [S.PRINTED[run] for run in S.RUNS]  # the five train cells, in the book's order
