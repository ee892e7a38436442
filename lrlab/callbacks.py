"""Callbacks of :func:`lrlab.train`: what happens around the loop without changing it.

A callback is any object with some of these methods; :func:`lrlab.train` calls each one that exists,
in the order the callbacks were given, with the :class:`TrainState` of the run:

=====================  ========================================================================
method                 called
=====================  ========================================================================
``on_train_begin``     once, before the first epoch (after a resumed run's state is in place)
``on_epoch_begin``     before each epoch's first update (the epoch's rate is already set)
``on_update_end``      after each update (``optimizer.step()``, and a per-update torch scheduler's step)
``on_evaluate_begin``  after each epoch's last update, before its evaluation (which uses ``state.eval_net``)
``on_epoch_end``       after each epoch's evaluation and scheduler step: ``state.history`` holds the epoch
``on_train_end``       once, after the last epoch (or the one that stopped training)
=====================  ========================================================================

A callback stops training after the current epoch by setting ``state.stop`` to a reason.

Here: :class:`PrintProgress` (a line per epoch), :class:`LivePlot` (a figure redrawn in place in a
notebook; matplotlib is imported only when one is made), :func:`progress` (what ``train(live=...)`` shows),
:class:`RecordWeightNorm`, :class:`StopAfter`, and :class:`Checkpoint` (save after every epoch and
resume exactly; a damaged file is refused with :class:`CheckpointError`, never loaded unsafely).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from .history import History

__all__ = ["TrainState", "Callback", "PrintProgress", "LivePlot", "progress", "in_notebook", "RecordWeightNorm", "StopAfter",
           "Checkpoint", "CheckpointError", "weight_norm"]

HOOKS = ("on_train_begin", "on_epoch_begin", "on_update_end", "on_evaluate_begin", "on_epoch_end", "on_train_end")


@dataclass
class TrainState:
    """What a callback sees: the run's objects, where it stands, and ``stop`` to end it after this epoch.

    ``eval_net``: the net that the validation and test sets are evaluated on, when it is not ``net`` (a
    weight average, :class:`lrlab.averaging.WeightAverage`, sets it)."""

    net: torch.nn.Module
    optimizer: Any
    scheduler: Any
    train_iter: Any
    history: Any
    num_epochs: int
    epoch: int = 0
    update: int = 0
    stop: Optional[str] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    eval_net: Optional[torch.nn.Module] = None


class Callback:
    """A base class with every hook doing nothing (subclass it, or write any object with some of the hooks)."""

    def on_train_begin(self, state: TrainState) -> None:
        pass

    def on_epoch_begin(self, state: TrainState) -> None:
        pass

    def on_update_end(self, state: TrainState) -> None:
        pass

    def on_evaluate_begin(self, state: TrainState) -> None:
        pass

    def on_epoch_end(self, state: TrainState) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass


# --------------------------------------------------------------------------- progress


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook, nbval, jupyter-book execution); False in a script."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(shell, "config", {})


def epoch_summary(history, num_epochs: int) -> str:
    """One line on the history's last epoch: ``epoch 3/30  lr 0.3  train loss ...``."""
    t = len(history) - 1
    width = len(str(num_epochs))
    return (f"epoch {t + 1 + getattr(history, 'start_epoch', 0):>{width}}/{num_epochs}  lr {history.lr[t]:.4g}  "
            f"train loss {history.train_loss[t]:.4f}  train acc {history.train_acc[t]:.3f}  "
            f"test loss {history.test_loss[t]:.4f}  test acc {history.test_acc[t]:.3f}  "
            f"{history.seconds[t]:.2f} s")


class PrintProgress(Callback):
    """One line per epoch on stdout (scripts, and ``train(live="print")``)."""

    def on_epoch_end(self, state: TrainState) -> None:
        print(epoch_summary(state.history, state.num_epochs), flush=True)

    def on_train_end(self, state: TrainState) -> None:
        if state.history.stopped:
            print(f"stopped: {state.history.stopped}", flush=True)


def progress(live: Any, num_epochs: int, *, redraw_seconds: float = 0.5) -> Optional[Callback]:
    """The progress callback for ``train(live=...)``, or None for silence.

    ``None``/``True``: a live figure in a notebook (:class:`LivePlot`, see :func:`in_notebook`),
    else a printed line per epoch; ``"notebook"``: always the figure; ``"print"``: always lines; ``False``:
    nothing.
    """
    if live is False:
        return None
    if live is None or live is True:
        live = "notebook" if in_notebook() else "print"
    if live == "notebook":
        return LivePlot(num_epochs, redraw_seconds=redraw_seconds)
    if live == "print":
        return PrintProgress()
    raise ValueError(f"live must be None (auto), True, False, 'notebook' or 'print'; got live={live!r}")


