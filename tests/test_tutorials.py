"""The three tutorials' code as published (lrlab.tutorials), and each erratum the book states about them."""

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as S

import lrlab
from lrlab import course  # noqa: E402 (the course's models)
from lrlab.sources import tutorials
from test_data import one_thread  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------ the MNIST tutorial


def test_printed_rate_is_the_next_epochs_and_0_00025_is_never_trained_at():
    trained, printed = tutorials.trace_mnist_lrs(lambda o: S.StepLR(o, step_size=5, gamma=0.5))
    assert trained == [0.001] * 5 + [0.0005] * 5
    assert printed == [0.001] * 4 + [0.0005] * 5 + [0.00025]
    assert printed[:-1] == trained[1:]  # the line after epoch e shows the rate of epoch e + 1
    assert 0.00025 in printed and 0.00025 not in trained


def test_cosine_t_max_20_as_written_never_comes_near_zero():
    trained, printed = tutorials.trace_mnist_lrs(lambda o: S.CosineAnnealingLR(o, T_max=20))
    assert trained[-1] == pytest.approx(0.001 * (1 + math.cos(9 * math.pi / 20)) / 2, rel=1e-12)
    assert min(trained) > 0.5 * 0.001  # over 10 epochs the rate never falls below half of its start
    assert printed[-1] == 0.0005  # after epoch 10 (t = 10 = T_max / 2) the cosine is exactly half way


def test_train_prints_a_loss_line_every_100_batches():
    batches = [(torch.randn(4, 3), torch.randint(0, 2, (4,))) for _ in range(250)]
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tutorials.train(net, "cpu", batches, opt, tutorials.criterion, 1, S.StepLR(opt, 5, 0.5))
    lines = out.getvalue().splitlines()
    assert [l.split(",")[1] for l in lines[:2]] == [" Batch 100", " Batch 200"]
    assert lines[-1] == "Epoch 1, Learning Rate: 0.001000" and len(lines) == 3


def test_test_loss_is_the_mean_loss_divided_by_about_the_batch_size():
    """The tutorial's test() sums per-batch *means* and divides by the dataset size."""
    torch.manual_seed(0)
    X, y = torch.randn(1000, 1, 28, 28), torch.randint(0, 10, (1000,))
    loader = lrlab.TensorLoader(X, y, batch_size=64)  # 16 batches: 15 of 64 and one of 40
    net = course.ImprovedCNN()
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        test_loss, accuracy = tutorials.test(net, "cpu", loader)
    net.eval()
    with torch.no_grad():
        batch_means = [nn.functional.cross_entropy(net(Xb), yb).item() for Xb, yb in loader]
        true_mean = nn.functional.cross_entropy(net(X), y, reduction="sum").item() / 1000
    assert test_loss == pytest.approx(sum(batch_means) / 1000, rel=1e-12)
    assert test_loss / true_mean == pytest.approx(16 / 1000, rel=0.05)  # ~ 1 / 64 of the mean loss
    assert printed.getvalue().startswith(f"Test Loss: {test_loss:.4f}, Accuracy: {accuracy:.2f}%")
    assert accuracy == pytest.approx(100 * lrlab.evaluate_accuracy(net, loader))


def test_on_the_full_mnist_test_set_the_ratio_is_157_batches_over_10000_digits():
    # 10,000 digits in batches of 64: 157 batch means summed, divided by 10,000 (about 1/63.7).
    assert math.ceil(10_000 / 64) == 157 and 10_000 / 157 == pytest.approx(63.69, abs=0.01)


# ------------------------------------------------------------------------------------------------ the warmup tutorial


def test_warmup_setup_fails_at_the_torchvision_import():
    namespace = {"SimpleModel": course.SimpleModel}
    with pytest.raises(AttributeError, match="lr_scheduler"):
        exec(tutorials.WARMUP_SETUP, namespace)
    assert "optimizer" in namespace and "scheduler" not in namespace  # everything up to that line ran


def warmup_namespace():
    model = course.SimpleModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scheduler = lrlab.WarmupMultiFactorLR(optimizer, milestones=[50, 75], gamma=0.1, warmup_factor=0.001,
                                                 warmup_epochs=10, last_epoch=-1)
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "criterion": nn.CrossEntropyLoss(),
            "max_epochs": 1}


def test_warmup_loop_uses_a_train_loader_it_never_defines():
    assert "train_loader =" not in tutorials.WARMUP_SETUP + tutorials.WARMUP_TRAINING_LOOP
    with pytest.raises(NameError, match="train_loader"):
        exec(tutorials.WARMUP_TRAINING_LOOP, warmup_namespace())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure on a machine without CUDA")
