"""The training loop: :func:`train` (one loop, extended by callbacks), :func:`evaluate_accuracy` and the :class:`History` they record.

:func:`train` keeps the signature of the ``train`` function of d2l's "Learning Rate Scheduling" section
(Zhang et al., 2023; the published code is in :mod:`lrlab.sources.d2l_section`) and
corrects what the course must not inherit from it:

* a schedule ``t -> lr`` is applied *before* epoch ``t``, so epoch ``t`` trains at ``schedule(t)``
  (d2l applies ``scheduler(epoch)`` after the epoch: every custom schedule runs one epoch late);
* any :class:`torch.optim.lr_scheduler.LRScheduler` is recognised with ``isinstance``, user-defined
  subclasses such as :class:`lrlab.ScheduleLR` included (d2l compares ``__module__`` strings), and can
  be stepped per epoch or per update; ``ReduceLROnPlateau`` receives the loss it watches;
* the net's train/eval mode is restored after evaluation (``d2l.evaluate_accuracy_gpu`` leaves it in
  eval mode);
* a NaN or infinite loss stops training with a message naming the epoch and the rate;
* loss and accuracy are summed on the device, with no per-batch ``.item()``/``float()`` host sync;
* progress is drawn with :class:`lrlab.plot.LivePlot` in a notebook and printed one line per epoch
  in a script (d2l's ``Animator`` prints figure reprs outside a notebook).

What ``History.lr[t]`` means: the learning rate of parameter group 0 during epoch ``t``. With
``step_per="epoch"`` it is constant within the epoch; with ``step_per="update"`` it is the rate of the
epoch's *first* update, and ``History.lr_per_update`` holds every update's rate.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Iterable, Optional, Sequence

import torch
from torch import nn
from torch.optim import lr_scheduler as _torch_sched

from .callbacks import HOOKS, TrainState, progress as _progress
from .device import to_device
from .history import History
from .schedules import checked_rate

__all__ = ["History", "train", "evaluate_accuracy", "is_schedule_free", "group_momentum"]

_STEP_PER = ("epoch", "update")
_PLATEAU_METRICS = ("valid_loss", "train_loss", "test_loss")
# On an accelerator, checking the running loss for NaN costs a host sync: do it every this many updates
# (and at each epoch's end). On the CPU there is nothing to sync, so every update is checked.
_NONFINITE_CHECK_EVERY = 50


# --------------------------------------------------------------------------- helpers


def _model_device(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    for b in net.buffers():
        return b.device
    return torch.device("cpu")


def _wants_channels_last(net: nn.Module, device: torch.device, channels_last) -> bool:
    """Auto: on the CPU, nets with 2-D convolutions (oneDNN runs them faster in NHWC layout)."""
    if channels_last is None:
        return device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in net.modules())
    if not isinstance(channels_last, bool):
        raise ValueError(f"channels_last must be None (auto), True or False; got channels_last={channels_last!r}")
    return channels_last


def _channels_last(X):
    if isinstance(X, torch.Tensor) and X.dim() == 4:
        return X.contiguous(memory_format=torch.channels_last)
    return X


def _batch_size(X) -> int:
    if isinstance(X, (list, tuple)):
        return _batch_size(X[0])
    return X.shape[0]


def _correct(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions as a device tensor: ``d2l.accuracy`` without the host sync."""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return (y_hat.to(y.dtype) == y).sum()


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _xavier_like_d2l(m: nn.Module) -> None:
    # d2l.train_ch6's init_weights, verbatim in behaviour (exact type check, weights only).
    if type(m) == nn.Linear or type(m) == nn.Conv2d:  # noqa: E721
        nn.init.xavier_uniform_(m.weight)


