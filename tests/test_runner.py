"""lrlab.course.runner and lrlab.course.studies: the plan, clear errors before any training, safe stopping
(resume = uninterrupted run), arms that earlier results decide, and every run's table as its arm declares it.

All runs here are tiny (a few batches of synthetic stand-in data); the reference results themselves are
checked in test_results.py.
"""

from pathlib import Path

import json

import pandas as pd
import pytest
import torch

from lrlab.callbacks import CheckpointError
from lrlab.course import profiles, results, runner, studies
from test_data import one_thread  # noqa: F401 (a fixture: one CPU thread, fast and machine-independent)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(name, epochs=3):
    full = profiles.FULL[name]
    return profiles.Experiment(name=name, profile="smoke", dataset=full.dataset, model=full.model,
                               batch_size=full.batch_size, num_epochs=epochs, full_num_epochs=full.num_epochs,
                               max_batches=2)


def no_seconds(rows):
    return pd.DataFrame(rows).drop(columns="seconds")


# ------------------------------------------------------------------------------------------------ the plan


def test_plan_lists_every_arm_for_every_seed():
    plan = studies.plan(["d2l", "mnist_cnn"])
    assert len(plan) == 10 * 5 + 4 * 5
    assert plan[0].id == "d2l.corrected.constant.seed0" and plan[-1].id == "mnist_cnn.course.constant.seed46"
    assert {r.variant for r in plan if r.study == "d2l"} == {"corrected", "published"}
    assert len(studies.plan(["mnist_cnn"], seeds=[7])) == 4


@pytest.mark.parametrize("names, seeds, message", [
    (["cifar"], None, "unknown study 'cifar'"),
    (["d2l"], [-1], "seeds must be ints >= 0"),
    (["d2l"], [1, 1], "must not repeat"),
])
def test_plan_rejects_bad_arguments(names, seeds, message):
    with pytest.raises(ValueError, match=message):
        studies.plan(names, seeds)


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
    ("averaging", "averaging", "constant_ema", 0),  # a weight average kept in the checkpoint
    ("averaging", "averaging", "swa", 2),           # SWALR's rate and an equal average from epoch 1 of 3
])
def test_an_interrupted_run_resumes_to_the_same_rows(tmp_path, study, variant, schedule, seed):
    cfg = tiny(studies.STUDIES[study].experiment)
    spec = studies.RunSpec(study, variant, schedule, seed)
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
    studies.RunSpec("d2l", "corrected", "square_root", 0),
    studies.RunSpec("cycles", "course", "one_cycle", 0),       # a torch scheduler stepped per update, momentum too
    studies.RunSpec("budget", "probe", "schedule_free@1", 0),  # the optimizer's own train/eval state
], ids=lambda s: s.id)
def test_interrupted_rows_equal_the_uninterrupted_prefix(tmp_path, spec):
    cfg = tiny("d2l", 30 if spec.variant == "probe" else 3)  # the probe's 4 epochs of 30
    whole = runner.run(spec, tmp_path / "a", cfg, root=tmp_path, device="cpu", on_epoch=None)
    part = runner.run(spec, tmp_path / "b", cfg, root=tmp_path, device="cpu", on_epoch=None, stop_after=2)
    pd.testing.assert_frame_equal(no_seconds(part), no_seconds(whole[:2]))


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    spec = studies.RunSpec("d2l", "corrected", "constant", 0)
    runner.run(spec, tmp_path / "o", tiny("d2l", 3), root=tmp_path, device="cpu", on_epoch=None, stop_after=1)
    with pytest.raises(CheckpointError, match=r"d2l\.corrected\.constant\.seed0\.pt was saved for another configuration"):
        runner.run(spec, tmp_path / "o", tiny("d2l", 4), root=tmp_path, device="cpu", on_epoch=None)


