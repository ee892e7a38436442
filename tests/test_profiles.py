"""Run profiles: parsing LRLAB_PROFILE, the settings table, epoch scaling, data chosen per profile, banners."""

import dataclasses

import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

from lrlab.course import Experiment, ImprovedCNN, LeNet, SimpleModel, experiment, get_profile
from lrlab.course import profiles
from lrlab.data import MissingDataError

from test_data import mean_epoch_losses, one_thread, write_cifar, write_mnist_like  # noqa: F401 (one_thread is a fixture)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """An empty data root and no real downloads: any torchvision dataset construction fails the test."""

    class Forbidden:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a test tried to download through torchvision")

    for name in ("FashionMNIST", "MNIST", "CIFAR10"):
        monkeypatch.setattr(torchvision.datasets, name, Forbidden)
    monkeypatch.setenv("LRLAB_DATA", str(tmp_path / "data"))


# ------------------------------------------------------------------------------------------------
# LRLAB_PROFILE
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [(None, "full"), ("", "full"), ("full", "full"),
                                             ("laptop", "laptop"), ("smoke", "smoke")])
def test_get_profile(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("LRLAB_PROFILE", raising=False)
    else:
        monkeypatch.setenv("LRLAB_PROFILE", value)
    assert get_profile() == expected
    assert experiment("d2l").profile == expected


@pytest.mark.parametrize("bad", ["fast", "Smoke", " full", "1"])
def test_bad_profile_names_the_variable_and_the_choices(monkeypatch, bad):
    monkeypatch.setenv("LRLAB_PROFILE", bad)
    with pytest.raises(ValueError, match="LRLAB_PROFILE") as err:
        get_profile()
    assert all(p in str(err.value) for p in ("'full'", "'laptop'", "'smoke'"))
    with pytest.raises(ValueError, match="LRLAB_PROFILE"):
        experiment("d2l")


def test_unknown_experiment_and_profile_arguments():
    with pytest.raises(ValueError, match="name='resnet'"):
        experiment("resnet")
    with pytest.raises(ValueError, match="profile='tiny'"):
        experiment("d2l", profile="tiny")


# ------------------------------------------------------------------------------------------------
# The settings table
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, dataset, model, batch_size, full_epochs, laptop_epochs",
    [("d2l", "fashion_mnist", "LeNet", 256, 30, 15),
     ("warmup_multifactor", "cifar10", "SimpleModel", 128, 100, 20),
     ("mnist_cnn", "mnist", "ImprovedCNN", 64, 10, 5)],
)
def test_settings_per_profile(name, dataset, model, batch_size, full_epochs, laptop_epochs):
    full, laptop, smoke = (experiment(name, p) for p in ("full", "laptop", "smoke"))
    for exp in (full, laptop, smoke):
        assert (exp.name, exp.dataset, exp.model, exp.batch_size, exp.full_num_epochs) == (
            name, dataset, model, batch_size, full_epochs)
    assert (full.num_epochs, full.max_batches) == (full_epochs, None)
    assert (laptop.num_epochs, laptop.max_batches) == (laptop_epochs, None)
    assert (smoke.num_epochs, smoke.max_batches) == (2, 20)


def test_experiment_is_frozen():
    exp = experiment("d2l", "full")
    assert isinstance(exp, Experiment)
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.num_epochs = 3


def test_make_model():
    assert type(experiment("d2l", "smoke").make_model()) is LeNet
    assert type(experiment("warmup_multifactor", "smoke").make_model()) is SimpleModel
    net = experiment("mnist_cnn", "full").make_model(batch_norm=True, dropout=0.1)
    assert type(net) is ImprovedCNN and net.batch_norm and net.dropout.p == 0.1


# ------------------------------------------------------------------------------------------------
# Epoch scaling
# ------------------------------------------------------------------------------------------------


def test_epochs_identity_in_full():
    exp = experiment("warmup_multifactor", "full")
    assert [exp.epochs(n) for n in (0, 1, 5, 30, 80, 100, 250)] == [0, 1, 5, 30, 80, 100, 250]


