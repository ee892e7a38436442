"""The code of the three tutorials the course follows, as published: the reference chapters 6 to 8 correct.

Like :mod:`lrlab.sources.d2l_section` for d2l, this module keeps what the tutorials really print apart from
lrlab's own code, so the book can run it and show where it goes wrong. The tutorials are blog posts;
their code lost its line breaks and indentation when it was copied, which are restored here, and
their Chinese comments are dropped. Nothing else is changed unless a comment says so.

MNIST tutorial, StepLR / CosineAnnealingLR (chapter 8)
    Its ``ImprovedCNN`` is :class:`lrlab.ImprovedCNN` (layer for layer; ``tests/test_models.py``).
    :data:`criterion`, :func:`train` and :func:`test` are its functions; :func:`trace_mnist_lrs`
    (lrlab's) runs its ``train`` cheaply and returns the rate each epoch trained at next to the rate
    it printed.
WarmupMultiFactorScheduler tutorial (chapter 7)
    Its ``SimpleModel`` is :class:`lrlab.SimpleModel`. :data:`WARMUP_SETUP` and
    :data:`WARMUP_TRAINING_LOOP` are its listings as text: they do not run as published (the import
    fails, ``train_loader`` is never defined, and the inputs go to a GPU the model never moves to),
    which chapter 7 shows by running them.
Poly policy tutorial (chapter 6)
    :data:`POLY_HELPER_LISTING` is its helper as printed, a ``SyntaxError`` (the ``def`` line lacks
    its colon); :func:`adjust_learning_rate_poly` is the same function with the colon.
"""

from __future__ import annotations

import contextlib
import io
import re

import torch
from torch import nn

from ..lr_scheduler import RecordingOptimizer

__all__ = [
    "criterion",
    "train",
    "test",
    "trace_mnist_lrs",
    "WARMUP_SETUP",
    "WARMUP_TRAINING_LOOP",
    "POLY_HELPER_LISTING",
    "adjust_learning_rate_poly",
]

# ---------------------------------------------------------------------------------------------
# The MNIST tutorial: "optimise a CNN and add learning-rate decay" (StepLR, CosineAnnealingLR)
# ---------------------------------------------------------------------------------------------

#: The tutorial's loss, a module-level name because its ``test`` reads it as a global.
criterion = nn.CrossEntropyLoss()


def train(model, device, train_loader, optimizer, criterion, epoch, scheduler):
    """The tutorial's ``train``, verbatim but for one thing: ``scheduler`` is a parameter here.

    The tutorial reads ``scheduler`` as a global variable. It steps it at the end of the epoch and
    then prints ``scheduler.get_last_lr()[0]``: the rate of the *next* epoch, not of this one.
    """
    model.train()
    running_loss = 0.0
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if batch_idx % 100 == 99:
            print(f'Epoch {epoch}, Batch {batch_idx + 1}, Loss: {running_loss / 100:.4f}')
            running_loss = 0.0
    scheduler.step()
    print(f'Epoch {epoch}, Learning Rate: {scheduler.get_last_lr()[0]:.6f}')


def test(model, device, test_loader):
    """The tutorial's ``test``, verbatim; lrlab adds the return value ``(test_loss, accuracy)``, what it prints.

    ``test_loss`` adds up ``criterion(...)``, the *mean* loss of each batch, and divides the sum by
    the number of examples: it is the mean loss divided by (about) the batch size, 64.
    """
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += criterion(output, target).item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    accuracy = 100. * correct / len(test_loader.dataset)
    print(f'Test Loss: {test_loss:.4f}, Accuracy: {accuracy:.2f}%')
    return test_loss, accuracy


_PRINTED_LR = re.compile(r"^Epoch (\d+), Learning Rate: ([0-9.]+)$", re.MULTILINE)


def trace_mnist_lrs(make_scheduler, num_epochs: int = 10, lr: float = 0.001):
    """Run the tutorial's :func:`train` for ``num_epochs`` epochs; return ``(trained, printed)`` rates per epoch.

    ``make_scheduler(optimizer)`` builds the scheduler (e.g. ``lambda o: StepLR(o, 5, 0.5)``) on a fresh
    Adam optimizer with rate ``lr``, the tutorial's optimizer. Training is reduced to one tiny batch per
    epoch on a tiny linear net; the loop and the order of its calls are the tutorial's. ``trained[e]``
    is the rate epoch ``e`` (the tutorial's epoch ``e + 1``) trained at; ``printed[e]`` the rate its
    "Learning Rate" line showed after that epoch (six decimals, as printed).
    """
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be an int >= 1, got {num_epochs!r}")
    generator = torch.Generator().manual_seed(0)
    batch = [(torch.randn(8, 4, generator=generator), torch.randint(0, 2, (8,), generator=generator))]
    net = nn.Linear(4, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    scheduler = make_scheduler(optimizer)
    recorder = RecordingOptimizer(optimizer)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for epoch in range(1, num_epochs + 1):
            train(net, torch.device("cpu"), batch, recorder, criterion, epoch, scheduler)
    printed = [float(value) for _, value in _PRINTED_LR.findall(out.getvalue())]
    return recorder.lrs, printed


# ---------------------------------------------------------------------------------------------
# The WarmupMultiFactorScheduler tutorial: training stability with warmup
# ---------------------------------------------------------------------------------------------

#: The tutorial's imports, model, hyperparameters, optimizer and scheduler, as printed (its
#: ``SimpleModel`` class is left out: it is :class:`lrlab.SimpleModel`).
WARMUP_SETUP = """\
from torchvision import utils
import torch
import torch.nn as nn
import torch.optim as optim

model = SimpleModel()

base_lr = 0.01
max_epochs = 100
gamma = 0.1
milestones = [50, 75]
warmup_epochs = 10
warmup_factor = 0.001

criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(model.parameters(), lr=base_lr, momentum=0.9, weight_decay=5e-4)

scheduler = utils.lr_scheduler.WarmupMultiFactorScheduler(optimizer, milestones=milestones, gamma=gamma,
                                                          warmup_factor=warmup_factor, warmup_epochs=warmup_epochs,
                                                          last_epoch=-1)
"""

#: The tutorial's training loop, as printed. It trains only: there is no evaluation on test data.
WARMUP_TRAINING_LOOP = """\
for epoch in range(max_epochs):
    train_loss = 0.0
    correct = 0
    total = 0
    for batch_idx, (inputs, targets) in enumerate(train_loader):
        optimizer.zero_grad()
        inputs, targets = inputs.cuda(), targets.cuda()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        train_loss += loss.item()
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
    scheduler.step()
    print('Epoch: %d | Loss: %.3f | Acc: %.3f%%' % (epoch+1, train_loss/(batch_idx+1), 100.*correct/total))
"""

# ---------------------------------------------------------------------------------------------
# The poly policy tutorial
# ---------------------------------------------------------------------------------------------

#: The tutorial's helper exactly as printed: its ``def`` line has no colon, so Python rejects it.
POLY_HELPER_LISTING = """\
def adjust_learning_rate_poly(optimizer, epoch, num_epochs, base_lr, power)
    lr = base_lr * (1-epoch/num_epochs)**power
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr
    return lr
"""


def adjust_learning_rate_poly(optimizer, epoch, num_epochs, base_lr, power):
    """The tutorial's helper with the missing colon added: ``lr = base_lr * (1 - epoch/num_epochs) ** power``,
    written into every parameter group (the same rate for all of them) and returned."""
    lr = base_lr * (1-epoch/num_epochs)**power
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr
    return lr