def test_lr_and_momentum_columns_follow_each_arm(tmp_path):
    """Every in-process arm of every study, a tiny run: its table's lr and momentum are what the arm declares."""
    for study in studies.STUDIES:
        cfg = tiny(studies.STUDIES[study].experiment, epochs=4)
        for arm in studies.STUDIES[study].arms:
            if arm.ddp is not None:
                continue  # under torchrun: test_a_large_batch_arm_trains_under_torchrun
            rows = runner.run(studies.RunSpec(study, arm.variant, arm.schedule, 3), tmp_path / study, cfg,
                              root=tmp_path, device="cpu", on_epoch=None)
            budget = studies.Budget(cfg, 2, 512 if not arm.holdout else 470)
            rates, momenta = arm.rates(budget), arm.momenta(budget)
            assert len(rows) == arm.num_epochs(cfg), arm.label
            assert [r["lr"] for r in rows] == pytest.approx([rates(t) for t in range(len(rows))], rel=1e-12), arm.label
            assert [r["momentum"] for r in rows] == pytest.approx([momenta(t) for t in range(len(rows))],
                                                                  rel=1e-12), arm.label
            tested = "val_acc" if arm.holdout else "test_acc"
            assert all(0 <= r[tested] <= 1 for r in rows), arm.label
            if arm.holdout:  # a search never looks at the test set
                assert all(pd.isna(r["test_acc"]) and pd.isna(r["test_loss"]) for r in rows), arm.label


def test_a_large_batch_arm_trains_under_torchrun(tmp_path):
    """2 processes (torchrun) at global batch 1024, linearly scaled to 1.2 after a warmup from 0.3; the rows
    and the provenance go into the study's files, the checkpoint and rank 0's files are removed (slow: 3 processes)."""
    cfg = tiny("d2l", epochs=30)  # 10 epochs of the arm, 2 updates each; the warmup: 2 epochs = 4 updates
    arm = studies.STUDIES["large_batch"].arm("global1024", "linear_warmup")
    spec = studies.RunSpec("large_batch", "global1024", "linear_warmup", 0)
    rows = runner.run(spec, tmp_path, cfg, root=tmp_path, device="cpu", on_epoch=None)
    assert [r["lr"] for r in rows] == pytest.approx([0.3, 0.75] + [1.2] * 8, rel=1e-12)
    budget = studies.Budget(cfg, 2, 5120)  # the synthetic stand-in: 20 batches of 256
    assert [r["lr"] for r in rows] == pytest.approx([arm.rates(budget)(t) for t in range(10)], rel=1e-12)
    assert [r["momentum"] for r in rows] == [0.0] * 10
    table = results.read_table(tmp_path / "large_batch.csv")
    assert set(table.schedule) == {"linear_warmup"} and table.epoch.tolist() == list(range(10))
    assert (table.data == "synthetic stand-in for Fashion-MNIST").all()
    prov = results.read_provenance(tmp_path / "large_batch.provenance.json")["runs"][spec.id]
    assert "2 processes (gloo) under torchrun" in prov["device"] and prov["stopped"] is None
    assert list((tmp_path / ".runs").iterdir()) == []
    assert runner.finished(tmp_path, spec, cfg, "synthetic stand-in for Fashion-MNIST")


