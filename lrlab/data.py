"""Datasets held whole as tensors, and :class:`TensorLoader`, which batches them by index.

The three loaders keep d2l's call shape and return ``(train_iter, test_iter)``:

=============================  ==========================  ===========================================
loader                         source                      what a batch ``X`` holds
=============================  ==========================  ===========================================
``load_data_fashion_mnist``    d2l, "Learning Rate         float32 ``N x 1 x 28 x 28`` in [0, 1]: exactly
                               Scheduling" section         ``ToTensor()`` (uint8 / 255)
``load_data_mnist``            the MNIST StepLR /          float32 ``N x 1 x 28 x 28``,
                               CosineAnnealingLR tutorial  ``(x / 255 - 0.1307) / 0.3081`` (``Normalize``)
``load_data_cifar10``          the WarmupMultiFactor       float32 ``N x 3 x 32 x 32``,
                               tutorial                    ``(x / 255 - 0.5) / 0.5`` in [-1, 1]
=============================  ==========================  ===========================================

``y`` is an int64 class index (0..9). CIFAR-10 uses the normalisation of PyTorch's CIFAR-10 tutorial
(mean 0.5, std 0.5 per channel) and no augmentation.

Why not ``torch.utils.data.DataLoader``: d2l's loader decodes every image through PIL in 4 worker
processes, every epoch. These datasets are small (Fashion-MNIST is 55 MB as uint8, CIFAR-10 184 MB), so
lrlab reads the raw files once into uint8 tensors, keeps them on the training device when they fit
(:func:`lrlab.try_gpu`), and converts each batch to float32 there: the same numbers, no PIL, no workers.

Files and downloads: the layout is torchvision's (``<root>/FashionMNIST/raw/``, ``<root>/MNIST/raw/``,
``<root>/cifar-10-batches-py/``), so an existing torchvision download can be reused. Missing files are
downloaded by torchvision's own dataset classes (``torchvision.datasets.FashionMNIST(..., download=True)``,
which checks the archives' MD5) into a temporary folder inside the root; each file is parsed and checked,
and only then moved into place, so an interrupted download leaves nothing half-written. The root is the
``root`` argument, else ``$LRLAB_DATA``, else a per-user cache folder (see :func:`data_root`); never a
path relative to the current directory (d2l uses ``../data``).

References: Xiao, Rasul, Vollgraf (2017), Fashion-MNIST; LeCun, Cortes, Burges, MNIST (IDX format at
http://yann.lecun.com/exdb/mnist/); Krizhevsky (2009), CIFAR-10 (python pickle batches at
https://www.cs.toronto.edu/~kriz/cifar.html); d2l ``load_data_fashion_mnist``.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .device import try_gpu

__all__ = [
    "TensorLoader",
    "PixelTransform",
    "DatasetSpec",
    "DATASETS",
    "MissingDataError",
    "CorruptDataError",
    "data_root",
    "files_present",
    "read_idx",
    "read_cifar_batch",
    "load_dataset_tensors",
    "resize_images",
    "synthetic_dataset",
    "make_loaders",
    "load_synthetic",
    "load_data_fashion_mnist",
    "load_data_mnist",
    "load_data_cifar10",
    "load_data_mnist_test_split",
    "validation_split",
]

PathLike = Union[str, os.PathLike]
Tensors4 = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class MissingDataError(FileNotFoundError):
    """A dataset file is missing and could not (or may not) be downloaded; the message says what to do."""


class CorruptDataError(ValueError):
    """A dataset file exists but is truncated or not in the expected format; the message names it."""


# ----------------------------------------------------------------------------------------------
# The datasets: one table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """What lrlab knows about one dataset: where its files live under the root and what they hold."""

    name: str  # lrlab's key: "fashion_mnist", "mnist", "cifar10"
    title: str  # for people: "Fashion-MNIST"
    torchvision_class: str  # attribute of torchvision.datasets that downloads it
    folder: str  # folder under the root, torchvision's layout
    train_files: Tuple[str, ...]
    test_files: Tuple[str, ...]
    image_shape: Tuple[int, int, int]  # C, H, W
    num_classes: int
    num_train: int  # sizes of the real dataset
    num_test: int
    mean: Optional[Tuple[float, ...]]  # normalisation after /255 (None: pixels stay in [0, 1])
    std: Optional[Tuple[float, ...]]

    @property
    def files(self) -> Tuple[str, ...]:
        return self.train_files + self.test_files


_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

DATASETS = {
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", _IDX_TRAIN, _IDX_TEST,
        (1, 28, 28), 10, 60_000, 10_000, None, None,
    ),
    "mnist": DatasetSpec(
        "mnist", "MNIST", "MNIST", "MNIST/raw", _IDX_TRAIN, _IDX_TEST,
        (1, 28, 28), 10, 60_000, 10_000, (0.1307,), (0.3081,),
    ),
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10", "CIFAR10", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        (3, 32, 32), 10, 50_000, 10_000, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
    ),
}


def _spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"dataset={dataset!r} is not known; use one of {sorted(DATASETS)}") from None


# ----------------------------------------------------------------------------------------------
# Where the files live
# ----------------------------------------------------------------------------------------------


def data_root(root: Optional[PathLike] = None) -> Path:
    """The folder that holds the datasets, as an absolute path.

    In order: the ``root`` argument; else the environment variable ``LRLAB_DATA``; else the per-user
    cache folder ``$XDG_CACHE_HOME/lrlab`` (when ``XDG_CACHE_HOME`` is set to an absolute path, as the
    XDG base-directory spec asks) or ``~/.cache/lrlab``. A relative ``root`` or ``LRLAB_DATA`` is taken
    relative to the current directory at the time of the call (the caller asked for it); the default
    never is. The folder is not created here (only a download creates it).
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser().resolve()
    env = os.environ.get("LRLAB_DATA", "")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    cache = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return cache / "lrlab"