def test_warmup_loop_calls_cuda_which_fails_without_a_gpu():
    namespace = warmup_namespace()
    namespace["train_loader"] = [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))]
    with pytest.raises((AssertionError, RuntimeError)):
        exec(tutorials.WARMUP_TRAINING_LOOP, namespace)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_warmup_loop_feeds_gpu_inputs_to_a_cpu_model():  # pragma: no cover - GPU machines only
    namespace = warmup_namespace()
    namespace["train_loader"] = [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))]
    with pytest.raises(RuntimeError):
        exec(tutorials.WARMUP_TRAINING_LOOP, namespace)


def test_warmup_loop_never_evaluates_on_test_data():
    loop = tutorials.WARMUP_TRAINING_LOOP
    assert "eval()" not in loop and "no_grad" not in loop and "test" not in loop


def test_warmup_rates_rise_and_after_epoch_75_are_a_hundredth_of_the_base():
    """The tutorial says the warmup goes from 0.01 to 1e-5 and that both cuts give 0.1x the initial rate."""
    lrs = lrlab.trace_scheduler(lambda o: lrlab.WarmupMultiFactorLR(o, [50, 75], 0.1, 0.001, 10), 100,
                                lr=0.01)
    assert lrs[0] == pytest.approx(1e-5) and lrs[10] == pytest.approx(0.01) and np.all(np.diff(lrs[:11]) > 0)
    assert lrs[50] == pytest.approx(0.1 * 0.01) and lrs[74] == pytest.approx(0.1 * 0.01)
    assert lrs[75] == pytest.approx(0.01 * 0.01) and lrs[99] == pytest.approx(0.01 * 0.01)


# ------------------------------------------------------------------------------------------------ the poly tutorial


def test_poly_listing_is_a_syntax_error_on_its_def_line():
    with pytest.raises(SyntaxError) as err:
        compile(tutorials.POLY_HELPER_LISTING, "tutorial", "exec")
    assert err.value.lineno == 1 and "expected ':'" in err.value.msg
    fixed = tutorials.POLY_HELPER_LISTING.replace("power)\n", "power):\n", 1)
    namespace = {}
    exec(compile(fixed, "fixed", "exec"), namespace)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.005)
    assert namespace["adjust_learning_rate_poly"](opt, 30, 100, 0.005, 0.9) == \
        tutorials.adjust_learning_rate_poly(opt, 30, 100, 0.005, 0.9)


def test_corrected_poly_helper_equals_poly_scheduler_and_writes_every_group():
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.0005}], lr=0.005)
    ours = lrlab.PolyScheduler(100, base_lr=0.005, power=0.9)
    for t in range(101):
        lr = tutorials.adjust_learning_rate_poly(opt, t, 100, 0.005, 0.9)
        assert lr == pytest.approx(ours(t), rel=1e-12, abs=1e-300)
        assert [g["lr"] for g in opt.param_groups] == [lr, lr]  # one rate for all groups


def test_poly_tutorial_torch_formulas_compound():
    """The tutorial writes StepLR as lr = lr * gamma ^ floor(epoch / step_size) and ExponentialLR as
    lr = lr * gamma ** epoch. Applied each epoch, as updates, they compound; PyTorch's rates do not."""
    base, gamma, s = 0.1, 0.5, 3
    lr_step, lr_exp = base, base
    step_as_written, exp_as_written = [], []
    for epoch in range(10):
        step_as_written.append(lr_step)
        exp_as_written.append(lr_exp)
        lr_step = lr_step * gamma ** math.floor((epoch + 1) / s)
        lr_exp = lr_exp * gamma ** (epoch + 1)
    step_torch = lrlab.trace_scheduler(lambda o: S.StepLR(o, step_size=s, gamma=gamma), 10, lr=base)
    exp_torch = lrlab.trace_scheduler(lambda o: S.ExponentialLR(o, gamma=gamma), 10, lr=base)
    assert not np.allclose(step_as_written, step_torch) and not np.allclose(exp_as_written, exp_torch)
    # as written, ExponentialLR's exponent adds up to t (t + 1) / 2
    assert exp_as_written[4] == pytest.approx(base * gamma ** (4 * 5 / 2))
    assert exp_torch[4] == pytest.approx(base * gamma ** 4)


def test_poly_tutorial_small_gammas_exhaust_exponential_lr():
    """"gamma usually 0.1-0.9, usually a small value": with ExponentialLR stepped per epoch, gamma = 0.1 leaves
    base * 1e-10 after 10 epochs."""
    lrs = lrlab.trace_scheduler(lambda o: S.ExponentialLR(o, gamma=0.1), 11, lr=0.1)
    assert lrs[10] == pytest.approx(0.1 * 1e-10, rel=1e-9)


def test_cosine_annealing_lr_has_no_warmup_parameter():
    import inspect

    params = set(inspect.signature(S.CosineAnnealingLR).parameters)
    assert {"T_max", "eta_min"} <= params and not any("warm" in p.lower() for p in params)