def test_a_diverged_large_batch_run_is_recorded_as_stopped(tmp_path, monkeypatch):
    """The command stops after an epoch with a non-finite loss and says so in its status; the runner keeps the
    rows, says why in the provenance, and counts the run as finished (no torchrun here: the launch writes what
    rank 0 would)."""
    def fake_launch(run, nproc_per_node, echo=True):
        base = {"experiment": "ddp", "variant": "global8192_ranks2", "schedule": "x", "seed": 0, "data": "d",
                "lr": 9.6, "momentum": 0.0, "train_acc": 0.1, "val_loss": float("nan"), "val_acc": float("nan"),
                "test_loss": 2.3, "test_acc": 0.1, "seconds": 1.0, "weight_norm": 1.0}
        rows = [{**base, "epoch": 0, "train_loss": 1e27},
                {**base, "epoch": 1, "train_loss": float("inf"), "test_loss": float("nan"),
                 "test_acc": float("nan"), "weight_norm": float("nan")}]
        results.write_table(run.out, rows)
        Path(run.status).write_text(json.dumps({"stopped": "the training loss became infinite in epoch 1", "epochs": 2}))
        return ""

    monkeypatch.setattr(runner, "_launch_ddp", fake_launch)
    cfg = profiles.experiment("d2l", "full")
    spec = studies.RunSpec("large_batch", "global8192", "linear", 0)
    loaded = ("Fashion-MNIST (test)", (type("Loader", (), {"X": torch.zeros(60000, 1)})(), None))
    rows = runner.run(spec, tmp_path, cfg, root=tmp_path, device="cpu", on_epoch=None, loaded=loaded)
    assert [r["epoch"] for r in rows] == [0, 1] and rows[0]["variant"] == "global8192"
    prov = results.read_provenance(tmp_path / "large_batch.provenance.json")["runs"][spec.id]
    assert prov["stopped"] == "the training loss became infinite in epoch 1"
    assert runner.finished(tmp_path, spec, cfg, "Fashion-MNIST (test)")
    assert list((tmp_path / ".runs").iterdir()) == []


def test_large_batch_arms_rates_by_hand():
    budget = studies.Budget.of(profiles.experiment("d2l", "full"))  # 60,000 examples: 234, 58, 14 and 7 updates
    study = studies.STUDIES["large_batch"]
    assert study.arm("global256", "unscaled").rates(budget)(9) == 0.3
    assert study.arm("global8192", "unscaled").rates(budget)(0) == 0.3
    assert study.arm("global8192", "linear").rates(budget)(0) == pytest.approx(9.6, rel=1e-12)
    warm = study.arm("global8192", "linear_warmup").rates(budget)  # 2 epochs = 14 updates from 0.3 to 9.6
    assert [warm(t) for t in (0, 1, 2)] == pytest.approx([0.3, 0.3 + 9.3 * 7 / 14, 9.6], rel=1e-12)
    warm = study.arm("global1024", "linear_warmup").rates(budget)  # 116 updates from 0.3 to 1.2
    assert warm(1) == pytest.approx(0.3 + 0.9 * 58 / 116, rel=1e-12)
    assert study.arm("global4096", "linear").num_epochs(budget.cfg) == 10
    # Goyal et al.'s regime: 0.1 at 256, momentum 0.9, 5 epochs of warmup from 0.1
    goyal = study.arm("global8192", "goyal_linear_warmup")
    assert [goyal.rates(budget)(t) for t in (0, 5, 9)] == pytest.approx([0.1, 3.2, 3.2], rel=1e-12)
    assert goyal.rates(budget)(1) == pytest.approx(0.1 + 3.1 * 7 / 35, rel=1e-12)
    assert goyal.momenta(budget)(3) == 0.9 and study.arm("global256", "unscaled").momenta(budget)(3) == 0.0
    assert goyal.ddp_run(budget.cfg, 1).argv() == ["--global-batch", "8192", "--base-lr", "0.1", "--warmup-epochs",
                                                   "5", "--warmup-begin-lr", "0.1", "--momentum", "0.9", "--seed", "1",
                                                   "--profile", "full", "--epochs", "10"]