def _scheduler_kind(scheduler, trainer) -> str:
    if scheduler is None:
        return "none"
    if isinstance(scheduler, _torch_sched.ReduceLROnPlateau):
        kind = "plateau"
    elif isinstance(scheduler, _torch_sched.LRScheduler):
        kind = "torch"
    elif callable(scheduler):
        return "callable"
    else:
        raise TypeError(
            f"scheduler must be None, a torch.optim.lr_scheduler.LRScheduler, ReduceLROnPlateau, or a callable "
            f"t -> lr (an lrlab schedule); got {type(scheduler).__name__}"
        )
    if getattr(scheduler, "optimizer", trainer) is not trainer:
        raise ValueError(
            f"scheduler {type(scheduler).__name__} drives a different optimizer than trainer; build it on the "
            f"optimizer you pass as trainer, e.g. {type(scheduler).__name__}(trainer, ...)"
        )
    return kind


def is_schedule_free(optimizer) -> bool:
    """True for a schedule-free optimizer (Defazio et al., 2024; the ``schedulefree`` package): one with
    ``.train()`` / ``.eval()`` methods that swap the net's weights, marked by ``train_mode`` in its groups."""
    groups = getattr(optimizer, "param_groups", None)
    return (callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None))
            and bool(groups) and "train_mode" in groups[0])


def group_momentum(group: dict) -> float:
    """A parameter group's momentum: ``betas[0]`` (Adam, AdamW), else ``momentum`` (SGD, RMSprop, schedule-free
    SGD), else NaN (an optimizer without one)."""
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else math.nan


def _loss_value(l: torch.Tensor):
    """(mean loss to backpropagate, sum over the batch or None if only the mean is known)."""
    if l.dim() == 0:
        return l, None
    return l.mean(), l.sum()


# --------------------------------------------------------------------------- evaluation


def _evaluate(net: nn.Module, data_iter: Iterable, device: torch.device, loss: Optional[Callable] = None,
              reduce: Optional[Callable] = None):
    """(accuracy, mean loss or NaN) of ``net`` on ``data_iter``, restoring the net's mode afterwards.

    ``reduce``: sums a float64 tensor over processes in place (data-parallel evaluation: each process
    evaluates its part, the counts are added before dividing).
    """
    was_training = net.training
    net.eval()
    dtype = _accumulator_dtype(device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=dtype, device=device)
    n = 0
    try:
        with torch.no_grad():
            for X, y in data_iter:
                X, y = to_device(X, device), to_device(y, device)
                y_hat = net(X)
                correct += _correct(y_hat, y)
                size = _batch_size(X)
                if loss is not None:
                    mean, total = _loss_value(loss(y_hat, y))
                    loss_sum += total.to(dtype) if total is not None else mean.to(dtype) * size
                n += size
    finally:
        net.train(was_training)
    correct_count, loss_total, n = _totals(correct, loss_sum, n, reduce)
    if n == 0:
        raise ValueError("the evaluation data is empty: data_iter yielded no (X, y) batch")
    return correct_count / n, (loss_total / n if loss is not None else math.nan)


def _totals(correct: torch.Tensor, loss_sum: torch.Tensor, n: int, reduce: Optional[Callable]):
    """``(correct, loss sum, count)`` as Python numbers, summed over processes by ``reduce`` when given
    (one float64 tensor: the counts are whole numbers, exact in float64)."""
    if reduce is None:
        return correct.item(), loss_sum.item(), n
    totals = torch.stack([correct.to(torch.float64), loss_sum.to(torch.float64),
                          torch.tensor(float(n), dtype=torch.float64, device=loss_sum.device)])
    reduce(totals)
    return int(totals[0].item()), totals[1].item(), int(totals[2].item())


def evaluate_accuracy(net: nn.Module, data_iter: Iterable, device=None) -> float:
    """Fraction of the examples in ``data_iter`` that ``net`` classifies correctly.

    Same value as ``d2l.evaluate_accuracy_gpu`` on the same inputs (argmax over dimension 1 compared
    with the labels, summed over all batches, divided by the number of examples), but the net's
    train/eval mode is restored afterwards and the count stays on the device until the end.
    ``device`` defaults to the device of the net's parameters.
    """
    device = _model_device(net) if device is None else torch.device(device)
    return _evaluate(net, data_iter, device)[0]


