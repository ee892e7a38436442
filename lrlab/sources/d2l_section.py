"""The PyTorch code of d2l's "Learning Rate Scheduling" section, as published: the reference lrlab corrects.

Source: *Dive into Deep Learning* (Zhang, Lipton, Li, Smola, 2023), section 12.11
"Learning Rate Scheduling", file ``chapter_optimization/lr-scheduler.md`` of
https://github.com/d2l-ai/d2l-en, PyTorch tab (``#@tab pytorch`` and ``#@tab all`` cells).
The d2l sample code is released under the MIT-0 licence ("modified MIT", the ``LICENSE-SAMPLECODE``
file shipped in the ``d2l`` package: use, copy, modify without attribution requirement); the book's
text is CC BY-SA 4.0. We attribute it anyway and keep it apart from lrlab's own code.

THIS MODULE IS THE REFERENCE BEING CORRECTED, NOT LRLAB'S API. The code below is copied verbatim in
behaviour, bugs included, so that the errata chapter and the speed benchmark can run the book's own
code. Only the cells that define things are kept; the cells that download Fashion-MNIST or train for
30 epochs at import time are left out. Known defects, each shown in the errata chapter:

* ``train`` applies a custom schedule *after* epoch ``t`` with ``scheduler(epoch)``, so epoch ``t``
  trains at ``scheduler(t - 1)`` and epoch 0 at the optimizer's initial rate: every custom schedule
  runs one epoch late.
* ``train`` recognises a PyTorch scheduler by ``scheduler.__module__ == lr_scheduler.__name__``: a
  user-defined ``LRScheduler`` subclass (for example ``lrlab.ScheduleLR``) is treated as a callable and
  fails; ``ReduceLROnPlateau`` is stepped without its metric and fails.
* ``train`` does not initialise the weights (unlike ``d2l.train_ch6``, which applies Xavier) and calls
  ``d2l.evaluate_accuracy_gpu``, which leaves the net in eval mode.
* ``d2l.Animator`` calls ``IPython.display`` on every update; outside a notebook it prints figure
  reprs and terminal escape codes (use :func:`animator_disabled`).
* The MultiStepLR cell steps the scheduler 30 times to draw its plot, then trains with that same
  scheduler: training never sees 0.5 or 0.25, only 0.125 (see :func:`trace_lrs`).
* ``FactorScheduler`` is stateful: ``scheduler(0)`` already returns ``base_lr * factor``, and every
  call (a plot, say) advances it, whatever ``num_update`` is passed.
* ``CosineScheduler`` is stateful too: ``self.base_lr`` only exists after a call with
  ``epoch <= max_update`` (a first call beyond it raises ``AttributeError``); with warmup its
  warmup starts at ``warmup_begin_lr=0``, so (one epoch late) epoch 1 trains at rate 0; and
  ``warmup_steps == max_update`` divides by zero.

:func:`trace_lrs`, :func:`published_rates` and :func:`animator_disabled` are lrlab's additions (not
from the book).
"""

import contextlib
import io
import math

import torch
from torch import nn
from torch.optim import lr_scheduler

from d2l import torch as d2l

from ..lr_scheduler import RecordingOptimizer

__all__ = [
    "net_fn",
    "loss",
    "train",
    "get_lr",
    "SquareRootScheduler",
    "FactorScheduler",
    "CosineScheduler",
    "animator_disabled",
    "trace_lrs",
    "RUNS",
    "PRINTED",
    "LABELS",
    "published_rates",
]


# ---------------------------------------------------------------------------------------------
# Verbatim from d2l-en chapter_optimization/lr-scheduler.md, PyTorch tab (MIT-0).
# ---------------------------------------------------------------------------------------------


def net_fn():
    model = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))

    return model


loss = nn.CrossEntropyLoss()


# The code is almost identical to `d2l.train_ch6` defined in the
# lenet section of chapter convolutional neural networks
def train(net, train_iter, test_iter, num_epochs, loss, trainer, device,
          scheduler=None):
    net.to(device)
    animator = d2l.Animator(xlabel='epoch', xlim=[0, num_epochs],
                            legend=['train loss', 'train acc', 'test acc'])

    for epoch in range(num_epochs):
        metric = d2l.Accumulator(3)  # train_loss, train_acc, num_examples
        for i, (X, y) in enumerate(train_iter):
            net.train()
            trainer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
            train_loss = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
            if (i + 1) % 50 == 0:
                animator.add(epoch + i / len(train_iter),
                             (train_loss, train_acc, None))

        test_acc = d2l.evaluate_accuracy_gpu(net, test_iter)
        animator.add(epoch+1, (None, None, test_acc))

        if scheduler:
            if scheduler.__module__ == lr_scheduler.__name__:
                # Using PyTorch In-Built scheduler
                scheduler.step()
            else:
                # Using custom defined scheduler
                for param_group in trainer.param_groups:
                    param_group['lr'] = scheduler(epoch)

    print(f'train loss {train_loss:.3f}, train acc {train_acc:.3f}, '
          f'test acc {test_acc:.3f}')