def test_budget_runs_share_their_stable_start_bit_for_bit(tmp_path):
    # Warmup-stable-decay's point: before its decay, a run does not depend on the budget, so one stable
    # run could be cooled down at any checkpoint. Here every budget's first epoch is still stable.
    cfg = tiny("d2l", epochs=4)
    rows = {b: runner.run(studies.RunSpec("budget", "budget", f"wsd_{b}", 0), tmp_path, cfg, root=tmp_path,
                          device="cpu", on_epoch=None) for b in studies.BUDGETS}
    assert [len(r) for r in rows.values()] == [1, 3, 4]
    first = [{k: v for k, v in r[0].items() if k not in ("seconds", "schedule")} for r in rows.values()]
    assert first[0] == first[1] == first[2]
    cosine = runner.run(studies.RunSpec("budget", "budget", "cosine_30", 0), tmp_path, cfg, root=tmp_path,
                        device="cpu", on_epoch=None)
    assert cosine[1]["test_loss"] != rows[30][1]["test_loss"]  # a cosine decays from its warmup's end on


def test_averaged_runs_train_as_the_constant_run_and_evaluate_their_average(tmp_path):
    cfg = tiny("d2l", epochs=3)
    rows = {name: runner.run(studies.RunSpec("averaging", "averaging", name, 0), tmp_path, cfg, root=tmp_path,
                             device="cpu", on_epoch=None) for name in ("constant", "constant_ema", "wsd")}
    training = ["lr", "train_loss", "train_acc", "weight_norm"]
    plain, ema, wsd = (pd.DataFrame(r) for r in rows.values())
    pd.testing.assert_frame_equal(ema[training], plain[training])  # averaging changes only what is evaluated
    assert (ema["test_loss"] != plain["test_loss"]).all()
    # the constant arm is the warmup-stable-decay run before its decay (epoch 0 of 3 here), bit for bit
    assert plain.loc[0, training + ["test_loss"]].equals(wsd.loc[0, training + ["test_loss"]])


def test_one_cycle_arm_drives_momentum_into_plain_sgd():
    budget = studies.Budget(tiny("d2l", epochs=2), 2, 512)
    arm = studies.STUDIES["cycles"].arm("course", "one_cycle")
    net = torch.nn.Linear(2, 2)
    opt = arm.make_optimizer(net.parameters(), budget)
    assert opt.defaults["momentum"] == 0
    sched = arm.make_scheduler(opt, budget)
    assert opt.param_groups[0]["momentum"] == 0.95 and opt.param_groups[0]["lr"] == pytest.approx(0.3 / 25)
    for _ in range(budget.iters):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(arm.rates(budget)(1), rel=1e-12)
    plain = studies.STUDIES["cycles"].arm("course", "one_cycle_no_momentum")
    assert plain.momenta(budget)(0) == 0.0 and plain.rates(budget)(1) == arm.rates(budget)(1)


# ------------------------------------------------------------------------------------------------ arms decided by results


def _finished_table(out, study, runs):
    """A table and provenance as if ``runs`` (spec -> final-epoch values) had finished: one epoch each."""
    rows = [{"experiment": study, "variant": s.variant, "schedule": s.schedule, "seed": s.seed, "epoch": 0,
             "lr": 0.1, "momentum": 0.0, "train_loss": v.get("train_loss", 1.0), "train_acc": 0.5,
             "val_loss": 1.0, "val_acc": v.get("val_acc", 0.5), "test_loss": 1.0, "test_acc": 0.5, "seconds": 1.0,
             "weight_norm": 1.0, "data": "d"} for s, v in runs.items()]
    results.write_table(out / f"{study}.csv", rows)
    (out / f"{study}.provenance.json").write_text(json.dumps({"runs": {s.id: {} for s in runs}}))


