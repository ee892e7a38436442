"""Run profiles: one notebook, three budgets, chosen by the environment variable ``LRLAB_PROFILE``.

``full`` (default)
    The sources' exact datasets, batch sizes and epochs (table :data:`FULL` below). Missing data
    are downloaded through torchvision.
``laptop``
    For CPU-only readers: the same data, models, batch sizes and schedules, with fewer epochs
    (:data:`LAPTOP_EPOCHS`); every epoch count a notebook uses (milestones, warmup length, cosine
    length) goes through :meth:`Experiment.epochs`, which scales it by the same ratio.
``smoke``
    Seconds per notebook, for CI and nbval: :data:`SMOKE_EPOCHS` epochs of at most
    :data:`SMOKE_MAX_BATCHES` batches (train and test). Never uses the network: real files when they
    are already on disk, else a deterministic synthetic stand-in of the same shape and class count
    whose classes are learnable (:func:`lrlab.data.synthetic_dataset`).

Scaling rule of :meth:`Experiment.epochs`: ``n -> max(1, round_half_up(n * num_epochs / full_num_epochs))``
for ``n > 0`` and ``0 -> 0``; identity in ``full``. A positive epoch count never becomes 0, so a
warmup or a milestone never disappears; two milestones may merge when a profile has very few epochs.

Usage in a notebook::

    exp = lrlab.course.experiment("d2l")
    print(exp.banner())
    train_iter, test_iter = exp.load_data()
    net = exp.make_model()
    num_epochs = exp.num_epochs
    scheduler = lrlab.MultiFactorScheduler(steps=[exp.epochs(15), exp.epochs(30)], factor=0.5, base_lr=0.5)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .. import data as _data
from . import models as _models

__all__ = ["PROFILES", "FULL", "LAPTOP_EPOCHS", "SMOKE_EPOCHS", "SMOKE_MAX_BATCHES", "Experiment",
           "experiment", "get_profile", "default_profile"]

PROFILES = ("full", "laptop", "smoke")


@dataclass(frozen=True)
class Setting:
    """The full-profile settings of one experiment, as its source states them."""

    dataset: str  # key of lrlab.data.DATASETS
    model: str  # class name in lrlab.course.models
    batch_size: int
    num_epochs: int


#: The sources' settings (the ``full`` profile).
FULL = {
    # d2l 'Learning Rate Scheduling' (Zhang et al.): LeNet on Fashion-MNIST, SGD lr 0.3
    "d2l": Setting("fashion_mnist", "LeNet", 256, 30),
    # the WarmupMultiFactorScheduler tutorial: SimpleModel; CIFAR-10 and batch 128 are the course's choices (it names neither)
    "warmup_multifactor": Setting("cifar10", "SimpleModel", 128, 100),
    # the MNIST StepLR / CosineAnnealingLR tutorial: ImprovedCNN on MNIST
    "mnist_cnn": Setting("mnist", "ImprovedCNN", 64, 10),
    # the course's proxy for the warmup tutorial's claim (CIFAR-10 cannot be had on the course's machines):
    # d2l's LeNet on Fashion-MNIST with the tutorial's optimizer and batch 128, its 100 epochs cut to 30
    "warmup_proxy": Setting("fashion_mnist", "LeNet", 128, 30),
}

#: Epochs in the ``laptop`` profile (full data and batch size; a few minutes per run on a laptop CPU).
LAPTOP_EPOCHS = {"d2l": 15, "warmup_multifactor": 20, "mnist_cnn": 5, "warmup_proxy": 15}

#: Epochs and batches per epoch in the ``smoke`` profile.
SMOKE_EPOCHS = 2
SMOKE_MAX_BATCHES = 20
#: Size of the smoke profile's synthetic stand-in, in batches (train, test).
SMOKE_SYNTHETIC_BATCHES = (SMOKE_MAX_BATCHES, 4)


def get_profile() -> str:
    """The run profile: ``$LRLAB_PROFILE`` ("full", "laptop" or "smoke"), else :func:`default_profile`.

    Any other value raises ``ValueError`` naming the variable and the valid values.
    """
    value = os.environ.get("LRLAB_PROFILE", "")
    if value == "":
        return default_profile()
    if value not in PROFILES:
        raise ValueError(f"LRLAB_PROFILE={value!r} is not a profile; set it to one of "
                         f"{', '.join(repr(p) for p in PROFILES)} (unset means 'full', or 'laptop' in a Colab "
                         f"session without a GPU)")
    return value


def default_profile() -> str:
    """The profile when ``LRLAB_PROFILE`` is unset: ``"laptop"`` in a Colab session without a GPU
    (where the full CIFAR-10 runs would take hours), else ``"full"``."""
    if "google.colab" in sys.modules and not torch.cuda.is_available():
        return "laptop"
    return "full"


def _round_half_up(x: float) -> int:
    return int(x + 0.5)


@dataclass(frozen=True)
class Experiment:
    """One chapter's experiment in one profile: data, model, batch size, epochs. Build with :func:`experiment`.

    Fields: ``name``, ``profile``, ``dataset`` (key of :data:`lrlab.data.DATASETS`), ``model`` (class name
    in :mod:`lrlab.course.models`), ``batch_size``, ``num_epochs`` (this profile), ``full_num_epochs`` (the
    source's), ``max_batches`` (per epoch, train and test; None = all).
    """

    name: str
    profile: str
    dataset: str
    model: str
    batch_size: int
    num_epochs: int
    full_num_epochs: int
    max_batches: Optional[int]

    def epochs(self, n: int) -> int:
        """Map an epoch count of the full profile (a milestone, a warmup length, ...) to this profile.

        Identity in ``full``; otherwise ``max(1, round_half_up(n * num_epochs / full_num_epochs))`` for
        ``n > 0`` and 0 for 0. E.g. ``warmup_multifactor`` in ``laptop`` (100 -> 20 epochs): 5 -> 1,
        30 -> 6, 80 -> 16. ``n`` must be an int >= 0.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"Experiment.epochs(n): n must be an epoch count, an int >= 0; got n={n!r}")
        if self.profile == "full" or n == 0:
            return n
        return max(1, _round_half_up(n * self.num_epochs / self.full_num_epochs))

    @property
    def spec(self) -> "_data.DatasetSpec":
        return _data.DATASETS[self.dataset]

    def uses_real_data(self, root=None) -> bool:
        """True when :meth:`load_data` reads the real dataset (always, except smoke without the files)."""
        return self.profile != "smoke" or _data.files_present(self.dataset, root)

    def synthetic_sizes(self) -> Tuple[int, int]:
        """(train, test) sizes of the synthetic stand-in the smoke profile uses when the files are absent."""
        train_batches, test_batches = SMOKE_SYNTHETIC_BATCHES
        return self.batch_size * train_batches, self.batch_size * test_batches

    def load_data(self, root=None, *, seed: Optional[int] = 0, device=None):
        """``(train_iter, test_iter)`` for this experiment, honouring the profile.

        full / laptop: the real dataset (downloaded through torchvision when missing). smoke: the
        real files if present (never downloads), else :func:`lrlab.data.synthetic_dataset`; at most
        ``max_batches`` batches per epoch. ``root``, ``seed`` and ``device`` as in
        :func:`lrlab.load_data_fashion_mnist`.
        """
        if not self.uses_real_data(root):
            n_train, n_test = self.synthetic_sizes()
            return _data.load_synthetic(self.dataset, self.batch_size, n_train, n_test, seed=seed,
                                        max_batches=self.max_batches, device=device)
        loader = {"fashion_mnist": _data.load_data_fashion_mnist, "mnist": _data.load_data_mnist,
                  "cifar10": _data.load_data_cifar10}[self.dataset]
        return loader(self.batch_size, root=root, download=self.profile != "smoke", seed=seed,
                      max_batches=self.max_batches, device=device)

    def make_model(self, **kwargs) -> torch.nn.Module:
        """A freshly initialised instance of this experiment's model (keyword arguments go to its class)."""
        return getattr(_models, self.model)(**kwargs)

    def banner(self, root=None) -> str:
        """One line: the profile, the data (real files or synthetic stand-in, sizes, normalisation), the epochs and batches."""
        spec = self.spec
        shape = "x".join(map(str, spec.image_shape))
        if self.uses_real_data(root):
            n_train, n_test = spec.num_train, spec.num_test
            data = f"{spec.title} (real files"
        else:
            n_train, n_test = self.synthetic_sizes()
            data = f"synthetic stand-in for {spec.title} (real files not on disk"
        data += f"; {n_train:,} train / {n_test:,} test images, {shape}, {spec.num_classes} classes; {_normalisation(spec)})"
        epochs = f"{self.num_epochs} epochs"
        if self.num_epochs != self.full_num_epochs:
            epochs += f" (full run: {self.full_num_epochs})"
        batches = (f"batch size {self.batch_size}" if self.max_batches is None
                   else f"at most {self.max_batches} batches of {self.batch_size} per epoch")
        return f"lrlab profile '{self.profile}': {self.model} on {data}; {epochs}, {batches}."