class LivePlot(Callback):
    """A figure of loss, train/test accuracy and (twin axis) learning rate, redrawn in place in a notebook.

    Shown with ``IPython.display.display(..., display_id=True)`` and updated through the display
    handle, so it replaces itself (also under nbval and jupyter-book execution, where the final image
    is what remains). Redraws are throttled to one per ``redraw_seconds`` plus the final epoch; a
    progress line (a text bar and the last epoch's metrics) is updated every epoch.
    """

    def __init__(self, num_epochs: int, *, redraw_seconds: float = 0.5, figsize=(5.0, 3.0)):
        from matplotlib.figure import Figure

        self.num_epochs = num_epochs
        self.redraw_seconds = redraw_seconds
        self.fig = Figure(figsize=figsize, dpi=90)
        ax = self.fig.add_subplot(1, 1, 1)
        ax_lr = ax.twinx()
        self.lines = {
            "train_loss": ax.plot([], [], "-", color="C0", label="train loss")[0],
            "train_acc": ax.plot([], [], "--", color="C1", label="train acc")[0],
            "test_acc": ax.plot([], [], "-.", color="C2", label="test acc")[0],
            "lr": ax_lr.plot([], [], ":", color="C3", drawstyle="steps-post", label="learning rate")[0],
        }
        ax.set_xlabel("epoch")
        ax.set_xlim(0, max(num_epochs, 1))
        ax.set_ylabel("loss / accuracy")
        ax_lr.set_ylabel("learning rate", color="C3")
        ax.grid(True, alpha=0.3)
        ax.legend(handles=list(self.lines.values()), loc="upper right", fontsize="small")
        self.ax, self.ax_lr = ax, ax_lr
        self._text_handle = None
        self._fig_handle = None
        self._last_draw = -math.inf
        self._drawn_epochs = -1

    def _png(self):
        from IPython.display import Image

        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", bbox_inches="tight")
        return Image(data=buf.getvalue(), format="png")

    def _text(self, history):
        from IPython.display import Pretty

        done = getattr(history, "start_epoch", 0) + len(history)
        width = 20
        filled = round(width * done / max(self.num_epochs, 1))
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] " + epoch_summary(history, self.num_epochs)
        if history.stopped:
            line += f"\nstopped: {history.stopped}"
        return Pretty(line)

    def _redraw(self, history):
        n, start = len(history), getattr(history, "start_epoch", 0)
        x_end = start + np.arange(1, n + 1)  # metrics are measured at the end of epoch t, i.e. at x = t + 1
        for key in ("train_loss", "train_acc", "test_acc"):
            self.lines[key].set_data(x_end, np.asarray(getattr(history, key), dtype=float))
        lr = np.asarray(history.lr, dtype=float)
        self.lines["lr"].set_data(start + np.arange(n + 1), np.append(lr, lr[-1]))  # rate of epoch t over [t, t+1)
        for axis in (self.ax, self.ax_lr):
            axis.relim()
            axis.autoscale_view(scalex=False)
        self.ax.set_xlim(0, max(self.num_epochs, start + n, 1))
        image = self._png()
        if self._fig_handle is None:
            from IPython.display import display

            self._fig_handle = display(image, display_id=True)
        else:
            self._fig_handle.update(image)
        self._last_draw = time.perf_counter()
        self._drawn_epochs = n

    def update(self, history, final: bool = False) -> None:
        from IPython.display import display

        if not len(history):
            return
        text = self._text(history)
        if self._text_handle is None:
            self._text_handle = display(text, display_id=True)
        else:
            self._text_handle.update(text)
        if final or time.perf_counter() - self._last_draw >= self.redraw_seconds:
            self._redraw(history)

    def close(self, history) -> None:
        if len(history) and self._drawn_epochs != len(history):
            self._redraw(history)
            self._text_handle.update(self._text(history))

    def on_epoch_end(self, state: TrainState) -> None:
        self.update(state.history, final=state.epoch == state.num_epochs - 1 or state.history.stopped is not None)

    def on_train_end(self, state: TrainState) -> None:
        self.close(state.history)


# --------------------------------------------------------------------------- measuring and stopping


def weight_norm(net: torch.nn.Module) -> float:
    """Euclidean norm of all parameters together (float64): the results tables' ``weight_norm``."""
    with torch.no_grad():
        return math.sqrt(sum(float(p.double().pow(2).sum()) for p in net.parameters()))


class RecordWeightNorm(Callback):
    """After every epoch, the norm of all the net's parameters into ``history.extra["weight_norm"]``."""

    def on_epoch_end(self, state: TrainState) -> None:
        state.history.extra.setdefault("weight_norm", []).append(weight_norm(state.net))