def test_the_tuned_finals_train_at_the_searchs_best_peak(tmp_path):
    search = [a for a in studies.STUDIES["tuned"].arms]
    assert len(search) == 5 * len(studies.TUNED_PEAKS) and all(a.holdout and a.seeds == (10,) for a in search)
    assert studies.STUDIES["tuned"].arms_in(tmp_path) == studies.STUDIES["tuned"].arms  # no search yet: no finals
    best = {"constant": 0.15, "square_root": 0.6, "multi_step": 0.6, "cosine": 0.3, "cosine_warmup": 1.2}
    runs = {studies.RunSpec("tuned", a.variant, a.schedule, 10):
            {"val_acc": 0.9 if a.schedule == f"{a.schedule.split('@')[0]}@{best[a.schedule.split('@')[0]]:g}"
             else 0.8} for a in search}
    partial = dict(list(runs.items())[:-1])
    _finished_table(tmp_path, "tuned", partial)
    assert studies.tuned_peaks(tmp_path) is None  # one search run short: nothing is chosen yet
    _finished_table(tmp_path, "tuned", runs)
    assert studies.tuned_peaks(tmp_path) == best
    finals = studies.STUDIES["tuned"].arms_in(tmp_path)[len(search):]
    assert [(a.variant, a.schedule) for a in finals] == [("final", f"{s}@{p:g}") for s, p in best.items()]
    planned = [r.id for r in studies.plan(["tuned"], out=tmp_path)]
    assert planned[:25] == [f"tuned.search.{a.schedule}.seed10" for a in search]
    assert planned[25:] == [f"tuned.final.{a.schedule}.seed{s}" for s in (0, 1, 2) for a in finals]
    cfg = profiles.experiment("d2l", "full")
    rates = finals[1].rates(studies.Budget.of(cfg))  # square root at 0.6: d2l's curve times 6
    assert [rates(t) for t in (0, 3)] == pytest.approx([0.6, 0.6 / 2], rel=1e-12)
    d2l = studies.STUDIES["d2l"].arm("corrected", "cosine").rates(studies.Budget.of(cfg))
    at_d2l = studies.STUDIES["tuned"].arm("search", "cosine@0.3").rates(studies.Budget.of(cfg))
    assert [at_d2l(t) for t in range(30)] == [d2l(t) for t in range(30)]  # at d2l's peak: d2l's schedule exactly


def test_ties_in_the_search_go_to_the_smaller_peak(tmp_path):
    runs = {studies.RunSpec("tuned", a.variant, a.schedule, 10): {"val_acc": 0.8} for a in studies.STUDIES["tuned"].arms}
    _finished_table(tmp_path, "tuned", runs)
    assert set(studies.tuned_peaks(tmp_path).values()) == {min(studies.TUNED_PEAKS)}


def test_the_schedule_free_run_trains_at_the_probes_choice(tmp_path):
    assert studies.schedule_free_lr(tmp_path) is None and studies.STUDIES["budget"].later(tmp_path) == ()
    runs = {studies.RunSpec("budget", "probe", "schedule_free@0.3", 0): {"train_loss": 0.46},
            studies.RunSpec("budget", "probe", "schedule_free@1", 0): {"train_loss": 0.33}}
    _finished_table(tmp_path, "budget", runs)
    assert studies.schedule_free_lr(tmp_path) == 1.0
    (arm,) = studies.STUDIES["budget"].later(tmp_path)
    assert arm.schedule == "schedule_free" and arm.optimizer == "schedule_free_sgd" and arm.momentum == 0.9
    budget = studies.Budget.of(profiles.experiment("d2l", "full"))
    assert arm.rates(budget)(29) == 1.0 and arm.momenta(budget)(0) == 0.9
    runs[studies.RunSpec("budget", "probe", "schedule_free@1", 0)] = {"train_loss": 0.5}
    _finished_table(tmp_path, "budget", runs)
    assert studies.schedule_free_lr(tmp_path) == 0.3


