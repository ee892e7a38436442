"""lrlab: learning-rate schedules for PyTorch, exact and stateless, with the loop, range test and tools around them.

A schedule is a pure function of the step: ``schedule(t)`` is the learning rate used during step
``t``. :class:`ScheduleLR` drives any optimizer by any schedule.

>>> import torch, lrlab
>>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.3)
>>> sched = lrlab.ScheduleLR(opt, lrlab.CosineScheduler(20, base_lr=0.3, final_lr=0.01))

This package is the library. The course built on it is one import away: :mod:`lrlab.course` (its
profiles, datasets, models, studies, results and the book's plumbing) and :mod:`lrlab.sources` (the
code of d2l's section and of the three tutorials, as published, kept to show their errata).
"""

from .schedules import (
    ConstantScheduler,
    CosineScheduler,
    ExponentialScheduler,
    FactorScheduler,
    LinearWarmup,
    MultiFactorScheduler,
    PolyScheduler,
    Schedule,
    SequentialScheduler,
    ProductScheduler,
    SquareRootScheduler,
    StepScheduler,
    WarmupMultiFactorSchedule,
    OneCycleScheduler,
    OneCycleMomentum,
    CosineRestartsScheduler,
    CyclicScheduler,
    CyclicMomentum,
    InverseSqrtScheduler,
    CosineCyclesScheduler,
    PiecewiseInterpolateScheduler,
    WSDScheduler,
    SWAScheduler,
)
from .lr_scheduler import ScheduleLR, WarmupMultiFactorLR, trace_scheduler, updates_per_epoch
from .schedule_names import SCHEDULE_NAMES, get_schedule
from .lr_find import LRFindResult, LRFindSpread, lr_find, lr_find_seeds
from .device import check_device, try_gpu
from .data import TensorLoader, load_data_cifar10, load_data_fashion_mnist, load_data_mnist, validation_split
from .train import History, evaluate_accuracy, is_schedule_free, train
from .callbacks import Callback, Checkpoint, CheckpointError
from .averaging import WeightAverage
from .plot import plot_histories, plot_lr_trace, plot_schedules
from .stats import PairedDifference, paired_difference

__all__ = [
    # schedules: pure functions of the step
    "Schedule", "ConstantScheduler", "SquareRootScheduler", "FactorScheduler", "MultiFactorScheduler",
    "StepScheduler", "ExponentialScheduler", "CosineScheduler", "PolyScheduler", "WarmupMultiFactorSchedule",
    "LinearWarmup", "SequentialScheduler", "ProductScheduler", "OneCycleScheduler", "OneCycleMomentum",
    "CosineRestartsScheduler", "CosineCyclesScheduler", "CyclicScheduler", "CyclicMomentum", "InverseSqrtScheduler",
    "PiecewiseInterpolateScheduler", "WSDScheduler", "SWAScheduler",
    # torch drop-ins
    "ScheduleLR", "WarmupMultiFactorLR", "trace_scheduler", "updates_per_epoch",
    # schedules by name (transformers' names)
    "get_schedule", "SCHEDULE_NAMES",
    # the learning-rate range test
    "lr_find", "lr_find_seeds", "LRFindResult", "LRFindSpread",
    # training
    "try_gpu", "check_device", "TensorLoader", "load_data_fashion_mnist", "load_data_mnist", "load_data_cifar10",
    "validation_split", "History", "train", "evaluate_accuracy", "is_schedule_free", "Callback", "Checkpoint",
    "CheckpointError", "WeightAverage",
    # figures and comparisons
    "plot_schedules", "plot_histories", "plot_lr_trace", "PairedDifference", "paired_difference",
]

__version__ = "0.1.0"
