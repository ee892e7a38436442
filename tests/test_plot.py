"""Tests of lrlab.plot and lrlab.course.figures: figures hold the expected lines, data and labels; the
progress callbacks of lrlab.train."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import lrlab  # noqa: E402
from lrlab.sources import d2l_section  # noqa: E402
from lrlab.callbacks import LivePlot, PrintProgress, progress  # noqa: E402
from lrlab.course.figures import plot_paired, plot_runs  # noqa: E402
from lrlab.plot import (  # noqa: E402
    plot_histories,
    plot_lr_trace,
    plot_schedules,
    schedule_values,
)
from lrlab.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


# --------------------------------------------------------------------------- plot_schedules


def test_plot_schedules_draws_one_labelled_line_per_schedule():
    schedules = {
        "cosine": lrlab.CosineScheduler(20, base_lr=0.3, final_lr=0.01),
        "sqrt": lambda t: 0.3 * (t + 1) ** -0.5,
        "values": [0.1] * 30,
    }
    fig = plot_schedules(schedules, steps=30)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    lines = lines_by_label(ax)
    assert list(lines) == ["cosine", "sqrt", "values"]
    assert list(lines["sqrt"].get_xdata()) == list(range(30))
    assert lines["sqrt"].get_ydata()[3] == pytest.approx(0.15)
    assert lines["cosine"].get_ydata()[0] == pytest.approx(0.3)
    assert lines["cosine"].get_ydata()[20] == pytest.approx(0.01)  # d2l: pinned at final_lr from max_update on
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "learning rate"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cosine", "sqrt", "values"]


def test_plot_schedules_explicit_steps_labels_and_existing_axes():
    fig0, ax = plt.subplots()
    steps = np.array([0, 10, 100, 1000])
    fig = plot_schedules({"exp": lrlab.ExponentialScheduler(0.99, base_lr=1.0)}, steps, ax=ax,
                         xlabel="update", logy=True, title="t")
    assert fig is fig0
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), 0.99 ** steps)
    assert ax.get_xlabel() == "update" and ax.get_yscale() == "log" and ax.get_title() == "t"


def test_stateful_d2l_schedules_are_called_in_order_with_ints():
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.1

    schedule_values(schedule, 4)
    assert seen == [0, 1, 2, 3] and all(type(t) is int for t in seen)
    # d2l's FactorScheduler advances with every call: plotted from a fresh object it gives base*factor^(t+1)
    values = schedule_values(d2l_section.FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0), 3)
    np.testing.assert_allclose(values, [1.8, 1.62, 1.458])


def test_lrlab_schedules_are_evaluated_vectorised_with_the_same_values():
    schedule = lrlab.MultiFactorScheduler([15, 30], factor=0.5, base_lr=0.5)
    vectorised = schedule_values(schedule, 40)
    looped = np.array([schedule(t) for t in range(40)])
    np.testing.assert_array_equal(vectorised, looped)
    assert vectorised[14] == 0.5 and vectorised[15] == 0.25 and vectorised[30] == 0.125


def test_single_schedule_is_named_after_its_type():
    fig = plot_schedules(lrlab.ConstantScheduler(0.2), 5)
    assert list(lines_by_label(fig.axes[0])) == ["ConstantScheduler"]


@pytest.mark.parametrize("steps", [0, -3, np.array([]), np.array([-1, 2]), np.array([[1, 2]]), True])
def test_bad_steps_are_rejected(steps):
    with pytest.raises((ValueError, TypeError), match="steps"):
        plot_schedules({"c": lambda t: 0.1}, steps)


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        plot_schedules({}, 5)
    with pytest.raises(ValueError, match="one value per step"):
        plot_schedules({"short": [0.1, 0.2]}, 5)
    with pytest.raises(TypeError, match="callable"):
        plot_schedules({"bad": 0.1}, 5)


# --------------------------------------------------------------------------- plot_histories / plot_lr_trace


def make_history(lrs, acc_offset=0.0):
    n = len(lrs)
    return History(
        lr=list(lrs),
        train_loss=[1.0 / (t + 1) for t in range(n)],
        train_acc=[0.5 + 0.05 * t + acc_offset for t in range(n)],
        test_loss=[1.1 / (t + 1) for t in range(n)],
        test_acc=[0.45 + 0.05 * t + acc_offset for t in range(n)],
        seconds=[0.1] * n,
    )


def test_plot_histories_one_panel_per_metric_one_line_per_run():
    runs = {"constant": make_history([0.1] * 5), "cosine": make_history([0.1, 0.09, 0.05, 0.01, 0.0], 0.02)}
    fig = plot_histories(runs, metrics=("train_loss", "test_acc", "lr"))
    assert len(fig.axes) == 3
    for ax, ylabel in zip(fig.axes, ["train loss", "test accuracy", "learning rate"]):
        assert ax.get_ylabel() == ylabel and ax.get_xlabel() == "epoch"
        assert [line.get_label() for line in ax.get_lines()] == ["constant", "cosine"]
    np.testing.assert_allclose(fig.axes[1].get_lines()[1].get_ydata(), runs["cosine"].test_acc)
    np.testing.assert_allclose(fig.axes[2].get_lines()[1].get_ydata(), runs["cosine"].lr)
    # the same run has the same colour in every panel
    assert fig.axes[0].get_lines()[1].get_color() == fig.axes[2].get_lines()[1].get_color()


def test_plot_histories_rejects_unknown_metrics():
    with pytest.raises(ValueError, match="unknown metric"):
        plot_histories({"a": make_history([0.1])}, metrics=("accuracy",))


def test_plot_lr_trace_shows_used_rates_against_the_schedule():
    # d2l's one-epoch-late SquareRootScheduler: the trace of its own loop against the schedule it meant
    schedule = d2l_section.SquareRootScheduler(lr=0.1)
    used = d2l_section.trace_lrs(schedule, 6, lr=0.1)
    fig = plot_lr_trace(used, schedule=schedule)
    ax = fig.axes[0]
    lines = lines_by_label(ax)
    assert set(lines) == {"lr used", "schedule(t)"}
    np.testing.assert_allclose(lines["schedule(t)"].get_ydata(), [0.1 * (t + 1) ** -0.5 for t in range(6)])
    step_y = lines["lr used"].get_ydata()
    np.testing.assert_allclose(step_y[:6], used)
    assert step_y[2] != pytest.approx(lines["schedule(t)"].get_ydata()[2])  # visibly off by one epoch
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "learning rate"


def test_plot_lr_trace_of_a_per_update_history():
    h = make_history([0.1, 0.05])
    h.step_per = "update"
    h.lr_per_update = [0.1, 0.08, 0.05, 0.03]
    fig = plot_lr_trace(h, schedule=lambda u: [0.1, 0.08, 0.05, 0.03][u])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "update"
    np.testing.assert_allclose(lines_by_label(ax)["schedule(t)"].get_ydata(), h.lr_per_update)


def test_plot_lr_trace_needs_rates():
    with pytest.raises(ValueError, match="no learning rates"):
        plot_lr_trace(History())


# --------------------------------------------------------------------------- live progress


def test_progress_modes():
    assert progress(False, 3) is None
    assert isinstance(progress("print", 3), PrintProgress)
    assert isinstance(progress(None, 3), PrintProgress)  # not inside a Jupyter kernel
    assert isinstance(progress("notebook", 3), LivePlot)
    with pytest.raises(ValueError, match="live"):
        progress("tqdm", 3)


def test_live_plot_is_throttled_and_draws_the_final_state(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", type(obj).__name__))

    def fake_display(obj, display_id=None):
        shown.append(("display", type(obj).__name__))
        return Handle()

    monkeypatch.setattr("IPython.display.display", fake_display)
    live = LivePlot(100, redraw_seconds=3600)  # one redraw per hour: only the first and the final
    h = History()
    for t in range(100):
        h.lr.append(0.1)
        for name in ("train_loss", "train_acc", "test_loss", "test_acc", "seconds"):
            getattr(h, name).append(0.5)
        live.update(h, final=t == 99)
    images = [s for s in shown if s[1] == "Image"]
    texts = [s for s in shown if s[1] == "Pretty"]
    assert len(images) == 2 and images[0][0] == "display" and images[1][0] == "update"
    assert len(texts) == 100  # the progress line follows every epoch
    np.testing.assert_allclose(live.lines["test_acc"].get_xdata(), np.arange(1, 101))
    np.testing.assert_allclose(live.lines["lr"].get_ydata(), [0.1] * 101)
    assert live.ax_lr.get_ylabel() == "learning rate"
    live.close(h)  # already drawn: nothing more
    assert len([s for s in shown if s[1] == "Image"]) == 2


# --------------------------------------------------------------------------- measured runs with a band


def results_frame():
    import pandas as pd

    rows = []
    for schedule, lrs in (("a", [0.3, 0.3, 0.1]), ("b", [0.2, 0.2, 0.2])):
        for seed in range(3):
            for epoch, lr in enumerate(lrs):
                rows.append({"experiment": "x", "variant": "v", "schedule": schedule, "seed": seed, "epoch": epoch,
                             "lr": lr, "momentum": 0.0, "train_loss": 1.0 - 0.1 * epoch + 0.01 * seed,
                             "train_acc": 0.5, "val_loss": np.nan, "val_acc": np.nan, "test_loss": 1.0,
                             "test_acc": 0.4 + 0.1 * seed, "seconds": 1.0, "weight_norm": 2.0, "data": "d"})
    return pd.DataFrame(rows)


def test_plot_runs_draws_mean_lines_with_a_band_of_one_sd():
    groups = {"A": {"schedule": "a"}, "B": {"schedule": "b"}}
    fig = plot_runs(results_frame(), groups, metrics=("lr", ("train_acc", "test_acc")))
    rate_ax, acc_ax = fig.axes
    rate_lines = lines_by_label(rate_ax)
    assert set(rate_lines) == {"A (n = 3)", "B (n = 3)"}
    assert rate_lines["A (n = 3)"].get_drawstyle() == "steps-post"
    assert list(rate_lines["A (n = 3)"].get_ydata()) == pytest.approx([0.3, 0.3, 0.1])
    acc_lines = lines_by_label(acc_ax)
    assert set(acc_lines) == {"A, train accuracy (n = 3)", "A, test accuracy (n = 3)", "B, train accuracy (n = 3)",
                              "B, test accuracy (n = 3)"}
    assert list(acc_lines["A, test accuracy (n = 3)"].get_ydata()) == pytest.approx([0.5] * 3)  # mean of .4, .5, .6
    band = [c for c in acc_ax.collections if c.get_paths()]
    ys = np.concatenate([p.vertices[:, 1] for c in band for p in c.get_paths()])
    assert ys.max() == pytest.approx(0.6) and ys.min() == pytest.approx(0.4)  # mean +- sd (sd = 0.1)
    assert acc_ax.get_ylabel() == "train accuracy / test accuracy"


def test_plot_runs_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        plot_runs(results_frame(), {"A": {"schedule": "a"}}, metrics=("acc",))
    with pytest.raises(ValueError, match="groups is empty"):
        plot_runs(results_frame(), {})
    with pytest.raises(ValueError, match="no row has"):
        plot_runs(results_frame(), {"C": {"schedule": "c"}})


def test_plot_paired_draws_each_seed_and_the_interval():
    seeds, a, b = [0, 1, 2], np.array([0.91, 0.92, 0.90]), np.array([0.89, 0.905, 0.895])
    fig = plot_paired({"cosine - constant": (seeds, a, b), "same": (seeds, b, b)})
    (ax,) = fig.axes
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(dots) == 2 and list(dots[0].get_xdata()) == pytest.approx([2.0, 1.5, 0.5])  # points
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cosine - constant", "same"]
    p = lrlab.paired_difference(a, b)
    bars = [c for c in ax.containers]
    assert len(bars) == 2 and bars[0].lines[0].get_xdata()[0] == pytest.approx(100 * p.mean_diff)
