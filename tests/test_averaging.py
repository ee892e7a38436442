"""Weight averaging: SWAScheduler against torch's SWALR, WeightAverage against the formulas by hand.

What the averaging study relies on: an averaged run trains exactly as the plain one (only the evaluated net
differs), the EMA and the equal average are what their formulas say, and a stopped run resumes exactly.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.optim import lr_scheduler as L
from torch.optim.swa_utils import SWALR

import lrlab
from lrlab import Checkpoint, ConstantScheduler, CosineScheduler, LinearWarmup, SWAScheduler, WeightAverage
from lrlab.train import _evaluate
from test_train import LOSS, batches, run, setup, tiny_data, tiny_net


# --------------------------------------------------------------------------- SWAScheduler = SWALR


def torch_swa_rates(base_lambda, peak, start, swa_lr, anneal, strategy, steps):
    """The rates of torch's SWA recipe: LambdaLR for ``start`` steps, then SWALR made and stepped after each step."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=peak)
    sched = L.LambdaLR(opt, base_lambda)
    rates = []
    swa = None
    for t in range(steps):
        if t == start:
            swa = SWALR(opt, swa_lr=swa_lr, anneal_epochs=anneal, anneal_strategy=strategy)
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        (swa if swa is not None else sched).step()
    return rates


@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 12), anneal=st.integers(0, 8), strategy=st.sampled_from(["cos", "linear"]),
       swa_lr=st.floats(0.0, 0.5), warmup=st.integers(0, 5))
def test_swa_scheduler_equals_torch_swalr_at_every_step(start, anneal, strategy, swa_lr, warmup):
    peak = 0.3
    base = LinearWarmup(ConstantScheduler(peak), warmup_steps=warmup) if warmup else CosineScheduler(30, peak, 0.01)
    ours = SWAScheduler(base, swa_start=start, swa_lr=swa_lr, anneal_steps=anneal, anneal_strategy=strategy)
    theirs = torch_swa_rates(lambda t: base(t) / peak, peak, start, swa_lr, anneal, strategy, start + anneal + 4)
    assert [ours(t) for t in range(len(theirs))] == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_swa_scheduler_by_hand():
    s = SWAScheduler(ConstantScheduler(0.3), swa_start=10, swa_lr=0.05, anneal_steps=2)
    assert s(9) == 0.3 and s(10) == 0.3
    assert s(11) == pytest.approx(0.05 * 0.5 + 0.3 * 0.5)  # (1 - cos(pi / 2)) / 2 = 1/2
    assert s(12) == pytest.approx(0.05) and s(100) == pytest.approx(0.05)
    assert SWAScheduler(ConstantScheduler(0.3), 10, 0.05, anneal_steps=0)(10) == 0.05  # no anneal: at once


@pytest.mark.parametrize("kwargs, message", [
    ({"swa_lr": -1.0}, "swa_lr"), ({"anneal_steps": 1.5}, "anneal_steps"),
    ({"anneal_strategy": "exp"}, "anneal_strategy"), ({"swa_start": -1}, "swa_start"),
])
def test_swa_scheduler_names_a_bad_parameter(kwargs, message):
    args = {"schedule": ConstantScheduler(0.3), "swa_start": 5, "swa_lr": 0.05, **kwargs}
    with pytest.raises(ValueError, match=message):
        SWAScheduler(**args)


# --------------------------------------------------------------------------- WeightAverage


def test_averaging_leaves_training_alone_and_evaluates_the_average():
    plain_net, plain_opt, tr, te = setup(lr=0.5)
    plain = run(plain_net, plain_opt, tr, te, 4)
    net, opt, tr, te = setup(lr=0.5)
    avg = WeightAverage(net, kind="ema", decay=0.9)
    h = run(net, opt, tr, te, 4, callbacks=[avg])
    assert h.train_loss == plain.train_loss and h.train_acc == plain.train_acc  # bit for bit
    for a, b in zip(net.parameters(), plain_net.parameters()):
        assert torch.equal(a, b)
    acc, loss = _evaluate(avg.model, te, torch.device("cpu"), LOSS)
    assert (h.test_acc[-1], h.test_loss[-1]) == (acc, loss)
    assert h.test_loss[-1] != plain.test_loss[-1]


