"""Where the time of one reference epoch goes: LeNet on Fashion-MNIST, batch 256, SGD (the d2l study).

Run from the repository root, on an otherwise idle machine (timings of a shared 2-core CPU are noisy):

    .venv/bin/python benchmarks/epoch_breakdown.py [--batches 100] [--root ../shared/data]

It times, batch by batch and with the same code paths as ``lrlab.train`` (channels_last on the CPU), the
parts of an epoch: taking a shuffled batch out of the uint8 tensors and converting it to float
(``TensorLoader`` with its ``PixelTransform``), the forward pass and loss, the backward pass, the
optimizer step; then one evaluation pass over the 10,000 test images. It prints each part's
seconds per epoch (scaled to the 235 batches of a full epoch) and its share. Without the real
Fashion-MNIST files it uses the synthetic stand-in of the same shape (the timing is the same).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lrlab  # noqa: E402
from lrlab import course  # noqa: E402
from lrlab import data as lrdata  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="training batches to time (default 100)")
    parser.add_argument("--root", default=None, help="the datasets' folder (default: $LRLAB_DATA)")
    args = parser.parse_args(argv)
    if lrdata.files_present("fashion_mnist", args.root):
        train_iter, test_iter = lrlab.load_data_fashion_mnist(256, root=args.root, download=False, device="cpu")
        what = "real Fashion-MNIST"
    else:
        train_iter, test_iter = lrdata.load_synthetic("fashion_mnist", 256, 60_000, 10_000, device="cpu")
        what = "synthetic Fashion-MNIST-shaped data"
    torch.manual_seed(0)
    net = course.LeNet().to(memory_format=torch.channels_last)
    loss = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    parts = dict.fromkeys(["batch (index, uint8 -> float)", "forward + loss", "backward", "optimizer step"], 0.0)
    batches = iter(train_iter)
    n = 0
    while n < args.batches:
        t0 = time.perf_counter()
        try:
            X, y = next(batches)
        except StopIteration:
            batches = iter(train_iter)
            continue
        X = X.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        l = loss(net(X), y)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        l.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[key] += dt
        n += 1
    per_epoch = {k: v / n * len(train_iter) for k, v in parts.items()}
    t = time.perf_counter()
    lrlab.evaluate_accuracy(net, test_iter)
    per_epoch["evaluation on 10,000 test images"] = time.perf_counter() - t
    total = sum(per_epoch.values())
    print(f"{what}; {torch.get_num_threads()} torch threads; {n} training batches timed, scaled to "
          f"{len(train_iter)} per epoch")
    for key, seconds in per_epoch.items():
        print(f"  {key:36s} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")
    print(f"  {'one epoch':36s} {total:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
