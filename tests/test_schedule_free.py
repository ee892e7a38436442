"""Schedule-free training (the ``schedulefree`` package) through lrlab.train: the optimizer's
train()/eval() protocol is followed, the averaged weights are what is evaluated and kept, and
combining it with a schedule warns."""

import warnings

import pytest
import torch
from torch import nn

schedulefree = pytest.importorskip("schedulefree")

import lrlab  # noqa: E402
from lrlab import course  # noqa: E402 (the course's models)
from lrlab import data as lrdata  # noqa: E402
from lrlab.train import is_schedule_free  # noqa: E402
from test_data import one_thread  # noqa: E402,F401 (a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def loaders(seed=3):
    tensors = lrdata.synthetic_dataset("fashion_mnist", 320, 128, seed=5)
    return lrdata.make_loaders(*tensors, 64, lrdata.PixelTransform(), seed=seed, device="cpu")


def fresh(lr=0.5):
    torch.manual_seed(0)
    net = course.LeNet()
    return net, schedulefree.SGDScheduleFree(net.parameters(), lr=lr, momentum=0.9, warmup_steps=5)


def manual_loop(net, opt, train_iter, test_iter, epochs):
    """The protocol as the schedulefree README gives it, written out: train() before updates, eval() before evaluating."""
    loss = nn.CrossEntropyLoss()
    accs = []
    for _ in range(epochs):
        net.train()
        opt.train()
        for X, y in train_iter:
            opt.zero_grad(set_to_none=True)
            loss(net(X), y).backward()
            opt.step()
        opt.eval()
        accs.append(lrlab.evaluate_accuracy(net, test_iter))
    return accs


def test_detects_schedule_free_optimizers_only():
    net, opt = fresh()
    assert is_schedule_free(opt)
    assert is_schedule_free(schedulefree.AdamWScheduleFree(net.parameters(), lr=1e-3))
    assert not is_schedule_free(torch.optim.SGD(net.parameters(), lr=0.1))
    assert not is_schedule_free(torch.optim.Adam(net.parameters(), lr=0.1))


def test_train_follows_the_protocol_exactly():
    net, opt = fresh()
    expected = manual_loop(net, opt, *loaders(), 3)
    net, opt = fresh()
    h = lrlab.train(net, *loaders(), 3, nn.CrossEntropyLoss(), opt, "cpu", live=False, channels_last=False)
    assert h.test_acc == expected


def test_the_net_keeps_the_averaged_weights_after_training():
    net, opt = fresh()
    train_iter, test_iter = loaders()
    h = lrlab.train(net, train_iter, test_iter, 2, nn.CrossEntropyLoss(), opt, "cpu", live=False,
                    channels_last=False)
    assert opt.param_groups[0]["train_mode"] is False
    assert lrlab.evaluate_accuracy(net, test_iter) == h.test_acc[-1]
    x = [p.detach().clone() for p in net.parameters()]
    opt.train()  # the point where gradients are taken differs from the average
    assert any(not torch.equal(a, p) for a, p in zip(x, net.parameters()))
    opt.eval()
    for a, p in zip(x, net.parameters()):
        torch.testing.assert_close(a, p)


def test_step_without_train_mode_is_what_the_protocol_prevents():
    net, opt = fresh()
    net(torch.zeros(1, 1, 28, 28)).sum().backward()
    with pytest.raises(Exception, match="train mode"):
        opt.step()


def test_a_schedule_with_a_schedule_free_optimizer_warns():
    net, opt = fresh()
    with pytest.warns(UserWarning, match="schedule-free"):
        lrlab.train(net, *loaders(), 1, nn.CrossEntropyLoss(), opt, "cpu", lrlab.ConstantScheduler(0.5),
                    live=False)
    net, opt = fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lrlab.train(net, *loaders(), 1, nn.CrossEntropyLoss(), opt, "cpu", live=False)