class SquareRootScheduler:
    def __init__(self, lr=0.1):
        self.lr = lr

    def __call__(self, num_update):
        return self.lr * pow(num_update + 1.0, -0.5)


class FactorScheduler:
    def __init__(self, factor=1, stop_factor_lr=1e-7, base_lr=0.1):
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.base_lr = base_lr

    def __call__(self, num_update):
        self.base_lr = max(self.stop_factor_lr, self.base_lr * self.factor)
        return self.base_lr


# From the MultiStepLR cell: it reads the rate, then steps optimizer and scheduler (to draw a plot).
def get_lr(trainer, scheduler):
    lr = scheduler.get_last_lr()[0]
    trainer.step()
    scheduler.step()
    return lr


class CosineScheduler:
    def __init__(self, max_update, base_lr=0.01, final_lr=0,
               warmup_steps=0, warmup_begin_lr=0):
        self.base_lr_orig = base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.warmup_steps = warmup_steps
        self.warmup_begin_lr = warmup_begin_lr
        self.max_steps = self.max_update - self.warmup_steps

    def get_warmup_lr(self, epoch):
        increase = (self.base_lr_orig - self.warmup_begin_lr) \
                       * float(epoch) / float(self.warmup_steps)
        return self.warmup_begin_lr + increase

    def __call__(self, epoch):
        if epoch < self.warmup_steps:
            return self.get_warmup_lr(epoch)
        if epoch <= self.max_update:
            self.base_lr = self.final_lr + (
                self.base_lr_orig - self.final_lr) * (1 + math.cos(
                math.pi * (epoch - self.warmup_steps) / self.max_steps)) / 2
        return self.base_lr


# ---------------------------------------------------------------------------------------------
# lrlab's additions: run the book's loop cheaply and quietly, and read off the rates it used.
# ---------------------------------------------------------------------------------------------


class _SilentAnimator:
    """Stands in for ``d2l.Animator``: accepts the same calls, draws nothing, prints nothing."""

    def __init__(self, *args, **kwargs):
        self.X, self.Y = None, None

    def add(self, x, y):
        pass


@contextlib.contextmanager
def animator_disabled():
    """Within this block ``d2l.Animator`` (and so the section's :func:`train`) draws nothing.

    d2l's Animator redisplays a figure on every ``add`` call; in a script or a test that means
    figure reprs and escape codes on stdout. The original is restored on exit, even after an error.

    >>> with animator_disabled():          # doctest: +SKIP
    ...     train(net, train_iter, test_iter, 2, loss, trainer, device)
    """
    original = d2l.Animator
    d2l.Animator = _SilentAnimator
    try:
        yield
    finally:
        d2l.Animator = original


def trace_lrs(scheduler, num_epochs, lr=None, *, quiet=True):
    """Run the section's own :func:`train` for ``num_epochs`` and return the rate each epoch trained at.

    ``scheduler`` is what the book passes to ``train``: a custom callable (``SquareRootScheduler``,
    ``CosineScheduler``, any ``t -> lr``), or a torch scheduler already bound to its optimizer
    (``MultiStepLR(trainer, ...)``), in whatever state the reader's earlier cells left it.

    * custom callable: ``lr`` is required; it is the rate the book's cell gives
      ``torch.optim.SGD(net.parameters(), lr)``. A fresh SGD optimizer with that rate is used.
    * torch scheduler: its own optimizer is used (``lr`` must be None); that optimizer's parameters
      get no gradients here, so SGD leaves them untouched, but the scheduler's state advances exactly
      as in the book.

    Training is reduced to one tiny batch per epoch on a tiny linear net on the CPU, with the
    Animator disabled and (``quiet=True``) the final print swallowed; the loop, the scheduler calls
    and their order are the book's. The returned list has one entry per epoch: the optimizer's
    ``param_groups[0]['lr']`` at that epoch's update.

    >>> trace_lrs(SquareRootScheduler(lr=0.1), 3, lr=0.1)   # one epoch late
    [0.1, 0.1, 0.07071067811865477]
    """
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    torch_scheduler = isinstance(scheduler, (lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau))
    if torch_scheduler:
        if lr is not None:
            raise ValueError(
                "lr must be None for a torch scheduler: it already drives its own optimizer "
                "(set the rate when you build that optimizer)"
            )
        optimizer = scheduler.optimizer
    else:
        if lr is None:
            raise ValueError(
                "lr is required for a custom scheduler: pass the rate the book's cell gives "
                "torch.optim.SGD(net.parameters(), lr), e.g. lr=0.1"
            )
    generator = torch.Generator().manual_seed(0)
    net = nn.Linear(4, 2)
    X = torch.randn(8, 4, generator=generator)
    y = torch.randint(0, 2, (8,), generator=generator)
    batches = [(X, y)]
    if not torch_scheduler:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    trainer = RecordingOptimizer(optimizer)
    printed = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with animator_disabled(), printed:
        train(net, batches, batches, num_epochs, nn.CrossEntropyLoss(), trainer,
              torch.device("cpu"), scheduler)
    return trainer.lrs


