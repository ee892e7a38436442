"""lrlab.data: readers, loaders, root resolution, errors, downloads, agreement with d2l and torchvision.

No test touches the network: the IDX files and CIFAR-10 pickle batches are written here, in
tmp_path, by a writer independent of lrlab's reader (the format as documented by LeCun et al.);
downloads are exercised with fake torchvision dataset classes.
"""

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms
from torchvision.datasets.mnist import read_image_file, read_label_file

from lrlab import TensorLoader, load_data_cifar10, load_data_fashion_mnist, load_data_mnist
from lrlab import data as lrdata
from lrlab.course.datasets import ensure_datasets
from lrlab.data import CorruptDataError, MissingDataError, PixelTransform

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MNIST" / "raw"

# ------------------------------------------------------------------------------------------------
# Writing small datasets in torchvision's layout
# ------------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def make_images(n, seed, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


def write_mnist_like(root: Path, folder="FashionMNIST", n_train=300, n_test=100, compress=False, seed=0):
    """Write train and test IDX files under root/folder/raw; return the four arrays."""
    raw = root / folder / "raw"
    Xtr, ytr = make_images(n_train, seed)
    Xte, yte = make_images(n_test, seed + 1)
    write_idx(raw / "train-images-idx3-ubyte", Xtr, compress)
    write_idx(raw / "train-labels-idx1-ubyte", ytr, compress)
    write_idx(raw / "t10k-images-idx3-ubyte", Xte, compress)
    write_idx(raw / "t10k-labels-idx1-ubyte", yte, compress)
    return Xtr, ytr, Xte, yte


