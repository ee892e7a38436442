"""Speed of lrlab.train against the d2l section's own loop, per epoch, in one run.

Run from the repository root:

    make benchmark            # = .venv/bin/python benchmarks/train_speed.py
    .venv/bin/python benchmarks/train_speed.py --epochs 3

What it does: builds Fashion-MNIST-shaped data (60,000 training and 10,000 test 28x28 uint8 images
with labels 0..9, as the four uncompressed IDX files of torchvision's ``FashionMNIST/raw`` layout) in
a temporary folder, then trains d2l's LeNet (batch 256, SGD lr 0.3, the section's settings) for
``--epochs`` epochs two ways on the same device (``lrlab.try_gpu()``, which is also what
``d2l.try_gpu()`` picks):

1. ``lrlab.train`` on ``lrlab.load_data_fashion_mnist(256, root=...)``;
2. the section's own ``train`` (``lrlab.d2l_section.train``, verbatim) on
   ``d2l.load_data_fashion_mnist(256)``, which reads ``../data`` relative to the working directory,
   so the benchmark runs it from ``<tmp>/work`` with the files in ``<tmp>/data``. d2l's Animator is
   disabled (it only costs d2l time; the comparison stays conservative).

Seconds per epoch are wall-clock totals (loading excluded, evaluation included) divided by the
number of epochs. The bar of issue 3: lrlab at least 2x faster per epoch on a CPU, 20x on a CUDA
GPU. The exit code is 0 unless ``--strict`` is given and the bar is missed.

Fashion-MNIST itself cannot be downloaded offline: the images are the genuine MNIST test split from
``../shared/data/MNIST/raw`` (10,000 digits), tiled six times with one-pixel shifts for the training
set (the test set is the unshifted split, so it overlaps training: irrelevant for timing). Without that
folder a deterministic synthetic set of the same shape is used. Only speed is measured; the test
accuracies are printed as a sanity check that both loops trained the same model.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import os
import struct
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

import lrlab  # noqa: E402
from lrlab import d2l_section  # noqa: E402

SHARED_MNIST = REPO.parent / "shared" / "data" / "MNIST" / "raw"
BATCH_SIZE, LR = 256, 0.3
SHIFTS = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1)]  # six copies of 10,000 = 60,000
BAR = {"cpu": 2.0, "cuda": 20.0}


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (magic 0x00000803 for images, 0x00000801 for labels)."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _read_idx_gz(path: Path, header: int) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8, offset=header)


def build_data(root: Path) -> str:
    """Write the four FashionMNIST/raw IDX files under ``root``; return a description of the source."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images_gz, labels_gz = SHARED_MNIST / "t10k-images-idx3-ubyte.gz", SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"
    if images_gz.is_file() and labels_gz.is_file():
        images = _read_idx_gz(images_gz, 16).reshape(10000, 28, 28)
        labels = _read_idx_gz(labels_gz, 8)
        source = f"the genuine MNIST test split ({SHARED_MNIST}) tiled 6x with 1-pixel shifts"
    else:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, 10000).astype(np.uint8)
        prototypes = rng.integers(0, 256, (10, 28, 28))
        noise = rng.normal(0, 40, (10000, 28, 28))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        source = f"synthetic images ({SHARED_MNIST} not found)"
    train_images = np.concatenate([np.roll(images, s, axis=(1, 2)) for s in SHIFTS])
    train_labels = np.tile(labels, len(SHIFTS))
    _write_idx(raw / "train-images-idx3-ubyte", train_images)
    _write_idx(raw / "train-labels-idx1-ubyte", train_labels)
    _write_idx(raw / "t10k-images-idx3-ubyte", images)
    _write_idx(raw / "t10k-labels-idx1-ubyte", labels)
    return source


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_lrlab(data_root: Path, epochs: int, device: torch.device):
    train_iter, test_iter = lrlab.load_data_fashion_mnist(BATCH_SIZE, root=data_root, device=device)
    torch.manual_seed(0)
    net = lrlab.LeNet()
    trainer = torch.optim.SGD(net.parameters(), lr=LR)
    _sync(device)
    start = time.perf_counter()
    history = lrlab.train(net, train_iter, test_iter, epochs, nn.CrossEntropyLoss(), trainer, device, live=False)
    _sync(device)
    return (time.perf_counter() - start) / epochs, history.test_acc[-1], history.seconds


def run_d2l(work_dir: Path, epochs: int, device: torch.device):
    from d2l import torch as d2l

    cwd = os.getcwd()
    os.chdir(work_dir)  # d2l reads ../data
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="This DataLoader will create")  # d2l's 4 workers on 2 cores
            train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=BATCH_SIZE)
            torch.manual_seed(0)
            net = d2l_section.net_fn()
            trainer = torch.optim.SGD(net.parameters(), lr=LR)
            printed = io.StringIO()
            _sync(device)
            start = time.perf_counter()
            with d2l_section.animator_disabled(), contextlib.redirect_stdout(printed):
                d2l_section.train(net, train_iter, test_iter, epochs, d2l_section.loss, trainer, device)
            _sync(device)
            seconds = (time.perf_counter() - start) / epochs
    finally:
        os.chdir(cwd)
    return seconds, printed.getvalue().strip()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per loop (default 2)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when the speed bar is missed")
    parser.add_argument("--skip-d2l", action="store_true", help="time lrlab.train only")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")

    device = lrlab.try_gpu()
    print(f"device: {describe(device)}")
    with tempfile.TemporaryDirectory(prefix="lrlab-bench-") as tmp:
        data_root, work_dir = Path(tmp) / "data", Path(tmp) / "work"
        work_dir.mkdir()
        source = build_data(data_root)
        print(f"data: 60,000 + 10,000 Fashion-MNIST-shaped images from {source}")
        print(f"LeNet, batch {BATCH_SIZE}, SGD lr {LR}, {args.epochs} epochs each way\n")

        ours, our_acc, per_epoch = run_lrlab(data_root, args.epochs, device)
        print(f"lrlab.train  + lrlab.load_data_fashion_mnist : {ours:7.2f} s/epoch   "
              f"(epochs: {', '.join(f'{s:.2f}' for s in per_epoch)} s; test acc {our_acc:.3f})")
        if args.skip_d2l:
            return 0
        theirs, d2l_summary = run_d2l(work_dir, args.epochs, device)
        print(f"d2l section train + d2l.load_data_fashion_mnist: {theirs:7.2f} s/epoch   ({d2l_summary})")

    ratio = theirs / ours
    bar = BAR.get(device.type)
    verdict = "no bar for this device" if bar is None else (f"bar {bar:g}x: " + ("met" if ratio >= bar else "NOT met"))
    print(f"\nspeed-up of lrlab.train over d2l's loop: {ratio:.1f}x per epoch ({verdict})")
    if args.strict and bar is not None and ratio < bar:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