#: The section's five training runs, in the book's order: name -> what its cells set up.
RUNS = ("constant", "square_root", "multi_step", "cosine", "cosine_warmup")
#: What the Chinese edition printed at the end of each run: (train loss, train acc, test acc). From its
#: executed notebook of section "学习率调度器" (zh.d2l.ai; the course's ``shared/seeds`` copy). One run
#: each, on the rates :func:`published_rates` gives; the section sets no random seed.
PRINTED = {
    "constant": (0.128, 0.951, 0.885),
    "square_root": (0.270, 0.901, 0.876),
    "multi_step": (0.191, 0.928, 0.889),
    "cosine": (0.207, 0.923, 0.892),
    "cosine_warmup": (0.261, 0.904, 0.878),
}
#: How the book names the section's runs.
LABELS = {"constant": "constant 0.3", "square_root": "square root", "multi_step": "multi-step",
          "cosine": "cosine", "cosine_warmup": "cosine + warmup"}
#: The book plots every schedule over ``num_epochs = 30`` steps before training with it.
PLOT_EPOCHS = 30


def published_rates(run, num_epochs=30):
    """The rate each epoch of the section's run ``run`` trained at, replaying its cells in order.

    ``run`` is one of :data:`RUNS`. Each run's cells are replayed as the book has them: the plot cell
    first (``[scheduler(t) for t in range(30)]``, or 30 calls of :func:`get_lr` for ``MultiStepLR``),
    then the train cell, traced with :func:`trace_lrs` for ``num_epochs`` epochs (30 in the book):

    ==============  ==========================================  ===========================
    run             the book's cells                            what training used
    ==============  ==========================================  ===========================
    constant        ``SGD(lr=0.3)``, no scheduler               0.3 throughout
    square_root     ``SquareRootScheduler(lr=0.1)``, SGD 0.1    0.1, then 0.1 (t)^-1/2 one epoch late
    multi_step      SGD 0.5, ``MultiStepLR([15, 30], 0.5)``     0.125 throughout (stepped 30 times)
    cosine          ``CosineScheduler(20, 0.3, 0.01)``, SGD 0.3 the cosine one epoch late
    cosine_warmup   ``CosineScheduler(20, warmup 5, ...)``      0.3, then 0, then the warmup...
    ==============  ==========================================  ===========================

    >>> published_rates("multi_step")[:3]
    [0.125, 0.125, 0.125]
    """
    if run not in RUNS:
        raise ValueError(f"run={run!r} is not one of the section's runs; use one of {', '.join(map(repr, RUNS))}")
    if run == "constant":
        return trace_lrs(None, num_epochs, lr=0.3)
    if run == "multi_step":
        trainer = torch.optim.SGD(net_fn().parameters(), lr=0.5)
        scheduler = lr_scheduler.MultiStepLR(trainer, milestones=[15, 30], gamma=0.5)
        [get_lr(trainer, scheduler) for t in range(PLOT_EPOCHS)]  # the plot cell
        return trace_lrs(scheduler, num_epochs)
    if run == "square_root":
        scheduler, lr = SquareRootScheduler(lr=0.1), 0.1
    elif run == "cosine":
        scheduler, lr = CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01), 0.3
    else:
        scheduler, lr = CosineScheduler(20, warmup_steps=5, base_lr=0.3, final_lr=0.01), 0.3
    [scheduler(t) for t in range(PLOT_EPOCHS)]  # the plot cell
    return trace_lrs(scheduler, num_epochs, lr=lr)