def test_epochs_worked_by_hand():
    laptop = experiment("warmup_multifactor", "laptop")  # 100 -> 20 epochs: factor 1/5
    # 5 * 0.2 = 1; 30 * 0.2 = 6; 80 * 0.2 = 16; 2 * 0.2 = 0.4 -> 0 -> at least 1; 12 * 0.2 = 2.4 -> 2; 13 * 0.2 = 2.6 -> 3
    assert [laptop.epochs(n) for n in (0, 5, 30, 80, 100, 2, 12, 13)] == [0, 1, 6, 16, 20, 1, 2, 3]
    d2l_laptop = experiment("d2l", "laptop")  # 30 -> 15: factor 1/2, halves round up
    assert [d2l_laptop.epochs(n) for n in (15, 30, 5, 1, 3)] == [8, 15, 3, 1, 2]
    smoke = experiment("d2l", "smoke")  # 30 -> 2
    assert [smoke.epochs(n) for n in (1, 7, 8, 15, 22, 23, 30)] == [1, 1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize("bad", [-1, 2.5, "10", True, None])
def test_epochs_bad_argument(bad):
    with pytest.raises(ValueError, match=r"epochs\(n\)"):
        experiment("d2l", "laptop").epochs(bad)


@given(name=st.sampled_from(sorted(profiles.FULL)), profile=st.sampled_from(profiles.PROFILES),
       n=st.integers(0, 500), k=st.integers(0, 500))
def test_epochs_properties(name, profile, n, k):
    exp = experiment(name, profile)
    assert exp.epochs(exp.full_num_epochs) == exp.num_epochs
    assert (exp.epochs(n) >= 1) == (n >= 1)
    if n <= k:
        assert exp.epochs(n) <= exp.epochs(k)  # milestones keep their order
    if n <= exp.full_num_epochs:
        assert exp.epochs(n) <= exp.num_epochs


# ------------------------------------------------------------------------------------------------
# Data per profile
# ------------------------------------------------------------------------------------------------


def test_smoke_without_files_uses_synthetic_data(tmp_path):
    exp = experiment("d2l", "smoke")
    assert not exp.uses_real_data()
    train_iter, test_iter = exp.load_data()
    assert (train_iter.num_examples, test_iter.num_examples) == exp.synthetic_sizes() == (20 * 256, 4 * 256)
    assert len(train_iter) == 20 and len(test_iter) == 4
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and 0 <= X.min() and X.max() <= 1
    banner = exp.banner()
    assert "'smoke'" in banner and "synthetic" in banner and "Fashion-MNIST" in banner
    assert "5,120 train / 1,024 test" in banner and "2 epochs (full run: 30)" in banner


def test_smoke_synthetic_is_deterministic():
    exp = experiment("mnist_cnn", "smoke")
    (a, _), (b, _) = exp.load_data(), exp.load_data()
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    c, _ = exp.load_data(seed=1)  # another shuffling seed: same stand-in data, another order
    assert torch.equal(c.X, a.X) and torch.equal(c.y, a.y)
    assert not torch.equal(next(iter(c))[1], next(iter(a))[1])


@pytest.mark.parametrize("name, shape", [("warmup_multifactor", (3, 32, 32)), ("mnist_cnn", (1, 28, 28))])
def test_smoke_synthetic_shapes(name, shape):
    exp = experiment(name, "smoke")
    X, y = next(iter(exp.load_data()[0]))
    assert X.shape == (exp.batch_size, *shape) and set(y.tolist()) <= set(range(10))
    assert exp.make_model()(X).shape == (exp.batch_size, 10)


def test_smoke_with_real_files_reads_them_capped_and_never_downloads(tmp_path):
    _, _, Xte, _ = write_mnist_like(tmp_path / "data", folder="MNIST", n_train=2000, n_test=1500)
    exp = experiment("mnist_cnn", "smoke")
    assert exp.uses_real_data()
    train_iter, test_iter = exp.load_data()
    assert len(train_iter) == 20 and train_iter.X.shape[0] == 2000
    X, _ = next(iter(test_iter))
    assert torch.allclose(X.squeeze(1), (torch.from_numpy(Xte[:64]).float() / 255 - 0.1307) / 0.3081, atol=1e-6)
    banner = exp.banner()
    assert "real files" in banner and "synthetic" not in banner and "at most 20 batches of 64" in banner


def test_full_profile_reads_real_files_uncapped(tmp_path):
    write_cifar(tmp_path / "data", per_batch=30, n_test=40)
    exp = experiment("warmup_multifactor", "full")
    train_iter, test_iter = exp.load_data()
    assert (train_iter.num_examples, test_iter.num_examples) == (150, 40)
    assert len(train_iter) == 2 and train_iter.max_batches is None
    assert exp.banner() == ("lrlab profile 'full': SimpleModel on CIFAR-10 (real files; 50,000 train / 10,000 test "
                            "images, 3x32x32, 10 classes; pixels scaled to [0, 1], then normalised with mean "
                            "(0.5, 0.5, 0.5) and std (0.5, 0.5, 0.5)); 100 epochs, batch size 128.")
    assert "10 classes; pixels scaled to [0, 1]);" in experiment("d2l", "full").banner()


def test_full_profile_downloads_missing_files_and_reports_failure(tmp_path, monkeypatch):
    calls = []

    class Offline:
        def __init__(self, root, train=True, download=False, **kwargs):
            calls.append(download)
            raise RuntimeError("Error downloading t10k-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    exp = experiment("d2l", "laptop")
    assert exp.uses_real_data()  # full and laptop always mean the real dataset
    with pytest.raises(MissingDataError, match="no network"):
        exp.load_data()
    assert calls == [True]
    assert "15 epochs (full run: 30)" in exp.banner()


# ------------------------------------------------------------------------------------------------
# Smoke runs learn: the loss visibly falls within the two small epochs
# ------------------------------------------------------------------------------------------------


def smoke_epoch_losses(exp, optimizer):
    torch.manual_seed(0)
    net = exp.make_model()
    train_iter, _ = exp.load_data()
    return mean_epoch_losses(net, optimizer(net.parameters()), train_iter, exp.num_epochs)


@pytest.mark.parametrize(
    "name, optimizer, ratio",
    [("d2l", lambda p: torch.optim.SGD(p, lr=0.3), 0.99),  # LeNet + SGD 0.3, as in the d2l section: slow start
     ("warmup_multifactor", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), 0.5),
     ("mnist_cnn", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), 0.5)],
)
def test_smoke_loss_falls(name, optimizer, ratio):
    first, second = smoke_epoch_losses(experiment(name, "smoke"), optimizer)
    assert second < ratio * first
