"""Weight averaging as a callback of :func:`lrlab.train`: an exponential moving average or SWA's equal average.

:class:`WeightAverage` keeps a copy of the net whose weights are an average of the trained ones
(torch's :class:`torch.optim.swa_utils.AveragedModel`) and has :func:`lrlab.train` evaluate that copy:

* ``kind="ema"``: after every update (or epoch), ``avg <- decay * avg + (1 - decay) * w``, starting from
  the first weights averaged (``torch.optim.swa_utils.get_ema_multi_avg_fn(decay)``; Polyak and
  Juditsky, 1992; timm's ``ModelEmaV2`` without its warmup);
* ``kind="swa"``: the equal average of the weights after every epoch (or update) from ``start`` on
  (stochastic weight averaging, Izmailov et al., 2018; ``AveragedModel``'s default), usually with
  :class:`lrlab.SWAScheduler`'s rate, which is torch's ``SWALR``.

Training is untouched (the same batches, the same updates: a run with averaging and one without, on the same
seed, have the same training columns); only what is evaluated changes: once the average has begun, the
validation and test metrics of every epoch are the averaged net's. The average is in the callback's
``model``; :class:`lrlab.Checkpoint` saves and restores it (``Checkpoint(..., stateful={"average": avg})``).
Nets with batch normalisation need their statistics recomputed for the averaged weights
(``torch.optim.swa_utils.update_bn``) on a loader of their own, ``bn_loader``: not the training loader,
whose shuffling the run must keep.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
from torch import nn
from torch.optim import swa_utils

from .callbacks import Callback, TrainState

__all__ = ["WeightAverage", "AVERAGES"]

AVERAGES = ("ema", "swa")
_EVERY = ("update", "epoch")


class WeightAverage(Callback):
    """Average the weights of ``net`` while :func:`lrlab.train` trains it, and evaluate the average.

    Args:
        net: the net being trained (its weights are copied now; the copy moves to the run's device).
        kind: ``"ema"`` (exponential moving average with ``decay``) or ``"swa"`` (equal average).
        decay: the EMA's decay in (0, 1) per averaging step (torch's default 0.999: a memory of about
            1 / (1 - decay) = 1,000 steps). Only for ``kind="ema"``.
        start: the first epoch whose weights are averaged (0: from the first update or epoch).
        every: ``"update"`` (average after every update from epoch ``start``) or ``"epoch"`` (after every
            epoch's last update, from epoch ``start``, as torch's SWA recipe does).
        bn_loader: for nets with batch normalisation: a loader of training batches over which
            ``update_bn`` recomputes the averaged net's statistics before each evaluation.
    """

    def __init__(self, net: nn.Module, *, kind: str = "ema", decay: float = 0.999, start: int = 0,
                 every: str = "update", bn_loader: Optional[Iterable] = None):
        if kind not in AVERAGES:
            raise ValueError(f"kind must be one of {AVERAGES}, got kind={kind!r}")
        if every not in _EVERY:
            raise ValueError(f"every must be one of {_EVERY}, got every={every!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an epoch number, an int >= 0; got start={start!r}")
        if kind == "ema" and not (isinstance(decay, (int, float)) and not isinstance(decay, bool) and 0.0 < decay < 1.0):
            raise ValueError(f"decay must be a number in (0, 1) (e.g. 0.999), got decay={decay!r}")
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        if has_bn and bn_loader is None:
            raise ValueError(f"{type(net).__name__} has batch normalisation: its statistics must be recomputed for the "
                             f"averaged weights; pass bn_loader (a loader of training batches other than the one the "
                             f"run trains on)")
        self.kind, self.decay, self.start, self.every = kind, float(decay), start, every
        self.bn_loader = bn_loader if has_bn else None
        avg_fn = swa_utils.get_ema_multi_avg_fn(self.decay) if kind == "ema" else None
        self.model = swa_utils.AveragedModel(net, multi_avg_fn=avg_fn)

    def __repr__(self) -> str:
        decay = f", decay={self.decay:g}" if self.kind == "ema" else ""
        return f"WeightAverage(kind={self.kind!r}{decay}, start={self.start}, every={self.every!r})"

    @property
    def averaged(self) -> int:
        """How many weights have been averaged so far."""
        return int(self.model.n_averaged.item())

    def _average(self, net: nn.Module) -> None:
        with torch.no_grad():
            self.model.update_parameters(net)

    def on_train_begin(self, state: TrainState) -> None:
        self.model.to(state.device)

    def on_update_end(self, state: TrainState) -> None:
        if self.every == "update" and state.epoch >= self.start:
            self._average(state.net)

    def on_evaluate_begin(self, state: TrainState) -> None:
        if self.every == "epoch" and state.epoch >= self.start:
            self._average(state.net)
        if self.averaged:
            if self.bn_loader is not None:
                swa_utils.update_bn(self.bn_loader, self.model, state.device)
            state.eval_net = self.model

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