def test_ema_is_the_formula_by_hand():
    net, opt, tr, te = setup(lr=0.5)
    decay = 0.8
    avg = WeightAverage(net, kind="ema", decay=decay)
    seen = []

    class Record:
        def on_update_end(self, state):
            seen.append([p.detach().clone() for p in state.net.parameters()])

    run(net, opt, tr, te, 2, callbacks=[Record(), avg])
    expected = [w.clone() for w in seen[0]]  # the first weights averaged are copied
    for ws in seen[1:]:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, ws)]
    assert avg.averaged == len(seen) == 2 * len(tr)
    for e, p in zip(expected, avg.model.module.parameters()):
        torch.testing.assert_close(p, e, rtol=1e-6, atol=1e-7)


def test_swa_averages_each_epochs_weights_from_start_equally():
    net, opt, tr, te = setup(lr=0.5)
    avg = WeightAverage(net, kind="swa", start=2, every="epoch")
    ends = []

    class Record:
        def on_epoch_end(self, state):
            ends.append([p.detach().clone() for p in state.net.parameters()])

    h = run(net, opt, tr, te, 5, callbacks=[avg, Record()])
    assert avg.averaged == 3
    for p, *ws in zip(avg.model.module.parameters(), *ends[2:]):
        torch.testing.assert_close(p, sum(ws) / 3, rtol=1e-6, atol=1e-7)
    assert h.test_loss[4] == _evaluate(avg.model, te, torch.device("cpu"), LOSS)[1]
    assert h.test_loss[4] != _evaluate(net, te, torch.device("cpu"), LOSS)[1]


def test_before_the_average_begins_the_trained_net_is_evaluated():
    plain_net, plain_opt, tr, te = setup(lr=0.5)
    plain = run(plain_net, plain_opt, tr, te, 3)
    net, opt, tr, te = setup(lr=0.5)
    h = run(net, opt, tr, te, 3, callbacks=[WeightAverage(net, kind="swa", start=2, every="epoch")])
    assert h.test_loss[:2] == plain.test_loss[:2]
    assert h.test_loss[2] == plain.test_loss[2]  # one epoch averaged: the average is that epoch's weights


def test_a_stopped_averaged_run_resumes_exactly(tmp_path):
    def fresh(path, stop=None):
        net, opt, tr, te = setup(lr=0.5)
        avg = WeightAverage(net, kind="ema", decay=0.9)
        ckpt = Checkpoint(path, stateful={"average": avg})
        start, history, _ = ckpt.restore(net, opt)
        cbs = [avg, ckpt] + ([lrlab.callbacks.StopAfter(stop)] if stop else [])
        return run(net, opt, tr, te, 4, callbacks=cbs, start_epoch=start, history=history), avg

    whole, avg_whole = fresh(tmp_path / "a.pt")
    fresh(tmp_path / "b.pt", stop=2)
    resumed, avg_resumed = fresh(tmp_path / "b.pt")
    assert resumed.test_loss == whole.test_loss and resumed.train_loss == whole.train_loss
    assert avg_resumed.averaged == avg_whole.averaged
    for a, b in zip(avg_resumed.model.parameters(), avg_whole.model.parameters()):
        assert torch.equal(a, b)


def test_a_checkpoint_without_the_average_is_refused(tmp_path):
    net, opt, tr, te = setup(lr=0.5)
    run(net, opt, tr, te, 1, callbacks=[Checkpoint(tmp_path / "c.pt")])
    avg = WeightAverage(net)
    with pytest.raises(lrlab.CheckpointError, match=r"c\.pt does not fit this run .*average"):
        Checkpoint(tmp_path / "c.pt", stateful={"average": avg}).restore(net, opt)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "polyak"}, "kind must be one of"), ({"decay": 1.0}, "decay must be a number in"),
    ({"every": "batch"}, "every must be one of"), ({"start": -1}, "start must be an epoch number"),
])
def test_weight_average_names_a_bad_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WeightAverage(tiny_net(), **kwargs)


def test_batch_norm_needs_a_loader_of_its_own():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="bn_loader"):
        WeightAverage(net)
    X, y = tiny_data(64)
    avg = WeightAverage(net, kind="swa", every="epoch", bn_loader=batches(X, y, 16))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    h = run(net, opt, batches(X, y, 16), batches(X, y, 32), 2, callbacks=[avg])
    bn = avg.model.module[2]
    assert math.isfinite(h.test_loss[-1]) and int(bn.num_batches_tracked) == 4  # update_bn's pass over 4 batches
