"""Chapter 2's plain training loop, run from the notebook's own cell: lrlab.train gives the same history."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

import lrlab
from lrlab import course  # noqa: E402 (the course's models)
from lrlab import data as lrdata
from test_data import one_thread  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
CHAPTER = Path(__file__).resolve().parents[1] / "book" / "02_why_schedule.ipynb"


def plain_loop():
    cell = next(c for c in json.loads(CHAPTER.read_text())["cells"] if c.get("id") == "plain-loop")
    namespace = {"torch": torch}
    exec("".join(cell["source"]), namespace)
    return namespace["train_plainly"]


def loaders():
    tensors = lrdata.synthetic_dataset("fashion_mnist", 640, 200, seed=5)
    return lrdata.make_loaders(*tensors, 64, lrdata.PixelTransform(), seed=3, device="cpu")


@pytest.mark.parametrize("make_scheduler", [
    lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 1.0),          # the chapter's
    lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),       # a rate that changes
])
def test_lrlab_train_is_the_chapters_plain_loop(capsys, make_scheduler):
    train_plainly = plain_loop()
    loss = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    net = course.LeNet()
    trainer = torch.optim.SGD(net.parameters(), lr=0.3)
    plain = train_plainly(net, *loaders(), 3, loss, trainer, make_scheduler(trainer))
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and printed[0].startswith("epoch 0: lr 0.30, train loss ")
    torch.manual_seed(0)
    net = course.LeNet()
    trainer = torch.optim.SGD(net.parameters(), lr=0.3)
    h = lrlab.train(net, *loaders(), 3, loss, trainer, "cpu", make_scheduler(trainer), live=False,
                    channels_last=False)
    assert [tuple(row) for row in zip(h.lr, h.train_loss, h.train_acc, h.test_acc)] == plain  # exactly
