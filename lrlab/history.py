"""The record of a training run: :class:`History`, one entry per epoch (what :func:`lrlab.train` returns)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["History", "METRICS"]

#: The per-epoch lists of a History, in the order its tables show them.
METRICS = ("lr", "momentum", "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc", "seconds")


@dataclass(repr=False)
class History:
    """Per-epoch record of a :func:`train` run; entry ``t`` of every list belongs to epoch ``t``
    (to epoch ``start_epoch + t`` in a resumed run).

    Attributes:
        lr: learning rate of parameter group 0 during epoch ``t`` (with per-update stepping: the rate of
            the epoch's first update; see ``lr_per_update``).
        momentum: the momentum of parameter group 0 in the epoch's last update: SGD's (and schedule-free
            SGD's) ``momentum``, Adam's ``beta1`` (``betas[0]``); NaN for an optimizer with neither.
        train_loss: mean training loss over the epoch's examples (as the net was updated during it).
        train_acc: fraction of the epoch's training examples classified correctly, during training.
        valid_loss: mean loss on ``valid_iter`` after the epoch (NaN without a ``valid_iter``).
        valid_acc: accuracy on ``valid_iter`` after the epoch (NaN without a ``valid_iter``).
        test_loss: mean loss on ``test_iter`` after the epoch (NaN without a ``test_iter``).
        test_acc: accuracy on ``test_iter`` after the epoch (NaN without a ``test_iter``).
        seconds: wall-clock seconds of the epoch, training plus evaluation.
        lr_per_update: with ``step_per="update"``, the rate of every update in order; else empty.
        stopped: None after a full run, else why training stopped early (e.g. a NaN loss).
        step_per: ``"epoch"`` or ``"update"``, as passed to :func:`train`.
        start_epoch: the number of the first recorded epoch (``train(..., start_epoch=k)`` resumes at
            epoch ``k``); entry ``i`` of every list belongs to epoch ``start_epoch + i``.
        extra: per-epoch lists that callbacks record (``"weight_norm"`` by
            :class:`lrlab.callbacks.RecordWeightNorm`), by name.
    """

    lr: list = field(default_factory=list)
    momentum: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    valid_loss: list = field(default_factory=list)
    valid_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    lr_per_update: list = field(default_factory=list)
    stopped: Optional[str] = None
    step_per: str = "epoch"
    start_epoch: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lr)

    @property
    def epochs(self) -> list:
        """Epoch numbers ``start_epoch .. start_epoch + len(self) - 1`` (epoch ``epochs[i]`` trains at ``lr[i]``)."""
        return list(range(self.start_epoch, self.start_epoch + len(self)))

    @property
    def diverged(self) -> bool:
        """True when training stopped on a NaN or infinite loss."""
        return self.stopped is not None and len(self) > 0 and not math.isfinite(self.train_loss[-1])

    def final(self) -> dict:
        """The last epoch's metrics as a dict (``{}`` for an empty history)."""
        if not len(self):
            return {}
        return {name: getattr(self, name)[-1] for name in METRICS}

    def as_dict(self) -> dict:
        """The per-epoch lists as a dict of name -> list (plus ``"epoch"``), for pandas or JSON."""
        out = {"epoch": self.epochs}
        out.update({name: list(getattr(self, name)) for name in METRICS})
        return out

    def to_table(self, digits: int = 4, *, seconds: bool = False) -> str:
        """A plain-text table, one row per epoch (deterministic: no timings unless ``seconds=True``)."""
        valid = ["valid_loss", "valid_acc"] if any(math.isfinite(v) for v in self.valid_loss) else []
        columns = ["lr", "train_loss", "train_acc"] + valid + ["test_loss", "test_acc"] + (["seconds"] if seconds else [])
        header = ["epoch"] + columns
        rows = [[str(e)] + [f"{getattr(self, c)[t]:.{digits}g}" if c == "lr" else f"{getattr(self, c)[t]:.{digits}f}"
                            for c in columns] for t, e in enumerate(self.epochs)]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_table()

    def __repr__(self) -> str:
        if not len(self):
            return "History(0 epochs)"
        last = self.final()
        text = (f"History({len(self)} epochs, lr {self.lr[0]:.4g} -> {self.lr[-1]:.4g}, "
                f"final train loss {last['train_loss']:.4f}, test acc {last['test_acc']:.4f}")
        return text + (", stopped early)" if self.stopped else ")")

    def state_dict(self) -> dict:
        """Everything recorded, as plain lists and numbers (a checkpoint stores it)."""
        out = {name: list(getattr(self, name)) for name in METRICS + ("lr_per_update",)}
        out.update(stopped=self.stopped, step_per=self.step_per, start_epoch=self.start_epoch,
                   extra={k: list(v) for k, v in self.extra.items()})
        return out

    @classmethod
    def from_state_dict(cls, state: dict) -> "History":
        """The History that :meth:`state_dict` describes."""
        return cls(**{k: (dict(v) if k == "extra" else v) for k, v in state.items()})

    def to_frame(self):
        """A pandas DataFrame indexed by epoch (needs pandas, an optional dependency)."""
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - pandas is installed with the course
            raise ImportError("History.to_frame needs pandas: pip install pandas (or use History.to_table())") from err
        data = self.as_dict()
        return pd.DataFrame(data).set_index("epoch")