def _find_file(folder: Path, name: str) -> Optional[Path]:
    """The file ``name`` in ``folder``, or its gzip-compressed ``name.gz``, or None."""
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def files_present(dataset: str, root: Optional[PathLike] = None, splits: Sequence[str] = ("train", "test")) -> bool:
    """True when every file of ``splits`` ("train", "test") of ``dataset`` ("fashion_mnist", "mnist", "cifar10") is on disk.

    Only checks presence (cheap); reading checks the content. IDX files may be plain or ``.gz``.
    """
    spec = _spec(dataset)
    unknown = set(splits) - {"train", "test"}
    if unknown or not splits:
        raise ValueError(f"splits must name 'train' and/or 'test'; got {tuple(splits)!r}")
    folder = data_root(root) / spec.folder
    names = (spec.train_files if "train" in splits else ()) + (spec.test_files if "test" in splits else ())
    return all(_find_file(folder, name) is not None for name in names)


# ----------------------------------------------------------------------------------------------
# Reading the raw files into tensors
# ----------------------------------------------------------------------------------------------

_FIX_CORRUPT = (
    "Delete it and load again to download a fresh copy through torchvision, or replace it with an "
    "intact copy (or use LRLAB_PROFILE=smoke to run without the real data)."
)


def read_idx(path: PathLike) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (MNIST / Fashion-MNIST images or labels) into a uint8 tensor.

    Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): bytes 0-1 are zero, byte 2 is the type
    (0x08 = unsigned byte), byte 3 the number of dimensions d; then d big-endian uint32 sizes; then the
    data. ``path`` may end in ``.gz``. The same result as ``torchvision.datasets.mnist.read_image_file``
    (``read_label_file`` further casts labels to int64), but a truncated or malformed file raises
    :class:`CorruptDataError` naming the file instead of an ``AssertionError``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise CorruptDataError(f"{path} cannot be read or decompressed ({err}). {_FIX_CORRUPT}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 3:
        raise CorruptDataError(
            f"{path} is not an IDX file of unsigned bytes (its first 4 bytes are {raw[:4].hex() or 'missing'}, "
            f"expected 000008 followed by 01, 02 or 03). {_FIX_CORRUPT}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path} is truncated inside its header ({len(raw)} bytes). {_FIX_CORRUPT}")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise CorruptDataError(
            f"{path} has {len(raw):,} bytes but its header announces shape {tuple(shape)}, i.e. "
            f"{expected:,} bytes ({'truncated' if len(raw) < expected else 'trailing data'}). {_FIX_CORRUPT}"
        )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header).view(*shape)


