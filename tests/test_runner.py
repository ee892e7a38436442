"""lrlab.runner: the plan, clear errors before any training, and safe stopping (resume = uninterrupted run).

All runs here are tiny (a few batches of synthetic stand-in data); the reference results themselves are
checked in test_results.py.
"""

from pathlib import Path

import pandas as pd
import pytest
import torch

from lrlab import profiles, results, runner
from test_data import one_thread  # noqa: F401 (a fixture: one CPU thread, fast and machine-independent)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(name, epochs=3):
    full = profiles.FULL[name]
    return profiles.Experiment(name=name, profile="smoke", dataset=full.dataset, model=full.model,
                               batch_size=full.batch_size, num_epochs=epochs, full_num_epochs=full.num_epochs,
                               max_batches=2, source="test")


def no_seconds(rows):
    return pd.DataFrame(rows).drop(columns="seconds")


# ------------------------------------------------------------------------------------------------ the plan


def test_plan_lists_every_arm_for_every_seed():
    plan = runner.plan(["d2l", "mnist_cnn"])
    assert len(plan) == 10 * 5 + 4 * 5
    assert plan[0].id == "d2l.corrected.constant.seed0" and plan[-1].id == "mnist_cnn.course.constant.seed46"
    assert {r.variant for r in plan if r.study == "d2l"} == {"corrected", "published"}
    assert len(runner.plan(["mnist_cnn"], seeds=[7])) == 4


@pytest.mark.parametrize("studies, seeds, message", [
    (["cifar"], None, "unknown study 'cifar'"),
    (["d2l"], [-1], "seeds must be ints >= 0"),
    (["d2l"], [1, 1], "must not repeat"),
])
def test_plan_rejects_bad_arguments(studies, seeds, message):
    with pytest.raises(ValueError, match=message):
        runner.plan(studies, seeds)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any training starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(runner, "train", refuse)