def _normalisation(spec) -> str:
    if spec.mean is None:
        return "pixels scaled to [0, 1]"
    stats = lambda values: ", ".join(f"{v:g}" for v in values)  # noqa: E731
    return f"pixels scaled to [0, 1], then normalised with mean ({stats(spec.mean)}) and std ({stats(spec.std)})"


def experiment(name: str, profile: Optional[str] = None) -> Experiment:
    """The :class:`Experiment` ``name`` ("d2l", "warmup_multifactor", "mnist_cnn") in ``profile``.

    ``profile`` defaults to :func:`get_profile` (the ``LRLAB_PROFILE`` environment variable).
    """
    if name not in FULL:
        raise ValueError(f"experiment name={name!r} is not known; use one of {', '.join(map(repr, FULL))}")
    if profile is None:
        profile = get_profile()
    elif profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not a profile; use one of {', '.join(map(repr, PROFILES))}")
    full = FULL[name]
    num_epochs = {"full": full.num_epochs, "laptop": LAPTOP_EPOCHS[name], "smoke": SMOKE_EPOCHS}[profile]
    return Experiment(
        name=name, profile=profile, dataset=full.dataset, model=full.model, batch_size=full.batch_size,
        num_epochs=num_epochs, full_num_epochs=full.num_epochs,
        max_batches=SMOKE_MAX_BATCHES if profile == "smoke" else None,
    )