def write_cifar(root: Path, per_batch=12, n_test=20, seed=0):
    """Tiny CIFAR-10 python batches (same dict layout as the real ones); return (X_train, y_train, X_test, y_test)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    parts = []
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
        parts.append((data, labels))
    Xtr = np.concatenate([d for d, _ in parts[:5]])
    ytr = sum((lab for _, lab in parts[:5]), [])
    return Xtr, np.array(ytr), parts[5][0], np.array(parts[5][1])


def concat(loader):
    Xs, ys = zip(*loader)
    return torch.cat(Xs), torch.cat(ys)


@pytest.fixture
def one_thread():
    """Run on one CPU thread: the losses then do not depend on the machine's core count (the order of
    floating-point reductions does), and a busy machine does not slow the test down 20-fold (measured:
    1.4 s on one thread against 31 s on two while other jobs held the 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real torchvision download in these tests is a bug: make the classes explode unless a test fakes them."""

    class Forbidden:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a test tried to download through torchvision")

    for name in ("FashionMNIST", "MNIST", "CIFAR10"):
        monkeypatch.setattr(torchvision.datasets, name, Forbidden)


# ------------------------------------------------------------------------------------------------
# Readers
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_agrees_with_torchvision_readers(tmp_path, compress):
    X, y = make_images(17, seed=3)
    pi = write_idx(tmp_path / "img", X, compress)
    pl = write_idx(tmp_path / "lab", y, compress)
    ours_X, ours_y = lrdata.read_idx(pi), lrdata.read_idx(pl)
    assert ours_X.dtype == torch.uint8 and ours_X.shape == (17, 28, 28)
    assert np.array_equal(ours_X.numpy(), X) and np.array_equal(ours_y.numpy(), y)
    if not compress:
        assert torch.equal(ours_X, read_image_file(str(pi)))
        assert torch.equal(ours_y.long(), read_label_file(str(pl)))


def test_truncated_idx_names_the_file_and_the_sizes(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", make_images(5, 0)[0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDataError, match="t10k-images-idx3-ubyte") as err:
        lrdata.read_idx(path)
    # header 16 bytes + 5*28*28 = 3,936 bytes announced; 100 cut off
    assert "truncated" in str(err.value) and "3,836 bytes" in str(err.value) and "3,936 bytes" in str(err.value)


@pytest.mark.parametrize("payload", [b"", b"\x00\x00", b"PK\x03\x04junkjunk", b"\x00\x00\x0d\x03" + bytes(12)])
def test_not_an_idx_file(tmp_path, payload):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(CorruptDataError, match="train-labels-idx1-ubyte"):
        lrdata.read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", make_images(50, 0)[0], compress=True)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte\.gz"):
        lrdata.read_idx(path)


def test_read_cifar_batch_layout(tmp_path):
    Xtr, ytr, _, _ = write_cifar(tmp_path)
    X, y = lrdata.read_cifar_batch(tmp_path / "cifar-10-batches-py" / "data_batch_1")
    assert X.shape == (12, 3, 32, 32) and X.dtype == torch.uint8 and y.dtype == torch.int64
    # row i holds the red plane, then green, then blue, each row-major: data[i, c*1024 + h*32 + w]
    i, c, h, w = 5, 2, 7, 30
    assert X[i, c, h, w].item() == Xtr[i, c * 1024 + h * 32 + w]
    assert y.tolist() == ytr[:12].tolist()


def test_truncated_cifar_batch_names_the_file(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptDataError, match="data_batch_3"):
        lrdata.read_cifar_batch(path)


def test_cifar_batch_with_wrong_content(tmp_path):
    path = tmp_path / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, f)
    with pytest.raises(CorruptDataError, match="test_batch"):
        lrdata.read_cifar_batch(path)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data (the genuine MNIST test split) is absent")
def test_genuine_mnist_test_split_reads_to_its_published_checksums():
    X = lrdata.read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    y = lrdata.read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    header_X = bytes([0, 0, 8, 3]) + struct.pack(">III", 10000, 28, 28)
    header_y = bytes([0, 0, 8, 1]) + struct.pack(">I", 10000)
    # sha256 of the decompressed files, from ../shared/data/README.md
    assert hashlib.sha256(header_X + X.numpy().tobytes()).hexdigest().startswith("0fa7898d509279e4")
    assert hashlib.sha256(header_y + y.numpy().tobytes()).hexdigest().startswith("ff7bcfd416de3373")
    assert torch.bincount(y.long()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------------------------------------
# Loaders: shapes, dtypes, values
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_values_are_to_tensor(tmp_path, compress):
    Xtr, ytr, Xte, yte = write_mnist_like(tmp_path, compress=compress)
    train_iter, test_iter = load_data_fashion_mnist(64, root=tmp_path, download=False)
    X, y = next(iter(train_iter))
    assert X.shape == (64, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    X_all, y_all = concat(test_iter)
    assert X_all.shape == (100, 1, 28, 28)
    assert torch.equal(X_all, torch.from_numpy(Xte).unsqueeze(1).float() / 255)  # ToTensor: uint8 / 255
    assert y_all.tolist() == yte.tolist()
    assert len(train_iter) == 5 and len(test_iter) == 2  # ceil(300/64), ceil(100/64)


def test_mnist_values_are_normalize_of_to_tensor(tmp_path):
    _, _, Xte, yte = write_mnist_like(tmp_path, folder="MNIST")
    train_iter, test_iter = load_data_mnist(32, root=tmp_path, download=False)
    X_all, y_all = concat(test_iter)
    hand = (torch.from_numpy(Xte).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(X_all.squeeze(1), hand, atol=1e-6)
    torchvision_pipeline = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    for i in (0, 1, 57, 99):
        assert torch.equal(X_all[i], torchvision_pipeline(Image.fromarray(Xte[i], mode="L")))
    assert y_all.tolist() == yte.tolist()
    assert next(iter(train_iter))[0].shape == (32, 1, 28, 28)


def test_cifar10_values_shapes_and_normalisation(tmp_path):
    Xtr, ytr, Xte, yte = write_cifar(tmp_path)
    train_iter, test_iter = load_data_cifar10(16, root=tmp_path, download=False)
    X_all, y_all = concat(test_iter)
    assert X_all.shape == (20, 3, 32, 32) and X_all.dtype == torch.float32
    assert -1.0 <= X_all.min() and X_all.max() <= 1.0
    hand = torch.from_numpy(Xte).float().view(20, 3, 32, 32) / 255 * 2 - 1
    assert torch.allclose(X_all, hand, atol=1e-6)
    assert y_all.tolist() == yte.tolist()
    Xt, yt = concat(train_iter)
    assert Xt.shape == (60, 3, 32, 32) and sorted(yt.tolist()) == sorted(ytr.tolist())


def test_train_iter_covers_the_training_set_once_per_epoch_shuffled(tmp_path):
    Xtr, ytr, _, _ = write_mnist_like(tmp_path)
    train_iter, _ = load_data_fashion_mnist(64, root=tmp_path, download=False, seed=5)
    X1, _ = concat(train_iter)
    X2, _ = concat(train_iter)
    reference = torch.from_numpy(Xtr).unsqueeze(1).float() / 255
    assert not torch.equal(X1, reference)  # shuffled
    assert not torch.equal(X1, X2)  # a new order each epoch
    key = lambda X: sorted(map(bytes, (X * 255).round().to(torch.uint8).flatten(1).numpy()))
    assert key(X1) == key(reference) == key(X2)
    again, _ = load_data_fashion_mnist(64, root=tmp_path, download=False, seed=5)
    assert torch.equal(concat(again)[0], X1)  # same seed, same batches


def test_resize_matches_pil_resize_then_to_tensor(tmp_path):
    _, _, Xte, _ = write_mnist_like(tmp_path, n_train=10, n_test=30)
    _, test_iter = load_data_fashion_mnist(8, resize=32, root=tmp_path, download=False)
    X_all, _ = concat(test_iter)
    assert X_all.shape == (30, 1, 32, 32)
    pipeline = transforms.Compose([transforms.Resize(32), transforms.ToTensor()])
    reference = torch.stack([pipeline(Image.fromarray(x, mode="L")) for x in Xte])
    assert torch.equal(X_all, reference)


def test_max_batches_caps_both_iterators(tmp_path):
    write_mnist_like(tmp_path)
    train_iter, test_iter = load_data_fashion_mnist(16, root=tmp_path, download=False, max_batches=3)
    assert len(train_iter) == len(list(train_iter)) == 3
    assert len(test_iter) == len(list(test_iter)) == 3


def test_explicit_device_cpu(tmp_path):
    write_mnist_like(tmp_path)
    train_iter, test_iter = load_data_fashion_mnist(16, root=tmp_path, download=False, device="cpu")
    assert train_iter.device == test_iter.device == torch.device("cpu")
    assert next(iter(train_iter))[0].device == torch.device("cpu")


@pytest.mark.parametrize("bad", [0, -4, 2.5, "64", True])
def test_bad_batch_size_names_the_parameter(tmp_path, bad):
    write_mnist_like(tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        load_data_fashion_mnist(bad, root=tmp_path, download=False)


# ------------------------------------------------------------------------------------------------
# Agreement with d2l's loader on the same files
# ------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
@pytest.mark.parametrize("resize", [None, 32])
def test_same_tensors_as_d2l_load_data_fashion_mnist(tmp_path, monkeypatch, resize):
    d2l = pytest.importorskip("d2l.torch")
    monkeypatch.undo()  # d2l must find its files without downloading: give torchvision back its classes
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive",
                        lambda *a, **k: pytest.fail("d2l tried to download"))
    data_dir = tmp_path / "data"  # d2l reads "../data", relative to the current directory
    _, ytr, _, yte = write_mnist_like(data_dir, n_train=200, n_test=90)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    d2l_train, d2l_test = d2l.load_data_fashion_mnist(32, resize=resize)
    ours_train, ours_test = load_data_fashion_mnist(32, resize=resize, root=data_dir, download=False)

    d2l_X, d2l_y = concat(d2l_test)  # 4 worker processes, PIL per image; test set not shuffled
    ours_X, ours_y = concat(ours_test)
    assert ours_X.dtype == d2l_X.dtype and ours_X.shape == d2l_X.shape
    assert torch.equal(ours_X, d2l_X) and torch.equal(ours_y, d2l_y)
    assert [len(b[1]) for b in ours_test] == [len(b[1]) for b in d2l_test]

    # training sets: both shuffled differently, so compare as sorted collections of (label, pixels)
    def rows(loader):
        X, y = concat(loader)
        return sorted(zip(y.tolist(), map(bytes, X.flatten(1).numpy())))

    assert rows(ours_train) == rows(d2l_train)
    assert len(ours_train) == len(d2l_train)


# ------------------------------------------------------------------------------------------------
# Where the data live
# ------------------------------------------------------------------------------------------------


def test_root_argument_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_DATA", str(tmp_path / "env"))
    assert lrdata.data_root(tmp_path / "arg") == tmp_path / "arg"


def test_environment_wins_over_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lrdata.data_root() == tmp_path / "env"


def test_cache_folder_is_xdg_then_home_never_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("LRLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lrdata.data_root() == tmp_path / "xdg" / "lrlab"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert lrdata.data_root() == tmp_path / "home" / ".cache" / "lrlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    root = lrdata.data_root()
    assert root == tmp_path / "home" / ".cache" / "lrlab" and root.is_absolute()


def test_loader_reads_from_lrlab_data(tmp_path, monkeypatch):
    _, _, Xte, _ = write_mnist_like(tmp_path / "env")
    monkeypatch.setenv("LRLAB_DATA", str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    _, test_iter = load_data_fashion_mnist(50, download=False)
    assert torch.equal(concat(test_iter)[0], torch.from_numpy(Xte).unsqueeze(1).float() / 255)


def test_files_present(tmp_path):
    assert not lrdata.files_present("fashion_mnist", tmp_path)
    write_mnist_like(tmp_path, compress=True)
    assert lrdata.files_present("fashion_mnist", tmp_path)
    assert not lrdata.files_present("mnist", tmp_path)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert not lrdata.files_present("fashion_mnist", tmp_path)


# ------------------------------------------------------------------------------------------------
# Missing files, downloads, corrupt files
# ------------------------------------------------------------------------------------------------


def test_missing_file_without_download_names_file_and_fixes(tmp_path):
    write_mnist_like(tmp_path)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MissingDataError) as err:
        load_data_fashion_mnist(10, root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte") in message
    assert "LRLAB_DATA" in message and "LRLAB_PROFILE=smoke" in message


def test_smoke_profile_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_PROFILE", "smoke")
    with pytest.raises(MissingDataError, match="smoke"):  # the autouse fixture fails any download attempt
        load_data_mnist(10, root=tmp_path)


def test_corrupt_file_on_disk_is_named(tmp_path):
    write_mnist_like(tmp_path, folder="MNIST")
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CorruptDataError, match="train-images-idx3-ubyte"):
        load_data_mnist(10, root=tmp_path, download=False)


def test_images_and_labels_of_different_lengths(tmp_path):
    write_mnist_like(tmp_path)
    write_idx(tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(99, np.uint8))
    with pytest.raises(CorruptDataError, match="t10k-images-idx3-ubyte"):
        load_data_fashion_mnist(10, root=tmp_path, download=False)


def test_labels_out_of_range(tmp_path):
    write_mnist_like(tmp_path)
    write_idx(tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte", np.full(100, 12, np.uint8))
    with pytest.raises(CorruptDataError, match="labels outside 0..9"):
        load_data_fashion_mnist(10, root=tmp_path, download=False)


def fake_torchvision_class(behaviour):
    """A stand-in for torchvision.datasets.FashionMNIST: writes (or breaks) files the way a download would."""

    class Fake:
        calls = []

        def __init__(self, root, train=True, download=False, **kwargs):
            Fake.calls.append(Path(root))
            assert download
            if behaviour == "offline":
                raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got: "
                                   "<urlopen error [Errno -3] Temporary failure in name resolution>")
            write_mnist_like(Path(root), compress=False, seed=11)
            if behaviour == "truncated":
                path = Path(root) / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
                path.write_bytes(path.read_bytes()[:-1])

    return Fake


def listing(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_download_failure_names_file_and_leaves_nothing(tmp_path, monkeypatch):
    Fake = fake_torchvision_class("offline")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Fake)
    root = tmp_path / "cache"
    with pytest.raises(MissingDataError) as err:
        load_data_fashion_mnist(10, root=root, download=True)
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and "name resolution" in message and "LRLAB_DATA" in message
    assert Fake.calls and Fake.calls[0].parent == root  # downloaded into a temporary folder inside the root
    assert listing(root) == []  # the temporary folder is gone, nothing half-written


def test_download_success_moves_verified_files_into_place(tmp_path, monkeypatch):
    Fake = fake_torchvision_class("ok")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Fake)
    root = tmp_path / "cache"
    train_iter, test_iter = load_data_fashion_mnist(10, root=root, download=True)
    assert listing(root) == ["FashionMNIST", "FashionMNIST/raw"] + sorted(
        f"FashionMNIST/raw/{n}" for n in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                          "train-images-idx3-ubyte", "train-labels-idx1-ubyte"])
    assert train_iter.num_examples == 300 and test_iter.num_examples == 100
    # second call: files present, no download
    load_data_fashion_mnist(10, root=root, download=True)
    assert len(Fake.calls) == 1


def test_download_of_a_corrupt_file_moves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_torchvision_class("truncated"))
    root = tmp_path / "cache"
    with pytest.raises(CorruptDataError, match="t10k-images-idx3-ubyte"):
        load_data_fashion_mnist(10, root=root, download=True)
    assert listing(root) == []


# ------------------------------------------------------------------------------------------------
# TensorLoader
# ------------------------------------------------------------------------------------------------


def epoch_indices(loader):
    return torch.cat([y for _, y in loader]).tolist()


def test_unshuffled_loader_keeps_order_and_batch_sizes():
    loader = TensorLoader(torch.arange(10).float().view(10, 1), torch.arange(10), batch_size=4)
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(loader) == 3 and loader.num_examples == 10
    assert torch.equal(batches[0][0].squeeze(1), torch.tensor([0.0, 1, 2, 3]))


def test_seeded_shuffle_is_deterministic_and_differs_between_epochs_and_seeds():
    X, y = torch.zeros(50, 2), torch.arange(50)
    a, b = TensorLoader(X, y, 8, shuffle=True, seed=3), TensorLoader(X, y, 8, shuffle=True, seed=3)
    first_a, first_b = epoch_indices(a), epoch_indices(b)
    assert first_a == first_b and epoch_indices(a) == epoch_indices(b)
    assert first_a != list(range(50))
    assert epoch_indices(a) != first_a
    assert epoch_indices(TensorLoader(X, y, 8, shuffle=True, seed=4)) != first_a


def test_unseeded_shuffle_follows_torch_manual_seed():
    X, y = torch.zeros(30, 1), torch.arange(30)
    torch.manual_seed(0)
    first = epoch_indices(TensorLoader(X, y, 7, shuffle=True))
    torch.manual_seed(0)
    assert epoch_indices(TensorLoader(X, y, 7, shuffle=True)) == first


def test_max_batches_and_len():
    X, y = torch.zeros(100, 1), torch.arange(100)
    loader = TensorLoader(X, y, 30, max_batches=2)
    assert len(loader) == 2 and loader.num_examples == 60 and epoch_indices(loader) == list(range(60))
    assert len(TensorLoader(X, y, 30, max_batches=10)) == 4
    assert TensorLoader(X, y, 30, max_batches=10).num_examples == 100


def test_transform_is_applied_per_batch():
    X = torch.tensor([[0], [255], [51]], dtype=torch.uint8)
    loader = TensorLoader(X.view(3, 1, 1, 1), torch.arange(3), 2, transform=PixelTransform())
    assert torch.equal(torch.cat([b for b, _ in loader]).flatten(), torch.tensor([0.0, 1.0, 0.2]))  # float32 0.2


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(batch_size=0), "batch_size"), (dict(batch_size=2.0), "batch_size"),
     (dict(batch_size=2, max_batches=0), "max_batches"), (dict(batch_size=2, max_batches=1.5), "max_batches")],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TensorLoader(torch.zeros(4, 1), torch.zeros(4), **kwargs)


def test_mismatched_or_empty_tensors():
    with pytest.raises(ValueError, match="same first dimension"):
        TensorLoader(torch.zeros(4, 1), torch.zeros(5), 2)
    with pytest.raises(ValueError, match="empty"):
        TensorLoader(torch.zeros(0, 1), torch.zeros(0), 2)
    with pytest.raises(TypeError):
        TensorLoader(np.zeros((4, 1)), torch.zeros(4), 2)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 64), seed=st.integers(0, 2**31), shuffle=st.booleans(),
       max_batches=st.one_of(st.none(), st.integers(1, 20)))
def test_each_index_at_most_once_per_epoch_and_all_without_cap(n, batch_size, seed, shuffle, max_batches):
    loader = TensorLoader(torch.arange(n).view(n, 1), torch.arange(n), batch_size, shuffle=shuffle, seed=seed,
                          max_batches=max_batches)
    for _ in range(2):
        batches = list(loader)
        seen = torch.cat([y for _, y in batches]).tolist()
        assert len(batches) == len(loader) == min(-(-n // batch_size), max_batches or n)
        assert len(seen) == len(set(seen)) == loader.num_examples
        assert all(len(y) == batch_size for _, y in batches[:-1])
        assert all(torch.equal(X.flatten(), y) for X, y in batches)  # X and y stay paired
        if max_batches is None:
            assert sorted(seen) == list(range(n))


# ------------------------------------------------------------------------------------------------
# Synthetic stand-in data
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset, shape", [("fashion_mnist", (1, 28, 28)), ("mnist", (1, 28, 28)),
                                            ("cifar10", (3, 32, 32))])
def test_synthetic_shapes_balance_and_determinism(dataset, shape):
    Xtr, ytr, Xte, yte = lrdata.synthetic_dataset(dataset, 200, 50, seed=1)
    assert Xtr.shape == (200, *shape) and Xte.shape == (50, *shape) and Xtr.dtype == torch.uint8
    assert ytr.dtype == torch.int64 and torch.bincount(ytr).tolist() == [20] * 10
    again = lrdata.synthetic_dataset(dataset, 200, 50, seed=1)
    assert all(torch.equal(a, b) for a, b in zip((Xtr, ytr, Xte, yte), again))
    assert not torch.equal(Xtr, lrdata.synthetic_dataset(dataset, 200, 50, seed=2)[0])


def mean_epoch_losses(net, trainer, train_iter, num_epochs):
    """A plain training loop (independent of lrlab.train): the mean batch loss of each epoch."""
    loss = torch.nn.CrossEntropyLoss()
    means = []
    for _ in range(num_epochs):
        values = []
        for X, y in train_iter:
            value = loss(net(X), y)
            trainer.zero_grad()
            value.backward()
            trainer.step()
            values.append(value.item())
        means.append(sum(values) / len(values))
    return means


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist", "cifar10"])
def test_synthetic_classes_are_learnable_by_softmax_regression(dataset):
    """A linear classifier trained for 2 epochs of 20 batches: loss falls and test accuracy is far above chance."""
    torch.manual_seed(0)
    train_iter, test_iter = lrdata.load_synthetic(dataset, 64, 1280, 512, seed=0, device="cpu")
    n_in = train_iter.X[0].numel()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_in, 10))
    epoch_losses = mean_epoch_losses(net, torch.optim.SGD(net.parameters(), lr=0.01), train_iter, 2)
    with torch.no_grad():
        X, y = concat(test_iter)
        accuracy = (net(X).argmax(1) == y).float().mean().item()
    assert epoch_losses[1] < 0.5 * epoch_losses[0]
    assert accuracy > 0.9


def test_synthetic_bad_sizes():
    with pytest.raises(ValueError, match="num_train"):
        lrdata.synthetic_dataset("mnist", 0, 10)
    with pytest.raises(ValueError, match="dataset='svhn'"):
        lrdata.synthetic_dataset("svhn", 10, 10)


# ------------------------------------------------------------------------------------------------
# Where the tensors are kept: the training device when they fit (GPU faked here)
# ------------------------------------------------------------------------------------------------


def test_storage_device_is_the_gpu_when_the_data_take_at_most_half_its_free_memory(monkeypatch):
    monkeypatch.setattr(lrdata, "try_gpu", lambda: torch.device("cuda:0"))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 4000))
    assert lrdata._storage_device(500, None) == torch.device("cuda:0")
    assert lrdata._storage_device(501, None) == torch.device("cpu")
    assert lrdata._storage_device(10**9, "cpu") == torch.device("cpu")  # an explicit device wins


def test_storage_device_cpu_machine(monkeypatch):
    monkeypatch.setattr(lrdata, "try_gpu", lambda: torch.device("cpu"))
    assert lrdata._storage_device(10**12, None) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA to provoke the failure")
def test_failed_move_to_the_gpu_falls_back_to_cpu_unless_asked_for(monkeypatch):
    tensors = lrdata.synthetic_dataset("mnist", 20, 10)
    monkeypatch.setattr(lrdata, "_storage_device", lambda nbytes, device: torch.device("cuda:0"))
    train_iter, test_iter = lrdata.make_loaders(*tensors, 8)
    assert train_iter.device == test_iter.device == torch.device("cpu")
    with pytest.raises(RuntimeError):
        lrdata.make_loaders(*tensors, 8, device="cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_loaders_keep_the_data_there(tmp_path):
    write_mnist_like(tmp_path)
    train_iter, test_iter = load_data_fashion_mnist(64, root=tmp_path, download=False)
    X, y = next(iter(train_iter))
    assert X.device.type == y.device.type == "cuda" and test_iter.device.type == "cuda"
    X_all, _ = concat(test_iter)
    Xte_ref = lrdata.load_dataset_tensors("fashion_mnist", tmp_path, download=False)[2]
    assert torch.equal(X_all.cpu(), Xte_ref.float() / 255)


def test_download_goes_through_the_real_torchvision_class(tmp_path, monkeypatch):
    """torchvision.datasets.FashionMNIST itself runs; only its network fetch is replaced by local bytes."""
    monkeypatch.undo()  # the real classes again
    rng = np.random.default_rng(5)
    served = {"train-images-idx3-ubyte": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 40, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (15, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 15, dtype=np.uint8)}
    fetched = []

    def fake_fetch(url, download_root, filename=None, md5=None, **kwargs):
        fetched.append(url)
        name = filename[: -len(".gz")]
        Path(download_root, filename).write_bytes(gzip.compress(idx_bytes(served[name])))
        Path(download_root, name).write_bytes(idx_bytes(served[name]))

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", fake_fetch)
    root = tmp_path / "cache"
    train_iter, test_iter = load_data_fashion_mnist(8, root=root, download=True)
    assert len(fetched) == 4 and all(u.endswith(".gz") for u in fetched)
    X, y = concat(test_iter)
    assert torch.equal(X, torch.from_numpy(served["t10k-images-idx3-ubyte"]).unsqueeze(1).float() / 255)
    assert train_iter.num_examples == 40
    names = sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir())
    assert names == sorted(list(served) + [n + ".gz" for n in served])  # torchvision's own layout
    assert [p.name for p in root.iterdir()] == ["FashionMNIST"]  # no temporary folder left
    # torchvision's class now finds the files lrlab put there, without downloading
    assert len(torchvision.datasets.FashionMNIST(str(root), train=False)) == 15


# ------------------------------------------------------------------------------------------------
# Validation split
# ------------------------------------------------------------------------------------------------


def test_validation_split_holds_out_a_seeded_disjoint_subset():
    X = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 1, 2, 2).contiguous()
    y = torch.arange(100) % 10
    loader = lrdata.TensorLoader(X, y, 16, shuffle=True, seed=3, max_batches=5, transform=lrdata.PixelTransform())
    train, valid = lrdata.validation_split(loader, 20, seed=1)
    ids_train = {int(v) for v in train.X[:, 0, 0, 0]}
    ids_valid = {int(v) for v in valid.X[:, 0, 0, 0]}
    assert len(ids_valid) == 20 and len(ids_train) == 80 and ids_train | ids_valid == set(range(100))
    assert torch.equal(y[valid.X[:, 0, 0, 0].long()], valid.y)  # labels travel with their images
    assert (train.batch_size, train.shuffle, train.seed, train.max_batches) == (16, True, 3, 5)
    assert (valid.shuffle, valid.max_batches, valid.transform) == (False, 5, loader.transform)
    again, _ = lrdata.validation_split(loader, 20, seed=1)
    assert torch.equal(again.X, train.X)  # same seed, same hold-out
    other, _ = lrdata.validation_split(loader, 20, seed=2)
    assert not torch.equal(other.X, train.X)
    reshuffled = lrdata.TensorLoader(X, y, 16, shuffle=True, seed=99)
    assert torch.equal(lrdata.validation_split(reshuffled, 20, seed=1)[1].X, valid.X)  # independent of shuffling


@pytest.mark.parametrize("bad", [0, 100, 2.5, True])
def test_validation_split_rejects_bad_sizes(bad):
    loader = lrdata.TensorLoader(torch.zeros(100, 1), torch.zeros(100), 10)
    with pytest.raises(ValueError, match=r"num_valid must be an int in 1\.\.99"):
        lrdata.validation_split(loader, bad)
    with pytest.raises(TypeError, match="needs a TensorLoader"):
        lrdata.validation_split([(torch.zeros(1), torch.zeros(1))], 1)


# ------------------------------------------------------------------------------------------------
# Before a book build: python -m lrlab.course data
# ------------------------------------------------------------------------------------------------


def test_ensure_datasets_in_smoke_reports_and_never_downloads(tmp_path):
    write_mnist_like(tmp_path)  # Fashion-MNIST only
    report = ensure_datasets("smoke", tmp_path)
    assert report == {"cifar10": "synthetic stand-in (no files, no download)", "fashion_mnist": "real files",
                      "mnist": "synthetic stand-in (no files, no download)"}


def test_ensure_datasets_in_full_reads_every_dataset(tmp_path):
    write_mnist_like(tmp_path)
    write_mnist_like(tmp_path, folder="MNIST")
    write_cifar(tmp_path)
    report = ensure_datasets("laptop", tmp_path)
    assert set(report) == {"cifar10", "fashion_mnist", "mnist"}
    assert report["mnist"] == f"real files in {tmp_path.resolve() / 'MNIST' / 'raw'}"


def test_data_command_stops_with_the_fix_before_any_notebook(tmp_path, capsys, monkeypatch):
    from lrlab.course.__main__ import main

    write_mnist_like(tmp_path)
    write_mnist_like(tmp_path, folder="MNIST")
    monkeypatch.setattr(lrdata, "_download", lambda spec, root: (_ for _ in ()).throw(
        lrdata.MissingDataError(f"{spec.title}: no network here. Fix: run once with network access")))
    assert main(["data", "--profile", "full", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lrlab: the book cannot be built: CIFAR-10: no network here. Fix:")
    assert main(["data", "--profile", "smoke", "--root", str(tmp_path)]) == 0
    assert "lrlab: MNIST for the 'smoke' profile: real files" in capsys.readouterr().out
    assert main(["data", "--profile", "huge", "--root", str(tmp_path)]) == 1
    assert "'huge' is not a profile" in capsys.readouterr().err
    assert main(["nonsense"]) == 2


def test_files_present_by_split(tmp_path):
    write_mnist_like(tmp_path, folder="MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").unlink()
    assert not lrdata.files_present("mnist", tmp_path)
    assert lrdata.files_present("mnist", tmp_path, ["test"]) and not lrdata.files_present("mnist", tmp_path, ["train"])
    with pytest.raises(ValueError, match="splits must name"):
        lrdata.files_present("mnist", tmp_path, ["valid"])