@pytest.mark.parametrize("argv, message", [
    (["nope", "--out", "{tmp}"], "unknown study 'nope'"),
    (["d2l", "--seeds", "1", "1", "--out", "{tmp}"], "must not repeat"),
    (["d2l", "--profile", "smoke"], "--out is required in the 'smoke' profile"),
])
def test_main_rejects_bad_arguments_before_training(no_training, tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        runner.main([a.format(tmp=tmp_path / "out") for a in argv])
    assert not (tmp_path / "out").exists()


def test_main_names_missing_data_before_training(no_training, tmp_path):
    with pytest.raises(SystemExit, match=r"Fashion-MNIST: .*train-images-idx3-ubyte.*is missing"):
        runner.main(["d2l", "--profile", "laptop", "--out", str(tmp_path / "out"), "--root", str(tmp_path / "empty")])
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ running and resuming


@pytest.mark.parametrize("study, variant, schedule, seed", [
    ("mnist_cnn", "as_written", "step", 42),        # Adam state, dropout (global RNG), a torch scheduler
    ("d2l", "published", "cosine_warmup", 1),       # a traced rate list as the schedule, rate 0 in epoch 1
])
def test_an_interrupted_run_resumes_to_the_same_rows(tmp_path, study, variant, schedule, seed):
    cfg = tiny(runner.STUDIES[study].experiment)
    spec = runner.RunSpec(study, variant, schedule, seed)
    empty = tmp_path / "empty"  # no dataset files: the smoke profile's synthetic stand-in
    whole = runner.run(spec, tmp_path / "a", cfg, root=empty, device="cpu", on_epoch=None)
    for stop in (1, 2):
        out = tmp_path / f"b{stop}"
        runner.run(spec, out, cfg, root=empty, device="cpu", on_epoch=None, stop_after=stop)
        assert runner.checkpoint_path(out, spec).exists()
        assert not (out / f"{study}.csv").exists()  # nothing of an unfinished run is in the table
        resumed = runner.run(spec, out, cfg, root=empty, device="cpu", on_epoch=None)
        pd.testing.assert_frame_equal(no_seconds(resumed), no_seconds(whole))
        assert not runner.checkpoint_path(out, spec).exists()
        table = results.read_table(out / f"{study}.csv")
        pd.testing.assert_frame_equal(table.drop(columns="seconds"), no_seconds(whole))
        prov = results.read_provenance(out / f"{study}.provenance.json")["runs"][spec.id]
        assert prov["sessions"] == 2 and prov["profile"] == "smoke"


@pytest.mark.parametrize("spec", [
    runner.RunSpec("d2l", "corrected", "square_root", 0),
    runner.RunSpec("cycles", "course", "one_cycle", 0),       # a torch scheduler stepped per update, momentum too
    runner.RunSpec("budget", "budget", "schedule_free", 0),   # the optimizer's own train/eval state
], ids=lambda s: s.id)
def test_interrupted_rows_equal_the_uninterrupted_prefix(tmp_path, spec):
    cfg = tiny("d2l")
    whole = runner.run(spec, tmp_path / "a", cfg, root=tmp_path, device="cpu", on_epoch=None)
    part = runner.run(spec, tmp_path / "b", cfg, root=tmp_path, device="cpu", on_epoch=None, stop_after=2)
    pd.testing.assert_frame_equal(no_seconds(part), no_seconds(whole[:2]))


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    spec = runner.RunSpec("d2l", "corrected", "constant", 0)
    runner.run(spec, tmp_path / "o", tiny("d2l", 3), root=tmp_path, device="cpu", on_epoch=None, stop_after=1)
    with pytest.raises(RuntimeError, match=r"d2l\.corrected\.constant\.seed0\.pt was saved for another configuration"):
        runner.run(spec, tmp_path / "o", tiny("d2l", 4), root=tmp_path, device="cpu", on_epoch=None)


def test_lr_column_follows_each_arm(tmp_path):
    for study in runner.STUDIES:
        cfg = tiny(runner.STUDIES[study].experiment, epochs=4)
        for arm in runner.STUDIES[study].arms:
            if arm.ddp is not None:
                continue  # under torchrun: test_a_large_batch_arm_trains_under_torchrun
            rows = runner.run(runner.RunSpec(study, arm.variant, arm.schedule, 3), tmp_path / study, cfg,
                              root=tmp_path, device="cpu", on_epoch=None)
            rates = arm.rates(cfg)
            assert len(rows) == arm.epochs(cfg), arm.label
            assert [r["lr"] for r in rows] == pytest.approx([float(rates(t)) for t in range(len(rows))],
                                                            rel=1e-12), arm.label


def test_a_large_batch_arm_trains_under_torchrun(tmp_path):
    """2 processes (torchrun) at global batch 1024, linearly scaled to 1.2 after a warmup from 0.3; the rows
    and the provenance go into the study's files, the checkpoint and rank 0's CSV are removed (slow: 3 processes)."""
    cfg = tiny("d2l", epochs=30)  # 10 epochs of the arm, 2 updates each; the warmup: 2 epochs = 4 updates
    arm = runner.STUDIES["large_batch"].arm("global1024", "linear_warmup")
    spec = runner.RunSpec("large_batch", "global1024", "linear_warmup", 0)
    rows = runner.run(spec, tmp_path, cfg, root=tmp_path, device="cpu", on_epoch=None)
    assert [r["lr"] for r in rows] == pytest.approx([0.3, 0.75] + [1.2] * 8, rel=1e-12)
    assert [r["lr"] for r in rows] == pytest.approx([float(arm.rates(cfg)(t)) for t in range(10)], rel=1e-12)
    table = results.read_table(tmp_path / "large_batch.csv")
    assert set(table.schedule) == {"linear_warmup"} and table.epoch.tolist() == list(range(10))
    assert (table.data == "synthetic stand-in for Fashion-MNIST").all()
    prov = results.read_provenance(tmp_path / "large_batch.provenance.json")["runs"][spec.id]
    assert "2 processes (gloo) under torchrun" in prov["device"] and prov["stopped"] is None
    assert list((tmp_path / ".runs").iterdir()) == []
    assert runner.finished(tmp_path, spec, cfg, "synthetic stand-in for Fashion-MNIST")


def test_a_diverged_large_batch_run_is_recorded_as_stopped(tmp_path, monkeypatch):
    """The command stops after an epoch with a non-finite loss; the runner keeps its rows, says why in the
    provenance, and counts the run as finished (no torchrun here: the launch writes what rank 0 would)."""
    from lrlab import distributed

    def fake_launch(argv, nproc_per_node, echo=True):
        argv = [str(a) for a in argv]
        base = {"experiment": "ddp", "variant": "global8192_ranks2", "schedule": "x", "seed": 0, "data": "d",
                "lr": 9.6, "train_acc": 0.1, "test_loss": 2.3, "test_acc": 0.1, "seconds": 1.0, "weight_norm": 1.0}
        rows = [{**base, "epoch": 0, "train_loss": 1e27},
                {**base, "epoch": 1, "train_loss": float("inf"), "test_loss": float("nan"),
                 "test_acc": float("nan"), "weight_norm": float("nan")}]
        results.write_table(argv[argv.index("--out") + 1], rows)
        return ""

    monkeypatch.setattr(distributed, "launch", fake_launch)
    cfg = profiles.experiment("d2l", "full")
    spec = runner.RunSpec("large_batch", "global8192", "linear", 0)
    rows = runner.run(spec, tmp_path, cfg, root=tmp_path, device="cpu", on_epoch=None,
                      loaded=("Fashion-MNIST (test)", (None, None)))
    assert [r["epoch"] for r in rows] == [0, 1] and rows[0]["variant"] == "global8192"
    prov = results.read_provenance(tmp_path / "large_batch.provenance.json")["runs"][spec.id]
    assert prov["stopped"] == "non-finite training loss in epoch 2 of 10; training stopped there"
    assert runner.finished(tmp_path, spec, cfg, "Fashion-MNIST (test)")
    assert list((tmp_path / ".runs").iterdir()) == []


def test_large_batch_arms_rates_by_hand():
    cfg = profiles.experiment("d2l", "full")  # 60,000 examples: 234, 58, 14 and 7 updates per epoch
    study = runner.STUDIES["large_batch"]
    assert float(study.arm("global256", "unscaled").rates(cfg)(9)) == 0.3
    assert float(study.arm("global8192", "unscaled").rates(cfg)(0)) == 0.3
    assert float(study.arm("global8192", "linear").rates(cfg)(0)) == pytest.approx(9.6, rel=1e-12)
    warm = study.arm("global8192", "linear_warmup").rates(cfg)  # 2 epochs = 14 updates from 0.3 to 9.6
    assert [float(warm(t)) for t in (0, 1, 2)] == pytest.approx([0.3, 0.3 + 9.3 * 7 / 14, 9.6], rel=1e-12)
    warm = study.arm("global1024", "linear_warmup").rates(cfg)  # 116 updates from 0.3 to 1.2
    assert float(warm(1)) == pytest.approx(0.3 + 0.9 * 58 / 116, rel=1e-12)
    assert study.arm("global4096", "linear").epochs(cfg) == 10


def test_budget_runs_share_their_stable_start_bit_for_bit(tmp_path):
    # Warmup-stable-decay's point: before its decay, a run does not depend on the budget, so one stable
    # run could be cooled down at any checkpoint. Here every budget's first epoch is still stable.
    cfg = tiny("d2l", epochs=4)
    rows = {b: runner.run(runner.RunSpec("budget", "budget", f"wsd_{b}", 0), tmp_path, cfg, root=tmp_path,
                          device="cpu", on_epoch=None) for b in runner.BUDGETS}
    assert [len(r) for r in rows.values()] == [1, 3, 4]
    first = [{k: v for k, v in r[0].items() if k not in ("seconds", "schedule")} for r in rows.values()]
    assert first[0] == first[1] == first[2]
    cosine = runner.run(runner.RunSpec("budget", "budget", "cosine_30", 0), tmp_path, cfg, root=tmp_path,
                        device="cpu", on_epoch=None)
    assert cosine[1]["test_loss"] != rows[30][1]["test_loss"]  # a cosine decays from its warmup's end on


def test_one_cycle_arm_drives_momentum_into_plain_sgd(tmp_path):
    cfg = tiny("d2l", epochs=2)
    arm = runner.STUDIES["cycles"].arm("course", "one_cycle")
    net = torch.nn.Linear(2, 2)
    opt = arm.optimizer(net.parameters(), cfg)
    assert opt.defaults["momentum"] == 0
    sched = arm.scheduler(opt, cfg)
    assert opt.param_groups[0]["momentum"] == 0.95 and opt.param_groups[0]["lr"] == pytest.approx(0.3 / 25)
    for _ in range(runner.iters_per_epoch(cfg)):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(float(arm.rates(cfg)(1)), rel=1e-12)


def test_main_never_redoes_a_finished_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(runner._profiles, "experiment", lambda name, profile=None: tiny(name, 2))
    argv = ["mnist_cnn", "--seeds", "5", "--profile", "smoke", "--out", str(out), "--root", str(tmp_path / "none"),
            "--device", "cpu"]
    assert runner.main(argv) == 0
    first = (out / "mnist_cnn.csv").read_bytes()
    assert "0 of 4 runs already done; 4 to go" in capsys.readouterr().out

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(runner, "train", refuse)
    assert runner.main(argv) == 0
    assert "4 of 4 runs already done; 0 to go" in capsys.readouterr().out
    assert (out / "mnist_cnn.csv").read_bytes() == first
    runner.main(argv + ["--list"])
    assert capsys.readouterr().out.count("done   ") == 4


def test_progress_lines_estimate_the_time_left(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner._profiles, "experiment", lambda name, profile=None: tiny(name, 2))
    runner.main(["mnist_cnn", "--seeds", "6", "--profile", "smoke", "--out", str(tmp_path), "--root",
                 str(tmp_path / "none"), "--device", "cpu"])
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("[run ")]
    assert len(lines) == 4 * 2
    assert lines[0].startswith("[run 1/4] mnist_cnn.as_written.step.seed6: epoch 1/2")
    assert "min so far, ~" in lines[0] and lines[-1].endswith("~0 min left")


def test_range_test_rates_are_what_the_range_test_gives():
    """RANGE_TEST_LR (the rates the lr_find study trains at) are the medians of a fresh range test on the
    real Fashion-MNIST: the same points of the ramp, or (where another CPU's rounding tips a near tie)
    a neighbouring one, a factor 10 ** (8 / 99) away."""
    from lrlab import data

    if not data.files_present("fashion_mnist"):
        pytest.skip("the real Fashion-MNIST is not on disk ($LRLAB_DATA)")
    cfg = profiles.experiment("d2l", "full")
    torch.set_num_threads(2)  # as the reference range test ran (the one_thread fixture restores it)
    medians = runner.range_test(cfg, device="cpu").summary().set_index("rule")["median"]
    step = 10 ** (8 / 99)  # neighbouring rates of lr_find's default ramp, 1e-7 to 10 in 100 updates
    for rule, lr in runner.RANGE_TEST_LR.items():
        assert lr / step * (1 - 1e-9) <= float(medians[rule]) <= lr * step * (1 + 1e-9), rule
