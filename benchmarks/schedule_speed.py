"""How long each lrlab schedule takes to evaluate a million steps (the issue's bar: well under 1 s).

    .venv/bin/python benchmarks/schedule_speed.py
"""

import time

import numpy as np

import lrlab

N = 1_000_000
SCHEDULES = {
    "SquareRootScheduler": lrlab.SquareRootScheduler(0.1),
    "FactorScheduler": lrlab.FactorScheduler(0.9, 1e-2, 2.0),
    "MultiFactorScheduler": lrlab.MultiFactorScheduler([15, 30], 0.5, 0.5),
    "CosineScheduler+warmup": lrlab.CosineScheduler(N, 0.3, 0.01, warmup_steps=N // 20),
    "PolyScheduler": lrlab.PolyScheduler(N, 0.005, power=0.9),
    "WarmupMultiFactorSchedule": lrlab.WarmupMultiFactorSchedule([N // 2, 3 * N // 4], 0.1, 0.001, N // 10),
    "warmup-stable-decay": lrlab.SequentialScheduler(
        [lrlab.LinearWarmup(lrlab.ConstantScheduler(0.1), N // 20), lrlab.PolyScheduler(N // 5, base_lr=0.1)],
        milestones=[4 * N // 5],
    ),
}



def _time(schedule, steps):
    start = time.perf_counter()
    schedule(steps)
    return time.perf_counter() - start


if __name__ == "__main__":
    steps = np.arange(N)
    for name, schedule in SCHEDULES.items():
        best = min(_time(schedule, steps) for _ in range(3))
        print(f"{name:28s} {N:,} steps in {best * 1000:7.1f} ms")