class StopAfter(Callback):
    """Stop once ``epochs`` epochs are done in total (counting those before a resume), as a stopped run would."""

    def __init__(self, epochs: int):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"StopAfter(epochs): epochs must be an int >= 0; got {epochs!r}")
        self.epochs = epochs

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch + 1 >= self.epochs:
            state.stop = f"stopped after epoch {state.epoch + 1} by StopAfter({self.epochs})"


# --------------------------------------------------------------------------- checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from (damaged, not a checkpoint, another run's); the message says why."""


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace``: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Checkpoint(Callback):
    """Save the run after every epoch to ``path``; :meth:`restore` puts a new run back where it stopped.

    Saved (atomically): the epoch and update counts, the net, the optimizer, a torch scheduler's state
    (lrlab schedules are pure: nothing to save), the loader's shuffling state (``state_dict()`` where it
    has one), torch's random state, the history so far, ``config`` (what a resumed run must match) and
    ``extra()`` (anything else the caller wants back, e.g. wall time). Restored in the same objects, the
    run continues with the same numbers as an uninterrupted one.

    ``stateful``: callbacks with a state of their own (``state_dict()`` / ``load_state_dict()``, e.g. a
    :class:`lrlab.averaging.WeightAverage`), by name: saved with the run and restored by :meth:`restore`.
    ``write``: False on the processes that must not write (data-parallel ranks other than 0);
    ``barrier``: called after each save (so no process reads a checkpoint before it is written).
    The file is read with ``torch.load(weights_only=True)``; a file that is damaged (an interrupted
    copy, a full disk) or not a checkpoint raises :class:`CheckpointError` naming it and the fix.
    """

    def __init__(self, path, *, config: Optional[dict] = None, extra: Optional[Callable[[], dict]] = None,
                 write: bool = True, barrier: Optional[Callable[[], None]] = None, stateful: Optional[dict] = None):
        self.path = Path(path)
        self.stateful = {} if stateful is None else dict(stateful)
        self.config = {} if config is None else dict(config)
        self.extra = extra
        self.write = write
        self.barrier = barrier

    def on_epoch_end(self, state: TrainState) -> None:
        if self.write:
            scheduler = state.scheduler
            net = state.net.module if isinstance(state.net, torch.nn.parallel.DistributedDataParallel) else state.net
            save_atomic({
                "config": self.config, "epoch": state.epoch + 1, "update": state.update,
                "net": net.state_dict(), "optimizer": state.optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
                else {},
                "loader": state.train_iter.state_dict() if hasattr(state.train_iter, "state_dict") else {},
                "rng": _rng_state(state.device), "history": state.history.state_dict(),
                "extra": self.extra() if self.extra is not None else {},
                "stateful": {name: obj.state_dict() for name, obj in self.stateful.items()}}, self.path)
        if self.barrier is not None:
            self.barrier()

    def read(self) -> Optional[dict]:
        """The saved state, checked; None where there is no file."""
        if not self.path.exists():
            return None
        fix = "delete it to start that run over"
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{self.path} is damaged or not an lrlab checkpoint ({first[:200]}); {fix}") from None
        if not isinstance(state, dict) or not {"config", "epoch", "net", "optimizer", "history"} <= set(state):
            raise CheckpointError(f"{self.path} is not an lrlab checkpoint (keys missing); {fix}")
        if state["config"] != self.config:
            raise CheckpointError(f"{self.path} was saved for another configuration ({state['config']}, now "
                                  f"{self.config}); {fix}")
        return state

    def restore(self, net, optimizer, scheduler=None, train_iter=None, device=None):
        """Load the saved run into these objects: ``(start_epoch, history, extra)``, or ``(0, None, {})``
        without a file. Pass ``start_epoch`` and ``history`` to :func:`lrlab.train` to continue."""
        state = self.read()
        if state is None:
            return 0, None, {}
        device = torch.device("cpu") if device is None else torch.device(device)
        try:
            net.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            if isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
                scheduler.load_state_dict(state["scheduler"])
            if train_iter is not None and hasattr(train_iter, "load_state_dict"):
                train_iter.load_state_dict(state["loader"])
            saved = state.get("stateful", {})
            for name, obj in self.stateful.items():
                if name not in saved:
                    raise KeyError(f"no saved state for {name!r}")
                obj.load_state_dict(saved[name])
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(f"{self.path} does not fit this run ({str(err).splitlines()[0][:200]}); "
                                  f"delete it to start that run over") from None
        _set_rng_state(state["rng"], device)
        return state["epoch"], History.from_state_dict(state["history"]), state.get("extra", {})

    def remove(self) -> None:
        """Delete the file (a finished run needs it no more)."""
        self.path.unlink(missing_ok=True)
