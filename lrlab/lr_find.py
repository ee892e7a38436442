"""The learning-rate range test ("LR finder"): raise the rate update by update, read a good rate off the loss.

:func:`lr_find` trains ``net`` for ``num_iter`` updates while the rate grows from ``start_lr`` to
``end_lr``, records the loss, stops once the loss diverges, and puts everything back as it was (net,
optimizer, random state, loader): training after it is the training without it. Its
:class:`LRFindResult` holds the curve and three suggestion rules ("valley", "steepest", "minimum").
:func:`lr_find_seeds` repeats the test over seeds and :class:`LRFindSpread` says how much each rule's
answer moves from run to run (a single curve's answer is one draw of a noisy quantity).

Conventions, read from the two reference implementations (and where ours differs):

* Ramp. At iteration ``i = 0 .. num_iter-1`` the rate is ``start_lr * (end_lr/start_lr) ** (i/(num_iter-1))``
  ("exp") or ``start_lr + (end_lr - start_lr) * i/(num_iter-1)`` ("linear"): the last update uses
  ``end_lr``. This is torch-lr-finder's (``ExponentialLR`` / ``LinearLR``, ``r = last_epoch/(num_iter-1)``).
  fastai's ``LRFinder`` uses ``i/num_it`` instead, so its last rate falls one step short of ``end_lr``
  (and it runs at least 6 iterations); ours keeps torch-lr-finder's convention.
* Smoothing. Ours: ``avg_i = beta*avg_{i-1} + (1-beta)*loss_i`` from ``avg_{-1} = 0``, reported as
  ``avg_i / (1 - beta**(i+1))`` with ``beta = 1 - smooth_f`` (bias-corrected EMA: geometric weights
  ``beta**(i-k)`` on the losses so far, normalised to sum to 1). fastai's ``AvgSmoothLoss`` is exactly
  this with ``beta = 0.98`` (``smooth_f=0.02``). torch-lr-finder has no correction: it starts at the
  first loss, ``s_0 = loss_0``, ``s_i = smooth_f*loss_i + (1-smooth_f)*s_{i-1}``, which gives the first
  loss all the leftover weight ``beta**i``; the two agree once ``beta**i`` is small. There
  ``smooth_f=0`` switches smoothing off; here ``smooth_f=1`` does (0 is refused).
* Divergence. Stop once the smoothed loss exceeds ``diverge_th`` times the best smoothed loss so far
  (torch-lr-finder: ``diverge_th=5``; fastai: 4) or is not finite; as in both, the iteration that
  triggered the stop is recorded.
* Rules (all on the smoothed curve, after dropping ``skip_start`` first and ``skip_end`` last points and
  everything from the first non-finite value on): see :meth:`LRFindResult.suggestion`.

References: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks" (arXiv:1506.01186,
WACV 2017), section 3.3; fastai ``Learner.lr_find`` and ``SuggestionMethod`` (docs.fast.ai,
callback.schedule); torch-lr-finder by D. Silva (github.com/davidtvs/pytorch-lr-finder),
``LRFinder.range_test`` and ``LRFinder.plot``.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

import numpy as np
import torch

from .device import to_device

__all__ = ["lr_find", "lr_find_seeds", "LRFindResult", "LRFindSpread", "lr_ramp", "smooth_losses", "RULES",
           "MORE_RULES"]

RULES = ("valley", "steepest", "minimum")
#: Rules :meth:`LRFindResult.suggestion` also knows, beyond the three the course measures (:data:`RULES`).
MORE_RULES = ("slide",)


# --------------------------------------------------------------------------- the pieces


def lr_ramp(start_lr: float, end_lr: float, num_iter: int, step_mode: str = "exp") -> np.ndarray:
    """The ``num_iter`` rates of the test, ``start_lr`` first and ``end_lr`` last (formula in the module docstring)."""
    r = np.arange(num_iter, dtype=np.float64) / (num_iter - 1)
    if step_mode == "exp":
        return start_lr * (end_lr / start_lr) ** r
    return start_lr + (end_lr - start_lr) * r


def smooth_losses(losses: Iterable[float], smooth_f: float = 0.05) -> np.ndarray:
    """Bias-corrected exponential moving average: ``avg = beta*avg + (1-beta)*loss``, ``avg / (1 - beta**(i+1))``.

    ``beta = 1 - smooth_f``; ``smooth_f=1`` returns the losses unchanged. :func:`lr_find` smooths with
    the same :class:`_Smoother`, one loss at a time.
    """
    smoother = _Smoother(smooth_f)
    return np.asarray([smoother(value) for value in losses], dtype=np.float64)


class _Smoother:
    """The bias-corrected moving average, fed one loss at a time: ``smoother(loss)`` is the next smoothed value."""

    def __init__(self, smooth_f: float):
        self.beta, self.avg, self.count = 1.0 - smooth_f, 0.0, 0

    def __call__(self, value: float) -> float:
        self.avg = self.beta * self.avg + (1.0 - self.beta) * float(value)
        self.count += 1
        return self.avg / (1.0 - self.beta ** self.count)


def _check(start_lr, end_lr, num_iter, step_mode, smooth_f, diverge_th, optimizer=None, loss=None, check_objs=True):
    def number(name, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"{name} must be a finite number; got {name}={value!r}")

    for name, value in (("start_lr", start_lr), ("end_lr", end_lr), ("smooth_f", smooth_f), ("diverge_th", diverge_th)):
        number(name, value)
    if start_lr <= 0:
        raise ValueError(f"start_lr must be > 0 (the ramp starts there; 1e-7 is usual); got start_lr={start_lr!r}")
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr={start_lr!r} (the ramp goes up); got end_lr={end_lr!r}")
    if isinstance(num_iter, bool) or not isinstance(num_iter, numbers.Integral) or num_iter < 2:
        raise ValueError(f"num_iter must be an int >= 2 (100 is usual); got num_iter={num_iter!r}")
    if step_mode not in ("exp", "linear"):
        raise ValueError(f"step_mode must be 'exp' or 'linear'; got step_mode={step_mode!r}")
    if not 0 < smooth_f <= 1:
        raise ValueError(f"smooth_f must be in (0, 1] (1 = no smoothing; 0.05 is usual); got smooth_f={smooth_f!r}")
    if not diverge_th > 1:
        raise ValueError(f"diverge_th must be > 1 (stop when the loss exceeds diverge_th x its best; 5 is usual); "
                         f"got diverge_th={diverge_th!r}")
    if check_objs:
        if not isinstance(getattr(optimizer, "param_groups", None), list) or not hasattr(optimizer, "state_dict"):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer (with param_groups); "
                            f"got {type(optimizer).__name__}")
        if not callable(loss):
            raise TypeError(f"loss must be callable as loss(net(X), y), e.g. torch.nn.MSELoss(); "
                            f"got {type(loss).__name__}")


def _cycle(train_iter):
    """The batches of ``train_iter``, epoch after epoch (``iter`` again whenever one ends)."""
    while True:
        empty = True
        for batch in train_iter:
            empty = False
            yield batch
        if empty:
            raise ValueError("train_iter gave no batch; pass a loader that can be iterated again, such as "
                             "lrlab.TensorLoader or a DataLoader (a generator is used up after one pass)")


def _mean_loss(net, valid_iter, loss, device) -> float:
    """The mean loss of ``net`` over every example of ``valid_iter``, in eval mode and without gradients."""
    net.eval()
    total, n = 0.0, 0
    try:
        with torch.no_grad():
            for X, y in valid_iter:
                X, y = to_device(X, device), to_device(y, device)
                total += float(loss(net(X), y)) * len(y)
                n += len(y)
    finally:
        net.train()
    if n == 0:
        raise ValueError("valid_iter gave no batch; pass a loader of the validation examples")
    return total / n


def _save_state(net, optimizer, train_iter, device) -> dict:
    params = [p for group in optimizer.param_groups for p in group["params"]] + list(net.parameters())
    state = {
        "net": copy.deepcopy(net.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "grads": {id(p): (p, None if p.grad is None else p.grad.detach().clone()) for p in params},
        "modes": [(m, m.training) for m in net.modules()],
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.device(device).type == "cuda" else None,
        "loader": None,
    }
    if callable(getattr(train_iter, "state_dict", None)) and callable(getattr(train_iter, "load_state_dict", None)):
        state["loader"] = copy.deepcopy(train_iter.state_dict())
    return state


def _restore_state(net, optimizer, train_iter, state: dict) -> None:
    net.load_state_dict(state["net"])  # copies into the existing tensors: the optimizer's references stay valid
    optimizer.load_state_dict(state["optimizer"])
    for p, grad in state["grads"].values():
        p.grad = grad
    for module, training in state["modes"]:
        module.training = training
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if state["loader"] is not None:
        train_iter.load_state_dict(state["loader"])


# --------------------------------------------------------------------------- the test


def lr_find(net, train_iter, loss, optimizer, start_lr=1e-7, end_lr=10, num_iter=100, *,
            step_mode="exp", smooth_f=0.05, diverge_th=5.0, device=None, valid_iter=None,
            accumulation_steps=1) -> "LRFindResult":
    """Run the LR range test on ``net``; return an :class:`LRFindResult`. The net and optimizer are left untouched.

    Iteration ``i`` sets every param group's ``lr`` to ``lr_ramp(...)[i]``, takes the next ``(X, y)`` of
    ``train_iter`` (restarted when exhausted), moves it to ``device`` (None: the device of the net's
    parameters; the net itself is not moved) and makes one update on ``loss(net(X), y)`` in train mode.
    With ``accumulation_steps = k``, one update accumulates the gradients of the next ``k`` batches, each
    loss divided by ``k``, and the loss recorded is the sum of those quotients (the mean of the ``k``
    losses). With ``valid_iter``, the loss recorded after each update is instead the mean loss on all of
    ``valid_iter`` (in eval mode, without gradients: ``sum(loss * len(y)) / examples``), as
    torch-lr-finder's ``val_loader`` does: slower, but a curve of what the rate does to unseen data.
    The raw loss and its smoothed value (:func:`smooth_losses`) are recorded; the test stops after the
    iteration whose smoothed loss is not finite or exceeds ``diverge_th`` times the best so far (that
    iteration is recorded; ``stopped_early`` and ``stop_iteration`` say so). The ratio test assumes
    positive losses, as fastai's and torch-lr-finder's do; while the best loss is <= 0 only non-finite
    losses stop the test.

    Afterwards, also when an exception escapes: the net's ``state_dict`` (bit for bit), its parameters'
    ``.grad``, every module's train/eval mode, the optimizer's ``state_dict`` (momentum buffers, lrs and
    other hyperparameters), torch's CPU random state (and CUDA's when on CUDA) and, when ``train_iter``
    has ``state_dict``/``load_state_dict`` (:class:`lrlab.TensorLoader`), the loader's state are restored
    from deep copies taken before the first update. A one-shot iterator (a generator) is consumed.

    A loss that is not finite at the very first iteration raises ``ValueError`` (the curve would hold
    nothing to suggest from). Ramp, smoothing and stopping conventions: see the module docstring.
    """
    _check(start_lr, end_lr, num_iter, step_mode, smooth_f, diverge_th, optimizer, loss)
    if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, numbers.Integral) \
            or accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be an int >= 1 (batches per update); "
                         f"got accumulation_steps={accumulation_steps!r}")
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"net must be a torch.nn.Module; got {type(net).__name__}")
    if device is None:
        device = next((p.device for p in net.parameters()), torch.device("cpu"))
    device = torch.device(device)
    num_iter, ramp = int(num_iter), lr_ramp(float(start_lr), float(end_lr), int(num_iter), step_mode)
    smoother, best = _Smoother(smooth_f), math.inf
    losses, smoothed, stop = [], [], None
    saved = _save_state(net, optimizer, train_iter, device)
    try:
        net.train()
        batches = _cycle(train_iter)
        for i, lr in enumerate(ramp):
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            optimizer.zero_grad()
            total = None
            for _ in range(accumulation_steps):
                X, y = next(batches)
                X, y = to_device(X, device), to_device(y, device)
                value = loss(net(X), y)
                if accumulation_steps > 1:
                    value = value / accumulation_steps
                value.backward()
                total = value.detach() if total is None else total + value.detach()
            optimizer.step()
            raw = float(total) if valid_iter is None else _mean_loss(net, valid_iter, loss, device)
            if i == 0 and not math.isfinite(raw):
                raise ValueError(f"the loss at the first iteration (lr={lr:.3g}) is {raw}: nothing to suggest from. "
                                 f"Check the data, model and loss, or lower start_lr")
            s = smoother(raw)
            losses.append(raw)
            smoothed.append(s)
            best = min(best, s)
            if not math.isfinite(s) or (best > 0 and s > diverge_th * best):
                stop = i
                break
    finally:
        _restore_state(net, optimizer, train_iter, saved)
    n = len(losses)
    return LRFindResult(ramp[:n].copy(), np.asarray(losses, dtype=np.float64), np.asarray(smoothed, dtype=np.float64),
                        stop is not None, float(start_lr), float(end_lr), num_iter, step_mode, stop)


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class LRFindResult:
    """The curve of one range test: ``lrs``, raw ``losses`` and ``smoothed`` losses (float64, one per iteration run).

    ``stopped_early``: the divergence test fired, at iteration ``stop_iteration`` (recorded, the last
    point); else ``stop_iteration`` is None and all ``num_iter`` iterations ran.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stopped_early: bool
    start_lr: float
    end_lr: float
    num_iter: int
    step_mode: str = "exp"
    stop_iteration: Optional[int] = None

    def __post_init__(self):
        if not len(self.lrs) == len(self.losses) == len(self.smoothed):
            raise ValueError(f"lrs, losses and smoothed must have the same length; got {len(self.lrs)}, "
                             f"{len(self.losses)}, {len(self.smoothed)}")

    def _curve(self, rule: str, skip_start: int, skip_end: int, need: int):
        if skip_start < 0 or skip_end < 0:
            raise ValueError(f"skip_start and skip_end must be >= 0; got {skip_start}, {skip_end}")
        end = len(self.lrs) - skip_end
        lrs, s = self.lrs[skip_start:end], self.smoothed[skip_start:end]
        bad = np.flatnonzero(~np.isfinite(s))
        if bad.size:
            lrs, s = lrs[:bad[0]], s[:bad[0]]
        if len(s) < need:
            raise ValueError(
                f"rule {rule!r} needs at least {need} finite points, but {len(s)} remain of the {len(self.lrs)} "
                f"recorded after skip_start={skip_start}, skip_end={skip_end}; pass smaller skips, more num_iter "
                f"or a larger diverge_th")
        return lrs, s

    def suggestion(self, rule: str = "valley", *, skip_start: Optional[int] = None,
                   skip_end: Optional[int] = None) -> float:
        """The rate ``rule`` reads off the smoothed curve.

        ``"valley"``: fastai's ``valley``, as fastai defines it: the longest strictly decreasing
        (not necessarily contiguous) subsequence of the curve, ending at its first longest end ``e``
        with ``n`` points; the suggestion is the rate at index ``e - n + floor(n/3) + floor(n/6)``,
        i.e. about the middle of that valley. A valley of fewer than 3 points raises ``ValueError``
        (where fastai's index arithmetic would wrap round to the last rate).
        ``"steepest"``: the rate where ``np.gradient`` of the smoothed loss against ``log10(lr)`` is most
        negative (torch-lr-finder's suggestion in ``plot``; it differentiates against the iteration
        index, the same argmin for the "exp" ramp, not for "linear").
        ``"minimum"``: the rate of the lowest smoothed loss, divided by 10 (fastai's ``minimum``).
        ``"slide"``: fastai's ``slide`` with its defaults (``lr_diff=15``, ``thresh=0.005``, ``adjust_value=1``;
        fastai 2.8.12, ``fastai/callback/schedule.py``): with ``g = np.gradient`` of the smoothed loss
        against the index, it compares ``g`` at the last point with ``g`` 15 points earlier and slides both
        one point towards the start while they differ by more than 0.005; the suggestion is the rate at
        the earlier point where it stops (or the first rate, if it never does).

        Skips default to fastai's trimming ``[num_iter//10 : -5]`` for valley, minimum and slide, and to
        torch-lr-finder's plot defaults ``skip_start=10, skip_end=5`` for steepest.
        """
        if rule not in RULES + MORE_RULES:
            raise ValueError(f"rule must be one of {RULES + MORE_RULES}; got rule={rule!r}")
        default_start = 10 if rule == "steepest" else self.num_iter // 10
        skip_start = default_start if skip_start is None else int(skip_start)
        skip_end = 5 if skip_end is None else int(skip_end)
        if rule == "minimum":
            lrs, s = self._curve(rule, skip_start, skip_end, 1)
            return float(lrs[np.argmin(s)] / 10)
        if rule == "steepest":
            lrs, s = self._curve(rule, skip_start, skip_end, 2)
            return float(lrs[np.argmin(np.gradient(s, np.log10(lrs)))])
        if rule == "slide":
            lr_diff, thresh = 15, 0.005
            lrs, s = self._curve(rule, skip_start, skip_end, lr_diff + 1)
            g = np.gradient(s)
            right, left = len(s) - 1, len(s) - 1 - lr_diff
            chosen = lrs[left]
            while left >= 0 and abs(g[right] - g[left]) > thresh:
                chosen = lrs[left]
                right, left = right - 1, left - 1
            return float(chosen)
        lrs, s = self._curve(rule, skip_start, skip_end, 3)
        runs = np.ones(len(s), dtype=int)  # runs[i]: longest strictly decreasing subsequence ending at i
        for i in range(1, len(s)):
            longer = runs[:i][s[:i] > s[i]]
            if longer.size:
                runs[i] = longer.max() + 1
        end = int(np.argmax(runs))
        n = int(runs[end])
        if n < 3:
            raise ValueError(f"rule 'valley' found no decreasing stretch of 3 or more points (longest: {n}); "
                             f"the loss never went down: widen the range (lower start_lr) or run more iterations")
        return float(lrs[end - n + n // 3 + n // 6])

    def suggestions(self) -> Dict[str, float]:
        """``{rule: lr}`` for the three rules, with their default skips."""
        return {rule: self.suggestion(rule) for rule in RULES}

    def _safe(self, rule: str) -> Optional[float]:
        try:
            return self.suggestion(rule)
        except ValueError:
            return None

    def _loss_at(self, lr: float) -> float:
        ok = np.isfinite(self.smoothed)
        return float(np.interp(np.log10(lr), np.log10(self.lrs[ok]), self.smoothed[ok]))

    def plot(self, ax=None, rules: Sequence[str] = RULES, figsize=(5.5, 3.5)):
        """Smoothed loss (and the raw loss, faint) against the rate on a log axis, each rule's suggestion marked.

        A rule with too few points for a suggestion is left out. Returns the Figure (never shown).
        """
        unknown = [rule for rule in rules if rule not in RULES]
        if unknown:
            raise ValueError(f"rules must be among {RULES}; got {unknown}")
        own = ax is None
        if own:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=figsize)
        fig = ax.figure
        ax.plot(self.lrs, self.losses, color="0.6", alpha=0.4, lw=1, label="loss")
        ax.plot(self.lrs, self.smoothed, color="C0", lw=2, label="smoothed loss")
        for k, rule in enumerate(rules):
            lr = self._safe(rule)
            if lr is not None:
                ax.plot([lr], [self._loss_at(lr)], marker="o", ls="none", color=f"C{k + 1}", ms=8,
                        label=f"{rule}: {lr:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        _set_ylim(ax, [self], raw=True)
        ax.set_title("LR range test" + (f" (stopped at iteration {self.stop_iteration})" if self.stopped_early else ""))
        ax.legend(fontsize="small")
        ax.grid(True, which="both", alpha=0.3)
        if own:
            fig.tight_layout()
        return fig

    def to_frame(self):
        """A pandas DataFrame with columns ``iteration``, ``lr``, ``loss``, ``smoothed``."""
        import pandas as pd

        return pd.DataFrame({"iteration": np.arange(len(self.lrs)), "lr": self.lrs, "loss": self.losses,
                             "smoothed": self.smoothed})


def _set_ylim(ax, results, raw=False) -> None:
    """Loss limits without the point that stopped a test: an exploding tail would squash the curve flat."""
    lows, highs = [], []
    for r in results:
        n = len(r.lrs) - 1 if r.stopped_early and len(r.lrs) > 1 else len(r.lrs)
        smoothed, losses = r.smoothed[:n][np.isfinite(r.smoothed[:n])], r.losses[:n][np.isfinite(r.losses[:n])]
        if smoothed.size:
            lows.append(smoothed.min())
            highs.append(smoothed.max())
        if raw and losses.size:  # the raw loss's low end, but not its noisy (or exploding) top
            lows.append(losses.min())
            highs.append(losses[0])
    if lows:
        lo, hi = min(lows), max(highs)
        pad = 0.08 * (hi - lo) or 0.05 * abs(lo) or 1.0
        ax.set_ylim(lo - pad, hi + pad)


# --------------------------------------------------------------------------- spread over seeds


def _reseeded(train_iter, seed: int):
    from .data import TensorLoader

    if isinstance(train_iter, TensorLoader) and train_iter.shuffle:  # as the course's runner builds one per seed
        return TensorLoader(train_iter.X, train_iter.y, train_iter.batch_size, shuffle=True, seed=seed,
                            max_batches=train_iter.max_batches, transform=train_iter.transform)
    return train_iter


def lr_find_seeds(make_net: Callable[[], torch.nn.Module], train_iter, loss, make_optimizer: Callable[[Any], Any],
                  seeds: Sequence[int], **kwargs) -> "LRFindSpread":
    """Run :func:`lr_find` once per seed; return an :class:`LRFindSpread`.

    For each seed: ``torch.manual_seed(seed)``, ``net = make_net()``, ``opt = make_optimizer(net.parameters())``;
    a shuffling :class:`lrlab.TensorLoader` is rebuilt over the same tensors with ``seed=seed`` (as
    :mod:`lrlab.course.runner` does per run; an unshuffled one or any other iterable is used as it is); then
    ``lr_find(net, loader, loss, opt, **kwargs)``. torch's random state is restored afterwards.
    """
    seeds = list(seeds)
    ints = all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in seeds)
    if not seeds or not ints or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds must be a non-empty sequence of distinct ints; got {seeds!r}")
    if not callable(make_net) or not callable(make_optimizer):
        raise TypeError("make_net and make_optimizer must be callables: make_net() -> net, "
                        "make_optimizer(params) -> optimizer")
    defaults = dict(start_lr=1e-7, end_lr=10, num_iter=100, step_mode="exp", smooth_f=0.05, diverge_th=5.0)
    _check(*(kwargs.get(name, value) for name, value in defaults.items()), check_objs=False)
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    results = {}
    try:
        for seed in seeds:
            torch.manual_seed(seed)
            net = make_net()
            results[seed] = lr_find(net, _reseeded(train_iter, seed), loss, make_optimizer(net.parameters()), **kwargs)
    finally:
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    return LRFindSpread(results)


@dataclass(frozen=True, eq=False)
class LRFindSpread:
    """Range tests of the same setup under several seeds: ``results`` maps seed -> :class:`LRFindResult`."""

    results: Dict[int, LRFindResult] = field(default_factory=dict)

    def table(self):
        """One row per (seed, rule): columns ``seed``, ``rule``, ``lr`` (NaN where the rule had too few points)."""
        import pandas as pd

        rows = [{"seed": seed, "rule": rule, "lr": np.nan if (lr := res._safe(rule)) is None else lr}
                for seed, res in self.results.items() for rule in RULES]
        return pd.DataFrame(rows, columns=["seed", "rule", "lr"])

    def summary(self):
        """One row per rule: ``n`` seeds with a suggestion, ``median``, ``min``, ``max`` and ``spread`` = max/min."""
        import pandas as pd

        table, rows = self.table(), []
        for rule in RULES:
            lrs = table.loc[table["rule"] == rule, "lr"].dropna().to_numpy()
            lo, hi = (lrs.min(), lrs.max()) if lrs.size else (np.nan, np.nan)
            rows.append({"rule": rule, "n": lrs.size, "median": np.median(lrs) if lrs.size else np.nan,
                         "min": lo, "max": hi, "spread": hi / lo if lrs.size else np.nan})
        return pd.DataFrame(rows, columns=["rule", "n", "median", "min", "max", "spread"])

    def plot(self, ax=None, figsize=(6.0, 3.8)):
        """The smoothed curves of all seeds on one log axis, each seed's suggestions marked (one marker per rule)."""
        own = ax is None
        if own:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=figsize)
        markers = dict(zip(RULES, "ov^"))
        for k, (seed, res) in enumerate(self.results.items()):
            ax.plot(res.lrs, res.smoothed, color=f"C{k % 10}", lw=1.5, label=f"seed {seed}")
            for rule in RULES:
                lr = res._safe(rule)
                if lr is not None:
                    ax.plot([lr], [res._loss_at(lr)], marker=markers[rule], ls="none", color=f"C{k % 10}", ms=7)
        for rule, marker in markers.items():  # legend entries for the rules, in neutral black
            ax.plot([], [], marker=marker, ls="none", color="k", label=rule)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed loss")
        ax.set_title(f"LR range test over {len(self.results)} seeds")
        ax.legend(fontsize="small")
        _set_ylim(ax, self.results.values())
        ax.grid(True, which="both", alpha=0.3)
        if own:
            ax.figure.tight_layout()
        return ax.figure