def test_lr_find_writes_the_range_test_first_and_trains_at_its_medians(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner._profiles, "experiment", lambda name, profile=None: tiny(name, 2))
    out = tmp_path / "out"
    assert runner.main(["lr_find", "--seeds", "0", "--profile", "smoke", "--out", str(out), "--root",
                        str(tmp_path / "none"), "--device", "cpu"]) == 0
    assert "the range test over seeds 0, 1, 2, 3, 4 first" in capsys.readouterr().out
    suggestions = studies.read_range_test(out)
    assert sorted(suggestions.seed.unique()) == [0, 1, 2, 3, 4] and set(suggestions.rule) == {"valley", "steepest",
                                                                                              "minimum"}
    medians = studies.range_test_rates(out)
    table = results.read_table(out / "lr_find.csv")
    for rule, lr in medians.items():
        assert (table[table.schedule == rule].lr == lr).all()
    prov = results.read_provenance(out / "lr_find.provenance.json")
    assert prov["range_test"]["seeds"] == [0, 1, 2, 3, 4] and "cpu" in prov["range_test"]


def test_a_run_at_rates_its_arm_no_longer_has_is_trained_again(tmp_path):
    """A table's rows that were trained at another rate (the range test's file changed since) are not
    'finished': the runner trains them again and replaces them."""
    cfg = tiny("d2l", epochs=4)
    (tmp_path / "range_test.csv").write_text("seed,rule,lr\n0,valley,0.1\n0,steepest,1.0\n0,minimum,0.2\n")
    spec = studies.RunSpec("lr_find", "range_test", "valley", 0)
    runner.run(spec, tmp_path, cfg, root=tmp_path, device="cpu", on_epoch=None)
    assert runner.finished(tmp_path, spec, cfg, "synthetic stand-in for Fashion-MNIST")
    (tmp_path / "range_test.csv").write_text("seed,rule,lr\n0,valley,0.05\n0,steepest,1.0\n0,minimum,0.2\n")
    assert not runner.finished(tmp_path, spec, cfg, "synthetic stand-in for Fashion-MNIST")
    runner.run(spec, tmp_path, cfg, root=tmp_path, device="cpu", on_epoch=None)
    assert (results.read_table(tmp_path / "lr_find.csv").lr == 0.05).all()


# ------------------------------------------------------------------------------------------------ clear errors


def test_a_damaged_checkpoint_is_named_with_the_fix_and_never_loaded_unsafely(tmp_path, monkeypatch):
    monkeypatch.setattr(runner._profiles, "experiment", lambda name, profile=None: tiny(name, 3))
    cfg = tiny("d2l", 3)
    out = tmp_path / "out"
    spec = studies.RunSpec("d2l", "corrected", "constant", 0)
    runner.run(spec, out, cfg, root=tmp_path, device="cpu", on_epoch=None, stop_after=1)
    path = runner.checkpoint_path(out, spec)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # an interrupted copy
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k.get("weights_only")) or real_load(*a, **k))

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(runner, "train", refuse)
    with pytest.raises(SystemExit, match=r"error: .*d2l\.corrected\.constant\.seed0\.pt is damaged or not an lrlab "
                                         r"checkpoint .*delete it to start that run over"):
        runner.main(["d2l", "--seeds", "0", "--profile", "smoke", "--out", str(out), "--root", str(tmp_path),
                     "--device", "cpu"])
    assert loads and all(w is True for w in loads)  # only ever weights_only=True
    with pytest.raises(CheckpointError, match="is damaged or not an lrlab checkpoint"):
        runner.run(spec, out, cfg, root=tmp_path, device="cpu", on_epoch=None)


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="needs a machine without a GPU number 7")
def test_a_device_this_machine_lacks_is_named_before_training(no_training, tmp_path):
    with pytest.raises(SystemExit, match=r"error: device 'cuda:7' is not on this machine, which has .*; use "):
        runner.main(["d2l", "--profile", "smoke", "--out", str(tmp_path / "out"), "--device", "cuda:7"])
    with pytest.raises(SystemExit, match=r"error: device 'tpu' is not a device name"):
        runner.main(["d2l", "--profile", "smoke", "--out", str(tmp_path / "out"), "--device", "tpu"])
    assert not (tmp_path / "out").exists()


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
    assert "all 4 runs are in" in capsys.readouterr().out  # nothing to do: no round starts
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