def read_cifar_batch(path: PathLike) -> Tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR-10 python batch (``data_batch_1`` ... ``test_batch``) into ``(X, y)``.

    The file is a pickled dict with ``data`` (uint8 array ``N x 3072``: the red, green and blue planes
    of each 32x32 image, row-major) and ``labels`` (N ints 0..9), read like ``torchvision.datasets.CIFAR10``
    does (``pickle.load(f, encoding="latin1")``; as there, only load files you trust). Returns uint8
    ``X`` of shape ``N x 3 x 32 x 32`` and int64 ``y``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated pickles raise EOFError, UnpicklingError, ValueError, ...
        raise CorruptDataError(f"{path} is not a readable CIFAR-10 batch ({type(err).__name__}: {err}). "
                               f"{_FIX_CORRUPT}") from err
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get("labels") if isinstance(entry, dict) else None
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3 * 32 * 32 or labels is None or len(labels) != data.shape[0]):
        raise CorruptDataError(
            f"{path} does not hold a CIFAR-10 batch (expected a dict with 'data': uint8 array N x 3072 and "
            f"'labels': N ints). {_FIX_CORRUPT}"
        )
    X = torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, 3, 32, 32)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    return X, y


def _check_pair(spec: DatasetSpec, X: torch.Tensor, y: torch.Tensor, where: str) -> None:
    if tuple(X.shape[1:]) != spec.image_shape or X.shape[0] != y.shape[0] or y.dim() != 1:
        raise CorruptDataError(
            f"{where}: images of shape {tuple(X.shape)} and labels of shape {tuple(y.shape)} do not form "
            f"{spec.title} data (expected N x {' x '.join(map(str, spec.image_shape))} images and N labels). "
            f"{_FIX_CORRUPT}"
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= spec.num_classes):
        raise CorruptDataError(f"{where}: labels outside 0..{spec.num_classes - 1}. {_FIX_CORRUPT}")