# --------------------------------------------------------------------------- training


def _stop_message(value: float, epoch: int, num_epochs: int, lr: float) -> str:
    what = "NaN" if math.isnan(value) else "infinite"
    return (f"the training loss became {what} in epoch {epoch} (of {num_epochs}) at learning rate {lr:g}: "
            f"training stopped; the history holds the epochs before it and this partial epoch "
            f"(try a smaller learning rate or a warmup)")


def train(
    net: nn.Module,
    train_iter: Iterable,
    test_iter: Optional[Iterable],
    num_epochs: int,
    loss: Callable,
    trainer: torch.optim.Optimizer,
    device=None,
    scheduler: Any = None,
    *,
    step_per: str = "epoch",
    plateau_metric: str = "valid_loss",
    live: Any = None,
    init: Any = None,
    redraw_seconds: float = 0.5,
    channels_last: Optional[bool] = None,
    start_epoch: int = 0,
    valid_iter: Optional[Iterable] = None,
    callbacks: Sequence = (),
    history: Optional[History] = None,
    reduce: Optional[Callable[[torch.Tensor], Any]] = None,
) -> History:
    """Train ``net`` for ``num_epochs`` epochs under ``scheduler`` and return the :class:`History`.

    The signature of d2l's section ``train(net, train_iter, test_iter, num_epochs, loss, trainer,
    device, scheduler=None)``, with the schedule applied at the right time.

    Args:
        net: the model; moved to ``device``.
        train_iter, test_iter: any iterables of ``(X, y)`` batches: :class:`lrlab.TensorLoader`, a
            ``torch.utils.data.DataLoader`` (d2l's included), a list. Batches are moved to ``device``
            with ``non_blocking=True``. ``test_iter=None`` skips evaluation (test metrics are NaN).
        num_epochs: number of epochs (an int >= 0).
        loss: e.g. ``nn.CrossEntropyLoss()``; a mean (or per-example) loss over the batch.
        trainer: the optimizer. A schedule-free one (``schedulefree.SGDScheduleFree``, ``AdamWScheduleFree``;
            Defazio et al., 2024) is switched with its own protocol: ``trainer.train()`` before each epoch's
            updates, ``trainer.eval()`` before evaluation, so the validation and test metrics are those of
            the averaged weights, which the net also holds afterwards (and in :mod:`lrlab.course.runner`'s
            checkpoints); the training loss and accuracy, accumulated during the updates, are those of the
            points where the gradients are taken. Passing it a
            ``scheduler`` as well warns. (Nets with BatchNorm need their statistics recomputed for the
            averaged weights; the course's LeNet has none.)
        device: where to train; None: where the net's parameters are.
        scheduler: what sets the learning rate:

            * ``None``: the optimizer's rate throughout.
            * a schedule, i.e. any callable ``t -> lr`` (an lrlab schedule, d2l's classes, a lambda): set
              on every parameter group *before* step ``t``, so epoch ``t`` (or update ``t`` with
              ``step_per="update"``) trains at ``schedule(t)``. ``t`` counts from 0.
            * any ``torch.optim.lr_scheduler.LRScheduler`` (user-defined subclasses too), built on
              ``trainer``: ``scheduler.step()`` after each epoch, or after each update with
              ``step_per="update"``.
            * ``ReduceLROnPlateau``: ``scheduler.step(metric)`` after each epoch, with the epoch's
              validation loss (``plateau_metric="valid_loss"``, the default; needs ``valid_iter``) or
              mean training loss (``"train_loss"``). ``"test_loss"`` is accepted but warns: a rate
              tuned on the test set makes the test accuracy an optimistic estimate.
        step_per: ``"epoch"`` or ``"update"`` (what ``t`` counts, and when torch schedulers step).
        plateau_metric: ``"valid_loss"``, ``"train_loss"`` or ``"test_loss"``, for ``ReduceLROnPlateau``.
        valid_iter: a validation set carved from the training data (:func:`lrlab.validation_split`),
            evaluated after every epoch into ``History.valid_loss`` / ``valid_acc``; what decisions
            during training (``ReduceLROnPlateau``, picking an epoch) should be based on.
        live: None (auto: a live figure and a progress line in a notebook, one printed line per epoch
            in a script), ``"notebook"``, ``"print"``, or False (silent). True means auto.
        init: None (default; keep the net's weights, as the d2l section's ``train`` does), ``"xavier"``
            (``xavier_uniform_`` on every ``nn.Linear``/``nn.Conv2d`` weight, exactly ``d2l.train_ch6``'s
            ``init_weights``), or a function applied with ``net.apply``.
        redraw_seconds: in a notebook, redraw the figure at most this often (and after the last epoch).
        channels_last: store the net's 4-D weights and the 4-D batches in ``torch.channels_last``
            (NHWC) layout. None (default): on the CPU, when the net has ``nn.Conv2d`` layers, where
            oneDNN's convolutions run about 15% faster in that layout (LeNet, 2-core CPU; measured with
            ``make benchmark``). The math is the same; the net's parameters keep that layout afterwards.
        start_epoch: resume at this epoch: train epochs ``start_epoch .. num_epochs - 1``, with a schedule
            evaluated at those epoch numbers (and, per update, at ``start_epoch * len(train_iter)`` on).
            The net, optimizer, torch scheduler and loader must already hold their state at that
            epoch (:mod:`lrlab.course.runner` saves and restores it). Default 0: a fresh run.

        callbacks: objects with any of the hooks ``on_train_begin``, ``on_epoch_begin``, ``on_update_end``,
            ``on_evaluate_begin``, ``on_epoch_end``, ``on_train_end`` (:mod:`lrlab.callbacks`: progress, checkpoints,
            measurements; :mod:`lrlab.averaging`: a weight average, which the evaluation then uses);
            each gets the run's :class:`lrlab.callbacks.TrainState`, and may set its ``stop`` to end the run
            after the epoch. The progress display of ``live`` is one more, run after these.
        history: a History to continue (a resumed run: the one :meth:`lrlab.callbacks.Checkpoint.restore`
            returns, which ends just before ``start_epoch``); the new epochs are appended to it.
        reduce: for data-parallel training (:mod:`lrlab.distributed`): a function that sums a float64
            tensor over the processes in place (``all_reduce``). The epoch's loss, correct count and
            example count, and those of every evaluation, are summed before they are divided, so every
            process records the same history; ``train_iter`` is the process's share of each global batch
            and ``valid_iter`` / ``test_iter`` its part of the evaluation data. A non-finite loss is then
            checked once per epoch (after the sum), so that all processes stop together.

    Returns:
        the :class:`History`. A NaN or infinite training loss stops training at once (checked every
        update on the CPU, every 50 updates on an accelerator): a ``RuntimeWarning`` names the epoch and
        the rate, the partial epoch is recorded (test metrics NaN) and ``History.stopped`` says why.

    Runs seeded with ``torch.manual_seed`` (and a seeded loader) repeat exactly on the CPU.
    """
    # ---- check everything before touching the net
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 0:
        raise ValueError(f"num_epochs must be an int >= 0, got num_epochs={num_epochs!r}")
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or not 0 <= start_epoch <= num_epochs:
        raise ValueError(f"start_epoch must be an int in 0..num_epochs ({num_epochs}), got start_epoch={start_epoch!r}")
    if step_per not in _STEP_PER:
        raise ValueError(f"step_per must be one of {_STEP_PER}, got step_per={step_per!r}")
    if plateau_metric not in _PLATEAU_METRICS:
        raise ValueError(f"plateau_metric must be one of {_PLATEAU_METRICS}, got plateau_metric={plateau_metric!r}")
    if not hasattr(trainer, "param_groups") or not hasattr(trainer, "step"):
        raise TypeError(f"trainer must be a torch optimizer (e.g. torch.optim.SGD(net.parameters(), lr=0.1)), "
                        f"got {type(trainer).__name__}")
    kind = _scheduler_kind(scheduler, trainer)
    schedule_free = is_schedule_free(trainer)
    if schedule_free and kind != "none":
        warnings.warn(f"{type(trainer).__name__} is schedule-free: it needs no schedule (its warmup is the optimizer's "
                      f"warmup_steps), yet a scheduler was passed ({type(scheduler).__name__}); it will set the rate the "
                      f"optimizer's averaging sees. Pass scheduler=None unless that is what you study",
                      UserWarning, stacklevel=2)
    if kind == "plateau":
        if step_per == "update":
            raise ValueError("ReduceLROnPlateau watches an epoch metric: use step_per='epoch' with it")
        if plateau_metric == "valid_loss" and valid_iter is None:
            raise ValueError("ReduceLROnPlateau decides on the validation loss by default (plateau_metric='valid_loss'): "
                             "pass valid_iter (carve one with lrlab.validation_split(train_iter, ...)) or use "
                             "plateau_metric='train_loss'")
        if plateau_metric == "test_loss":
            if test_iter is None:
                raise ValueError("plateau_metric='test_loss' needs a test_iter; pass valid_iter and use 'valid_loss'")
            warnings.warn("ReduceLROnPlateau steered by the test loss: the test accuracy is then no longer an unbiased "
                          "estimate; use a validation split (valid_iter, plateau_metric='valid_loss')",
                          UserWarning, stacklevel=2)
    if init is None:
        init_fn = None
    elif init == "xavier":
        init_fn = _xavier_like_d2l
    elif callable(init):
        init_fn = init
    else:
        raise ValueError(f"init must be None, 'xavier' or a function for net.apply; got init={init!r}")
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        raise TypeError(f"callbacks must be a list of callback objects, got {type(callbacks).__name__}")
    if history is None:
        history = History(step_per=step_per, start_epoch=start_epoch)
    elif not isinstance(history, History) or history.start_epoch + len(history) != start_epoch:
        raise ValueError(f"history must be the History of the epochs before start_epoch={start_epoch} (a resumed run's); "
                         f"got {history!r}")
    if reduce is not None and not callable(reduce):
        raise TypeError(f"reduce must be a function that sums a tensor over processes in place; got {reduce!r}")
    shown = _progress(live, num_epochs, redraw_seconds=redraw_seconds)  # checks `live`
    hooks = {name: [getattr(c, name) for c in [*callbacks, *([shown] if shown else [])] if hasattr(c, name)]
             for name in HOOKS}
    device = _model_device(net) if device is None else torch.device(device)
    nhwc = _wants_channels_last(net, device, channels_last)
    if init_fn is not None:
        net.apply(init_fn)
    net.to(device)
    if nhwc:
        net.to(memory_format=torch.channels_last)

    dtype = _accumulator_dtype(device)
    # NaN checks: every update on the CPU (nothing to sync), every 50 on an accelerator; once per epoch, after
    # the sum, when several processes train (a process stopping alone would leave the others waiting)
    check_every = None if reduce is not None else 1 if device.type == "cpu" else _NONFINITE_CHECK_EVERY
    groups = trainer.param_groups
    per_update = step_per == "update"
    update = start_epoch * len(train_iter) if start_epoch and per_update else 0  # updates done so far
    state = TrainState(net, trainer, scheduler, train_iter, history, num_epochs, start_epoch, update, device=device)

    def set_lr(value, where):
        lr = checked_rate(value, where)
        for group in groups:
            group["lr"] = lr

    def call(name):
        for hook in hooks[name]:
            hook(state)

    call("on_train_begin")
    for epoch in range(start_epoch, num_epochs):
        state.epoch = epoch
        start = time.perf_counter()
        if kind == "callable" and not per_update:
            set_lr(scheduler(epoch), f"scheduler({epoch})")
        call("on_epoch_begin")
        epoch_lr = epoch_momentum = None
        loss_sum = torch.zeros((), dtype=dtype, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        n = 0
        bad = None  # the non-finite loss value, when one appears
        net.train()
        if schedule_free:
            trainer.train()  # the net holds the point where gradients are taken (y)
        for i, (X, y) in enumerate(train_iter):
            if kind == "callable" and per_update:
                set_lr(scheduler(update), f"scheduler({update})")
            if per_update:
                history.lr_per_update.append(float(groups[0]["lr"]))
            if epoch_lr is None:
                epoch_lr = float(groups[0]["lr"])
            X, y = to_device(X, device), to_device(y, device)
            if nhwc:
                X = _channels_last(X)
            y_hat = net(X)
            mean, total = _loss_value(loss(y_hat, y))
            trainer.zero_grad(set_to_none=True)
            mean.backward()
            epoch_momentum = group_momentum(groups[0])  # what this update uses (a scheduler may change it next)
            trainer.step()
            update += 1
            if per_update and kind == "torch":
                scheduler.step()
            size = _batch_size(X)
            with torch.no_grad():
                loss_sum += total.detach().to(dtype) if total is not None else mean.detach().to(dtype) * size
                correct += _correct(y_hat, y)
            n += size
            state.update = update
            call("on_update_end")
            if check_every and (i + 1) % check_every == 0 and not torch.isfinite(loss_sum):
                bad = loss_sum.item()
                break
        if n == 0:
            raise ValueError(f"train_iter yielded no (X, y) batch in epoch {epoch}; it must yield at least one "
                             f"(a generator is exhausted after one pass: pass a list or a loader)")
        correct_count, loss_total, n = _totals(correct, loss_sum, n, reduce)  # the epoch's one host sync
        if schedule_free:
            trainer.eval()  # the averaged weights (x): evaluated, checkpointed, and left in the net at the end
        if bad is None and not math.isfinite(loss_total):
            bad = loss_total
        history.lr.append(epoch_lr)
        history.momentum.append(math.nan if epoch_momentum is None else epoch_momentum)
        history.train_loss.append(loss_total / n if bad is None else bad)
        history.train_acc.append(correct_count / n)
        if bad is not None:
            for name in ("valid_loss", "valid_acc", "test_loss", "test_acc"):
                getattr(history, name).append(math.nan)
            history.seconds.append(time.perf_counter() - start)
            history.stopped = _stop_message(bad, epoch, num_epochs, epoch_lr)
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn(history.stopped, RuntimeWarning, stacklevel=2)
            call("on_epoch_end")
            break
        call("on_evaluate_begin")
        judged = net if state.eval_net is None else state.eval_net  # a weight average, when a callback keeps one
        valid_acc, valid_loss = (_evaluate(judged, valid_iter, device, loss, reduce) if valid_iter is not None
                                 else (math.nan,) * 2)
        test_acc, test_loss = (_evaluate(judged, test_iter, device, loss, reduce) if test_iter is not None
                               else (math.nan,) * 2)
        history.valid_acc.append(valid_acc)
        history.valid_loss.append(valid_loss)
        history.test_acc.append(test_acc)
        history.test_loss.append(test_loss)
        history.seconds.append(time.perf_counter() - start)
        if kind == "torch" and not per_update:
            scheduler.step()
        elif kind == "plateau":
            scheduler.step({"valid_loss": valid_loss, "test_loss": test_loss}.get(plateau_metric, history.train_loss[-1]))
        call("on_epoch_end")
        if state.stop is not None:
            break
    call("on_train_end")
    return history
