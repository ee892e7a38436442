"""lrlab: learning-rate schedules for PyTorch, exact and stateless, and the harness of the lrlab course.

A schedule is a pure function of the step: ``schedule(t)`` is the learning rate used during step
``t``. :class:`ScheduleLR` drives any optimizer by any schedule.

>>> import torch, lrlab
>>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.3)
>>> sched = lrlab.ScheduleLR(opt, lrlab.CosineScheduler(20, base_lr=0.3, final_lr=0.01))
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
    SquareRootScheduler,
    StepScheduler,
    WarmupMultiFactorSchedule,
    OneCycleScheduler,
    OneCycleMomentum,
    CosineRestartsScheduler,
    WSDScheduler,
)
from .lr_scheduler import ScheduleLR, WarmupMultiFactorScheduler, trace_scheduler
from .lr_find import LRFindResult, LRFindSpread, lr_find, lr_find_seeds
from .device import try_gpu
from .profiles import Experiment, experiment, get_profile
from .data import TensorLoader, load_data_cifar10, load_data_fashion_mnist, load_data_mnist, validation_split
from .models import ImprovedCNN, LeNet, SimpleModel
from .train import History, evaluate_accuracy, is_schedule_free, train
from .plot import plot_histories, plot_lr_trace, plot_runs, plot_schedules
from .results import read_table
from . import course, results  # noqa: F401 (lrlab.course.glue, lrlab.results.compare_table in the chapters)

__all__ = [
    # schedules: pure functions of the step
    "Schedule", "ConstantScheduler", "SquareRootScheduler", "FactorScheduler", "MultiFactorScheduler",
    "StepScheduler", "ExponentialScheduler", "CosineScheduler", "PolyScheduler", "WarmupMultiFactorSchedule",
    "LinearWarmup", "SequentialScheduler", "OneCycleScheduler", "OneCycleMomentum", "CosineRestartsScheduler",
    "WSDScheduler",
    # torch drop-ins
    "ScheduleLR", "WarmupMultiFactorScheduler", "trace_scheduler",
    # the learning-rate range test
    "lr_find", "lr_find_seeds", "LRFindResult", "LRFindSpread",
    # training harness
    "try_gpu", "Experiment", "experiment", "get_profile", "TensorLoader", "load_data_fashion_mnist",
    "load_data_mnist", "load_data_cifar10", "validation_split", "LeNet", "SimpleModel", "ImprovedCNN", "History", "train",
    "evaluate_accuracy", "is_schedule_free", "plot_schedules", "plot_histories", "plot_lr_trace",
    # measured results (book/results)
    "read_table", "plot_runs",
]

__version__ = "0.1.0"