def _read_split(spec: DatasetSpec, folder: Path, names: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    paths = [_find_file(folder, name) for name in names]
    missing = [folder / name for name, p in zip(names, paths) if p is None]
    if missing:
        raise MissingDataError(f"{missing[0]} is missing")  # only reached after _ensure_files
    if spec.name == "cifar10":
        parts = [read_cifar_batch(p) for p in paths]
        X, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        where = f"{folder}"
    else:
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.dim() != 3 or labels.dim() != 1:
            raise CorruptDataError(f"{paths[0]} / {paths[1]}: expected 3-d images and 1-d labels, got "
                                   f"{tuple(images.shape)} and {tuple(labels.shape)}. {_FIX_CORRUPT}")
        X, y = images.unsqueeze(1), labels.long()
        where = f"{paths[0]} + {paths[1]}"
    _check_pair(spec, X, y, where)
    return X, y


def _missing_message(spec: DatasetSpec, root: Path, missing: Sequence[Path], reason: str) -> str:
    return (
        f"{spec.title}: {missing[0]} (or {missing[0].name}.gz) is missing"
        + (f", and {len(missing) - 1} more file(s)" if len(missing) > 1 else "")
        + f"; {reason}. Fix: run once with network access (torchvision downloads it), or copy torchvision's "
        f"'{spec.folder}' folder under {root}, or point LRLAB_DATA (or root=) at a folder that has it; "
        f"to run without the real data use LRLAB_PROFILE=smoke, where lrlab.course.experiment(...).load_data() "
        f"uses synthetic stand-in data."
    )


def _one_line(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _download(spec: DatasetSpec, root: Path) -> None:
    """Download ``spec`` through torchvision into a temporary folder in ``root``; move files in when verified."""
    import torchvision  # imported here: only downloads need it

    dataset_class = getattr(torchvision.datasets, spec.torchvision_class)
    root.mkdir(parents=True, exist_ok=True)
    final = root / spec.folder
    with tempfile.TemporaryDirectory(prefix=f".lrlab-download-{spec.name}-", dir=root) as tmp:
        try:
            # torchvision checks the MD5 of each archive it downloads, extracts it, then reads the split.
            dataset_class(tmp, train=True, download=True)
        except Exception as err:
            missing = [final / n for n in spec.files if _find_file(final, n) is None]
            raise MissingDataError(_missing_message(
                spec, root, missing, f"downloading it with torchvision.datasets.{spec.torchvision_class} "
                f"failed ({type(err).__name__}: {_one_line(err)})"
            )) from err
        staged = Path(tmp) / spec.folder
        # Parse every file before anything is moved: a bad download never reaches the data folder.
        _read_split(spec, staged, spec.train_files)
        _read_split(spec, staged, spec.test_files)
        # Move every file torchvision left (archives' members, batches.meta, the .gz files) so the
        # folder stays usable by torchvision's own classes; files already in place are kept.
        final.mkdir(parents=True, exist_ok=True)
        for source in sorted(staged.iterdir()):
            if source.is_file() and not (final / source.name).exists():
                os.replace(source, final / source.name)  # atomic within one file system


def load_dataset_tensors(dataset: str, root: Optional[PathLike] = None, download: Optional[bool] = None) -> Tensors4:
    """Read ``dataset`` ("fashion_mnist", "mnist", "cifar10") into ``(X_train, y_train, X_test, y_test)``.

    ``X``: uint8 images ``N x C x H x W`` exactly as in the files; ``y``: int64 labels. Missing files
    are downloaded through torchvision when ``download`` is true; ``download=None`` means "unless
    ``$LRLAB_PROFILE`` is ``smoke``" (the course's smoke profile never touches the network). Missing files that cannot
    be downloaded raise :class:`MissingDataError`; a truncated or malformed file raises
    :class:`CorruptDataError`; both name the file and the fix.
    """
    spec = _spec(dataset)
    base = data_root(root)
    folder = base / spec.folder
    missing = [folder / n for n in spec.files if _find_file(folder, n) is None]
    if missing:
        if download is None:  # the course's smoke profile (lrlab.course.profiles) never uses the network
            download = os.environ.get("LRLAB_PROFILE", "") != "smoke"
        if not download:
            raise MissingDataError(_missing_message(
                spec, base, missing, "downloads are off (download=False, or the smoke profile, which never "
                "uses the network)"))
        _download(spec, base)
    return _read_split(spec, folder, spec.train_files) + _read_split(spec, folder, spec.test_files)


def resize_images(X: torch.Tensor, size: Union[int, Sequence[int]], chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images ``N x C x H x W`` like d2l's ``transforms.Resize(size)`` before ``ToTensor``.

    Bilinear with antialiasing on the uint8 tensor (``torchvision.transforms.v2.functional.resize``),
    torchvision's tensor counterpart of the PIL resize d2l applies per image; the result is uint8 like
    PIL's. Measured on the MNIST test digits: identical to d2l's PIL path for 28 -> 32, 56, 224 and
    (14, 21); for 28 -> 20 about 1% of pixels differ by one grey level (1/255). An int ``size``
    matches the smaller edge, as ``Resize`` does. Processed in chunks to bound memory.
    """
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    size_list = [size] if isinstance(size, int) else list(size)
    if not size_list or any(int(s) <= 0 for s in size_list):
        raise ValueError(f"resize={size!r}: give a positive int or (height, width)")
    parts = [TF.resize(X[i:i + chunk], size_list, interpolation=InterpolationMode.BILINEAR, antialias=True)
             for i in range(0, X.shape[0], chunk)]
    return torch.cat(parts)


# ----------------------------------------------------------------------------------------------
# Synthetic stand-in data for the smoke profile
# ----------------------------------------------------------------------------------------------


def synthetic_dataset(dataset: str, num_train: int, num_test: int, seed: int = 0) -> Tensors4:
    """A deterministic, learnable stand-in for ``dataset`` with its image shape and class count.

    Each class k gets a fixed random pattern: a coarse 7x7 grid of bright or dark cells (per channel),
    upsampled to the image size. An image of class k is that pattern at a random brightness
    (150..230) on a background of 30, plus Gaussian pixel noise (std 40), clipped to uint8. Classes
    are balanced. Train and test share the patterns and differ in noise, so a small network
    learns the classes within a few dozen updates. Returns uint8 ``X`` and int64 ``y`` like
    :func:`load_dataset_tensors`; the same ``seed`` gives the same tensors.
    """
    spec = _spec(dataset)
    for label, n in (("num_train", num_train), ("num_test", num_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"synthetic_dataset: {label} must be an int >= 1; got {n!r}")
    C, H, W = spec.image_shape
    K = spec.num_classes
    g = torch.Generator().manual_seed(seed)
    coarse = (torch.rand(K, C, 7, 7, generator=g) < 0.4).float()
    patterns = torch.nn.functional.interpolate(coarse, size=(H, W), mode="nearest")

    def sample(n: int) -> Tuple[torch.Tensor, torch.Tensor]:
        y = (torch.arange(n) % K)[torch.randperm(n, generator=g)]
        brightness = 150 + 80 * torch.rand(n, 1, 1, 1, generator=g)
        noise = 40 * torch.randn(n, C, H, W, generator=g)
        X = (30 + patterns[y] * brightness + noise).round().clamp(0, 255).to(torch.uint8)
        return X, y.long()

    return sample(num_train) + sample(num_test)


# ----------------------------------------------------------------------------------------------
# Batching
# ----------------------------------------------------------------------------------------------


class PixelTransform:
    """uint8 images -> float32: ``x / 255``, then per channel ``(x - mean) / std`` when given.

    The same arithmetic as torchvision's ``ToTensor()`` (``x.to(float32).div(255)``) followed by
    ``Normalize(mean, std)`` (``sub_(mean).div_(std)`` with float32 mean and std), applied to a whole batch.
    """

    def __init__(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
        if (mean is None) != (std is None):
            raise ValueError("PixelTransform: give both mean and std, or neither")
        if std is not None and any(s <= 0 for s in std):
            raise ValueError(f"PixelTransform: std={tuple(std)} must be > 0")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self._stats = {}  # device -> (mean, std) tensors, built once instead of on every batch

    def _stats_on(self, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:
            self._stats[device] = tuple(torch.as_tensor(v, dtype=torch.float32, device=device).view(-1, 1, 1)
                                        for v in (self.mean, self.std))
        return self._stats[device]

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        X = X.to(torch.float32).div(255)
        if self.mean is not None:
            mean, std = self._stats_on(X.device)
            X = X.sub_(mean).div_(std)
        return X

    def __repr__(self) -> str:
        if self.mean is None:
            return "PixelTransform()"
        return f"PixelTransform(mean={self.mean}, std={self.std})"


class TensorLoader:
    """Batches of a dataset held whole as tensors, chosen by index: a drop-in for a DataLoader.

    Iterating yields ``(X[idx], y[idx])`` for consecutive index blocks of ``batch_size`` (the last one
    may be smaller, like ``DataLoader(drop_last=False)``), each epoch (each ``iter``) anew. With
    ``shuffle=True`` each epoch uses a fresh permutation drawn from a generator seeded with ``seed``,
    so two loaders built with the same seed give the same batches epoch after epoch; ``seed=None``
    draws from torch's global generator (reproducible under ``torch.manual_seed``). ``max_batches``
    stops each epoch after that many batches (with shuffling, a different subset every epoch).
    ``device``: move ``X`` and ``y`` there once (None: leave them where they are); batches come on
    that device. ``transform`` is applied to each ``X`` batch (e.g. uint8 -> float, :class:`PixelTransform`).

    ``len(loader)`` is the number of batches per epoch; ``loader.num_examples`` the examples per epoch.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: Optional[int] = None,
        max_batches: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
        transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ):
        if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"TensorLoader: X and y must be tensors; got {type(X).__name__} and {type(y).__name__}")
        if X.dim() == 0 or y.dim() == 0 or X.shape[0] != y.shape[0]:
            raise ValueError(f"TensorLoader: X and y must have the same first dimension (one row per example); "
                             f"got shapes {tuple(X.shape)} and {tuple(y.shape)}")
        if X.shape[0] == 0:
            raise ValueError("TensorLoader: X and y are empty; give at least one example")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"TensorLoader: batch_size must be an int >= 1; got batch_size={batch_size!r}")
        if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                        or max_batches < 1):
            raise ValueError(f"TensorLoader: max_batches must be None (all) or an int >= 1; got {max_batches!r}")
        if device is not None:
            X, y = X.to(device), y.to(device)
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.max_batches = max_batches
        self.transform = transform
        self._generator = None if seed is None else torch.Generator().manual_seed(seed)

    @property
    def device(self) -> torch.device:
        return self.X.device

    def __len__(self) -> int:
        batches = math.ceil(self.X.shape[0] / self.batch_size)
        return batches if self.max_batches is None else min(batches, self.max_batches)

    @property
    def dataset(self) -> torch.utils.data.TensorDataset:
        """The examples as a ``TensorDataset`` (untransformed), so code written for a ``DataLoader`` that
        reads ``len(loader.dataset)`` (the MNIST tutorial's ``test``) runs on this loader too."""
        return torch.utils.data.TensorDataset(self.X, self.y)

    @property
    def num_examples(self) -> int:
        """Examples per epoch (all of them, or those in the first ``max_batches`` batches)."""
        return min(self.X.shape[0], len(self) * self.batch_size)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        n = self.X.shape[0]
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator).to(self.X.device)
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                Xb, yb = self.X[lo:hi], self.y[lo:hi]
            else:
                idx = order[lo:hi]
                Xb, yb = self.X[idx], self.y[idx]
            yield (Xb if self.transform is None else self.transform(Xb)), yb

    def state_dict(self) -> dict:
        """The shuffling state (what the next epoch's order depends on), for checkpoints.

        ``{"generator": ByteTensor}`` for a seeded shuffling loader, else ``{}`` (an unshuffled loader
        has no state; ``seed=None`` draws from torch's global generator, which the caller saves).
        """
        return {} if self._generator is None or not self.shuffle else {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`: the next epoch is shuffled as it would have been."""
        if set(state) - {"generator"}:
            raise ValueError(f"TensorLoader.load_state_dict: unknown keys {sorted(set(state) - {'generator'})}")
        if "generator" in state:
            if self._generator is None or not self.shuffle:
                raise ValueError("TensorLoader.load_state_dict: the state has a shuffling generator but this loader "
                                 "is not a seeded shuffling loader (build it with shuffle=True and a seed)")
            self._generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (f"TensorLoader({self.X.shape[0]} examples of {tuple(self.X.shape[1:])}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, max_batches={self.max_batches}, device={self.device})")


def _storage_device(nbytes: int, device: Optional[Union[str, torch.device]]) -> torch.device:
    """``device`` if given, else :func:`try_gpu` when the data take at most half its free memory, else cpu."""
    if device is not None:
        return torch.device(device)
    candidate = try_gpu()
    if candidate.type == "cuda":
        free, _total = torch.cuda.mem_get_info(candidate)
        return candidate if nbytes <= free // 2 else torch.device("cpu")
    return candidate


def make_loaders(
    X_train: torch.Tensor, y_train: torch.Tensor, X_test: torch.Tensor, y_test: torch.Tensor,
    batch_size: int, transform: Optional[Callable] = None, *, seed: Optional[int] = 0,
    max_batches: Optional[int] = None, device: Optional[Union[str, torch.device]] = None,
) -> Tuple[TensorLoader, TensorLoader]:
    """``(train_iter, test_iter)``: train shuffled with ``seed``, test in file order; ``max_batches`` caps both.

    The tensors go to ``device``, or by default to the training device (:func:`lrlab.try_gpu`) when
    they fit in half its free memory, else stay on the CPU (an out-of-memory error also falls back).
    """
    nbytes = sum(t.numel() * t.element_size() for t in (X_train, y_train, X_test, y_test))
    target = _storage_device(nbytes, device)
    try:
        X_train, y_train, X_test, y_test = (t.to(target) for t in (X_train, y_train, X_test, y_test))
    except RuntimeError:  # includes torch.cuda.OutOfMemoryError; mps allocation failures
        if device is not None:
            raise
        X_train, y_train, X_test, y_test = (t.cpu() for t in (X_train, y_train, X_test, y_test))
    train_iter = TensorLoader(X_train, y_train, batch_size, shuffle=True, seed=seed, max_batches=max_batches,
                              transform=transform)
    test_iter = TensorLoader(X_test, y_test, batch_size, shuffle=False, max_batches=max_batches,
                             transform=transform)
    return train_iter, test_iter


def _transform_for(dataset: str) -> PixelTransform:
    spec = _spec(dataset)
    return PixelTransform(spec.mean, spec.std)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got batch_size={batch_size!r}")


def load_synthetic(
    dataset: str, batch_size: int, num_train: int, num_test: int, *, seed: Optional[int] = 0, data_seed: int = 0,
    max_batches: Optional[int] = None, device: Optional[Union[str, torch.device]] = None,
) -> Tuple[TensorLoader, TensorLoader]:
    """Loaders over :func:`synthetic_dataset` (generated with ``data_seed``), with the real ``dataset``'s transform.

    ``seed`` seeds the shuffling of the training loader, as in :func:`load_data_fashion_mnist`; the
    stand-in data themselves depend only on ``data_seed``.
    """
    _check_batch_size(batch_size)
    tensors = synthetic_dataset(dataset, num_train, num_test, seed=data_seed)
    return make_loaders(*tensors, batch_size, _transform_for(dataset), seed=seed, max_batches=max_batches,
                        device=device)


def load_data_fashion_mnist(
    batch_size: int, resize: Optional[Union[int, Sequence[int]]] = None, root: Optional[PathLike] = None, *,
    download: Optional[bool] = None, seed: Optional[int] = 0, max_batches: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
) -> Tuple[TensorLoader, TensorLoader]:
    """Fashion-MNIST as ``(train_iter, test_iter)``, d2l's ``load_data_fashion_mnist`` without PIL or workers.

    Batches: float32 ``X`` of ``N x 1 x 28 x 28`` (or the ``resize`` size) in [0, 1], the same numbers
    as d2l's ``ToTensor()``; int64 ``y``. 60,000 training images, shuffled each epoch (generator seeded
    with ``seed``), 10,000 test images in file order. ``resize`` as d2l (``transforms.Resize``),
    done once on the uint8 images by :func:`resize_images`. Files: see :func:`data_root` and
    :func:`load_dataset_tensors` (``download``); ``max_batches`` caps both iterators; ``device`` where
    the tensors live (default: the training device when they fit).
    """
    _check_batch_size(batch_size)
    X_train, y_train, X_test, y_test = load_dataset_tensors("fashion_mnist", root, download)
    if resize:
        X_train, X_test = resize_images(X_train, resize), resize_images(X_test, resize)
    return make_loaders(X_train, y_train, X_test, y_test, batch_size, _transform_for("fashion_mnist"),
                        seed=seed, max_batches=max_batches, device=device)


def load_data_mnist(
    batch_size: int, root: Optional[PathLike] = None, *, download: Optional[bool] = None,
    seed: Optional[int] = 0, max_batches: Optional[int] = None, device: Optional[Union[str, torch.device]] = None,
) -> Tuple[TensorLoader, TensorLoader]:
    """MNIST as ``(train_iter, test_iter)``, normalised as in the MNIST StepLR/CosineAnnealingLR tutorial.

    Batches: float32 ``X`` of ``N x 1 x 28 x 28`` equal to ``Normalize((0.1307,), (0.3081,))(ToTensor()(img))``
    (the mean and std of the MNIST training pixels); int64 ``y``. 60,000 training images (shuffled,
    seeded), 10,000 test images in order. Other arguments as in :func:`load_data_fashion_mnist`.
    """
    _check_batch_size(batch_size)
    tensors = load_dataset_tensors("mnist", root, download)
    return make_loaders(*tensors, batch_size, _transform_for("mnist"), seed=seed, max_batches=max_batches,
                        device=device)


def load_data_cifar10(
    batch_size: int, root: Optional[PathLike] = None, *, download: Optional[bool] = None,
    seed: Optional[int] = 0, max_batches: Optional[int] = None, device: Optional[Union[str, torch.device]] = None,
) -> Tuple[TensorLoader, TensorLoader]:
    """CIFAR-10 as ``(train_iter, test_iter)``: the 3x32x32 input of the WarmupMultiFactor tutorial's model.

    Batches: float32 ``X`` of ``N x 3 x 32 x 32`` equal to ``Normalize((0.5,)*3, (0.5,)*3)(ToTensor()(img))``,
    i.e. in [-1, 1] (the normalisation of PyTorch's CIFAR-10 tutorial; no augmentation); int64 ``y``.
    50,000 training images (shuffled, seeded), 10,000 test images in order. Other arguments as in
    :func:`load_data_fashion_mnist`.
    """
    _check_batch_size(batch_size)
    tensors = load_dataset_tensors("cifar10", root, download)
    return make_loaders(*tensors, batch_size, _transform_for("cifar10"), seed=seed, max_batches=max_batches,
                        device=device)


def load_data_mnist_test_split(
    batch_size: int, root: Optional[PathLike] = None, *, num_train: int = 8000, split_seed: int = 0,
    seed: Optional[int] = 0, max_batches: Optional[int] = None, device: Optional[Union[str, torch.device]] = None,
) -> Tuple[TensorLoader, TensorLoader]:
    """The genuine MNIST *test* split cut in two, ``(train_iter, test_iter)``: a proxy for MNIST without its training split.

    For machines that hold only the 10,000 MNIST test digits (the course's offline data): a permutation
    drawn from a generator seeded with ``split_seed`` (independent of ``seed``) puts ``num_train``
    digits in the training set and the other ``10,000 - num_train`` in the test set, so every run sees
    the same split. Batches are normalised as in :func:`load_data_mnist`; the training iterator is
    shuffled with ``seed``. Only the two ``t10k`` files are read; nothing is downloaded (with a
    network, :func:`load_data_mnist` gets the real splits). Results on this proxy are not results
    on MNIST: 8,000 training digits instead of 60,000, a 2,000-digit test set.
    """
    _check_batch_size(batch_size)
    if isinstance(num_train, bool) or not isinstance(num_train, int) or not 1 <= num_train < 10_000:
        raise ValueError(f"num_train must be an int in 1..9999 (the test split has 10,000 digits); got {num_train!r}")
    spec = _spec("mnist")
    base = data_root(root)
    folder = base / spec.folder
    missing = [folder / n for n in spec.test_files if _find_file(folder, n) is None]
    if missing:
        raise MissingDataError(_missing_message(spec, base, missing, "the proxy reads the MNIST test split only"))
    X, y = _read_split(spec, folder, spec.test_files)
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(split_seed))
    train, test = order[:num_train], order[num_train:]
    return make_loaders(X[train], y[train], X[test], y[test], batch_size, _transform_for("mnist"), seed=seed,
                        max_batches=max_batches, device=device)


def validation_split(train_iter: TensorLoader, num_valid: int, seed: int = 0) -> Tuple[TensorLoader, TensorLoader]:
    """Carve a validation set out of a training loader: ``(train_iter, valid_iter)``.

    Decisions taken during training (when ``ReduceLROnPlateau`` cuts the rate, which epoch or which
    schedule to keep) must not look at the test set, or its accuracy stops being an honest estimate.
    This holds ``num_valid`` training examples out for them: a permutation drawn from a generator
    seeded with ``seed`` (independent of the loader's shuffling seed) picks them, so the same call
    always holds out the same examples. The course holds out 5,000 of Fashion-MNIST's 60,000 training
    images (one in twelve).

    The new training loader keeps ``train_iter``'s batch size, shuffling (and its seed), ``max_batches``
    and transform, over the remaining examples; the validation loader has the same batch size,
    ``max_batches`` and transform, unshuffled.
    """
    if not isinstance(train_iter, TensorLoader):
        raise TypeError(f"validation_split needs a TensorLoader (lrlab's loaders return them); got {type(train_iter).__name__}")
    n = train_iter.X.shape[0]
    if isinstance(num_valid, bool) or not isinstance(num_valid, int) or not 1 <= num_valid < n:
        raise ValueError(f"num_valid must be an int in 1..{n - 1} (the loader holds {n} examples); got {num_valid!r}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(train_iter.X.device)
    keep, held = order[num_valid:].sort().values, order[:num_valid].sort().values
    common = dict(batch_size=train_iter.batch_size, max_batches=train_iter.max_batches, transform=train_iter.transform)
    train = TensorLoader(train_iter.X[keep], train_iter.y[keep], shuffle=train_iter.shuffle, seed=train_iter.seed, **common)
    valid = TensorLoader(train_iter.X[held], train_iter.y[held], shuffle=False, **common)
    return train, valid
