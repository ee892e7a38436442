"""What each chapter's sentences rely on, checked against the committed results (lrlab.course.facts).

A chapter glues its numbers and verdicts from lrlab.course.facts; the words around them ("supported",
"in every seed", "trained nothing") are the chapter's. These tests hold those words to the files, so a
new run that changes a verdict fails here, naming the chapter to rewrite.
"""

from pathlib import Path

import pytest

from lrlab.course import facts, results, verdicts

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"


def needs(*studies):
    missing = [s for s in studies if not (RESULTS / f"{s}.csv").exists()]
    if missing or not (RESULTS / verdicts.VERDICTS_FILE).exists():
        pytest.skip(f"not committed yet: {missing or verdicts.VERDICTS_FILE}")


def test_why_schedule():
    needs("d2l")
    f = facts.why_schedule(RESULTS)
    # "the training accuracy still rises ... on average and in every seed, while the test accuracy changes
    # by less than one point"; "the last epoch's training accuracy exceeds the test accuracy"
    assert f["c2_train_rise_min"] > 0 and f["c2_train_rise"] > f["c2_test_rise"]
    assert abs(f["c2_test_rise"]) < 1 and f["c2_gap"] > 0
    assert f["c2_rough"] > 1  # "changes by over a point between consecutive epochs" (chapter 3 says it too)


def test_sqrt_factor():
    needs("d2l")
    f = facts.sqrt_factor(RESULTS)
    for variant in ("corrected", "published"):  # "two statements hold in both variants, one is contradicted in both"
        assert f[f"c3_sqrt_less_overfitting_{variant}"] == "supported"
        assert f[f"c3_small_steps_near_zero_{variant}"] == "supported"
        assert f[f"c3_sqrt_better_{variant}"] == "contradicted"
    assert f["c3_sd_diff"] < min(f["c3_sd_sqrt"], f["c3_sd_const"])  # "the pairing removes" a shared part
    assert f["c3_last3"].startswith("lower") and f["c3_norm"] > 0
    frame = results.read_table(RESULTS / "d2l.csv")
    norms = results.final_epoch(frame).pivot_table(index="seed", columns=["variant", "schedule"], values="weight_norm")
    assert (norms["corrected", "square_root"] < norms["corrected", "constant"]).all()  # "lower in every seed"


def test_piecewise_constant():
    needs("d2l")
    f = facts.piecewise_constant(RESULTS)
    assert f["c4_cut_verdict"] == "higher" and f["c4_at_cut"] > f["c4_before"]  # "the cut works"
    assert f["c4_better_source"] == f["c4_better_source_published"] == "not shown"  # "does not give the better solution"


def test_cosine_warmup():
    needs("d2l")
    f = facts.cosine_warmup(RESULTS)
    assert f["c5_cos_source"] == "supported" and f["c5_cos_published"].startswith("higher")
    assert f["c5_warm"].startswith("higher") and f["c5_warm_published"].startswith("higher")
    assert f["c5_early_source"] == f["c5_early_source_published"] == "contradicted"
    assert f["c5_ww"].startswith("no difference shown")  # "the measurements show no benefit from the warmup"


def test_mnist_cnn():
    needs("mnist_cnn")
    f = facts.mnist_cnn(RESULTS)
    assert f["mnist_shown"] == 0  # "these measurements cannot tell the schedules apart"
    assert f["mnist_acc_low"] > 98  # "the tutorial's 'above 98%' holds there"


def test_lr_finder():
    needs("lr_find", "d2l")
    f = facts.lr_finder(RESULTS)
    for key in ("c9a_vd", "c9a_vd3", "c9a_md", "c9a_md3"):  # "no difference from d2l's hand-picked 0.3 is shown"
        assert f[key].startswith("no difference shown"), key
    assert f["c9a_steep_acc"] < 0.11 and f["c9a_steep_loss"] > 2.2  # "no seed learns anything"


def test_cycles():
    needs("cycles", "d2l")
    f = facts.cycles(RESULTS)
    # "the closer fit and the higher test loss come with the momentum, not with the one-cycle shape, which
    # with plain SGD shows no difference from d2l's cosine on any of the three measures"
    for measure in ("", "_test_loss", "_train_loss"):
        assert f[f"c9b_one_cycle_no_momentum_vs_cosine{measure}"].startswith("no difference shown"), measure
    assert f["c9b_one_cycle_vs_one_cycle_no_momentum_test_loss"].startswith("higher")
    assert f["c9b_one_cycle_vs_one_cycle_no_momentum_train_loss"].startswith("lower")
    assert f["c9b_one_cycle_vs_cosine_test_loss"].startswith("higher")
    assert f["c9b_one_cycle_vs_cosine_train_loss"].startswith("lower")
    assert f["c9b_cycled_acc"] < 0.11  # "trains nothing in any seed"
    assert f["c9b_restarts_vs_cosine"].startswith("no difference shown")  # "restarting bought nothing shown"
    assert f["c9b_end1"] > f["c9b_after"]  # "every one of them drops" is checked by sign_count below
    assert "3 of 3 seeds" in f["c9b_restart_drop"]


def test_unknown_budget():
    needs("budget")
    f = facts.unknown_budget(RESULTS)
    assert not any(f[f"c9c_wsd_{B}"].startswith("lower") for B in (10, 20, 30))  # "WSD lost nothing"
    assert not any(f[f"c9c_sf_{B}"].startswith("lower") for B in (10, 20, 30))  # "no worse than a cosine"
    assert f["c9c_sf_20"].startswith("no difference") and f["c9c_sf_30"].startswith("no difference")
    assert f["c9c_sf_lr"] == 1.0 and f["c9c_probe_1"] < f["c9c_probe_03"]
    # "their rows agree to the last digit until epoch 7, and the 20- and 30-epoch runs until epoch 15"
    budget = results.read_table(RESULTS / "budget.csv")
    metrics = ["lr", "train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"]

    def rows_of(schedule, seed, until):
        run = results.select(budget, schedule=schedule, seed=seed)
        return run[run.epoch < until][metrics].reset_index(drop=True)

    for seed in sorted(budget[budget.variant == "budget"].seed.unique()):
        assert rows_of("wsd_10", seed, 8).equals(rows_of("wsd_30", seed, 8)), seed
        assert rows_of("wsd_20", seed, 16).equals(rows_of("wsd_30", seed, 16)), seed


def test_unknown_budget_averaging():
    needs("averaging")
    f = facts.unknown_budget(RESULTS)
    # "averaging lowered it against the constant run it reads"
    assert f["c9c_avg_ema_constant_loss"].startswith("lower") and f["c9c_avg_swa_constant_loss"].startswith("lower")
    # "its rates alone lowered the test loss ..., and its average on top of those rates ..."
    assert f["c9c_avg_swalr_constant_loss"].startswith("lower") and f["c9c_avg_swa_swalr_loss"].startswith("lower")
    # "could not be told apart from a cosine or a warmup-stable-decay run" (accuracy and loss)
    for avg in ("ema", "swa"):
        for decay in ("cosine", "wsd"):
            assert f[f"c9c_avg_{avg}_{decay}"].startswith("no difference"), (avg, decay)
            assert f[f"c9c_avg_{avg}_{decay}_loss"].startswith("no difference"), (avg, decay)
    # "the accuracy gains over the constant rate point the same way in every seed, yet their intervals are wide"
    for avg in ("ema", "swa"):
        assert f[f"c9c_avg_{avg}_constant"].startswith("no difference shown (+") and "3 of 3 seeds" in f[f"c9c_avg_{avg}_constant"]
    # "the decays are not shown to beat the constant rate either"
    assert not f["c9c_avg_cosine_constant"].startswith("higher") and not f["c9c_avg_wsd_constant"].startswith("higher")
    assert f["c9c_avg_n"] == 3
    # "the EMA run's training columns are the constant run's, to the last digit"
    table = results.read_table(RESULTS / "averaging.csv")
    training = ["lr", "train_loss", "train_acc", "weight_norm"]
    for seed in (0, 1, 2):
        plain = results.select(table, schedule="constant", seed=seed)[training].reset_index(drop=True)
        ema = results.select(table, schedule="constant_ema", seed=seed)[training].reset_index(drop=True)
        assert ema.equals(plain), seed


def test_large_batches():
    needs("large_batch", "tuned", "lr_find")
    f = facts.large_batches(RESULTS)
    assert f["c9d_lb_unscaled_1024_vs_256"].startswith("lower")
    assert f["c9d_d2l_linear_learned"] == f["c9d_d2l_linear_warmup_learned"] == 0  # "none learned"
    assert f["c9d_room_06"] > 0.8 and f["c9d_room_12"] < 0.11  # "trains at 0.6 but not at 1.2"
    assert f["c9d_lb_base01_linear_vs_unscaled_1024"].startswith("higher")  # "the rule works"
    assert not f["c9d_lb_base01_linear_1024_vs_256"].startswith("lower")  # "no loss ... is shown"
    assert f["c9d_b01_linear_4096_learned"] == 0
    assert f["c9d_goyal_linear_learned"] == f["c9d_goyal_linear_warmup_learned"] == 0
    assert f["c9d_goyal_unscaled_256_learned"] < 3  # "at the edge"
    assert f["c9d_d2l_linear_warmup_learned"] == 0  # "warmup ... not whether any scaled run beyond the room learned"


def test_warmup_multifactor():
    needs("warmup")
    f = facts.warmup_multifactor(RESULTS)
    # "the network needs no protection in its first epochs, and the warmup spends three of them at smaller rates"
    assert f["c7_warmup_faster_source"] != "supported" and f["c7_diverged"] == 0


def test_comparison_and_exercises():
    needs("d2l", "tuned")
    f = facts.comparison(RESULTS)
    for variant in ("corrected", "published"):
        assert f[f"c10_cosine_{variant}_acc"].startswith("higher")
        assert f[f"c10_cosine_warmup_{variant}_acc"].startswith("higher")
    assert f["c10_square_root_corrected_acc"].startswith("lower")
    assert f["c10_square_root_corrected_gap"].startswith("lower") and f["c10_square_root_corrected_loss"].startswith("higher")
    assert f["c10_multi_step_corrected_acc"].startswith("no difference")
    assert f["c10_multi_step_corrected_gap"].startswith("no difference")
    for run in ("cosine", "cosine_warmup", "multi_step"):  # "not a lower training loss"
        assert not f[f"c10_{run}_corrected_loss"].startswith("lower"), run
    assert f["c10_far_runs"] == "cosine_warmup" and f["c10_warm_z_test_acc"] < -2  # one run, far outside
    assert f["c10_sd_widest"] == "multi_step"  # "the multi-step schedule's band is the widest at the end"
    assert set(f["c10_gain_most"].split(", ")) == {"constant", "multi_step"}
    assert set(f["c10_gain_least"].split(", ")) == {"cosine", "cosine_warmup"}
    # "all 5 shapes stayed at chance at 1.2; below it only the cosine with warmup at 0.6, where the cosine reached ..."
    assert f["c10_chance_top"] == 5 and f["c10_chance_other"] == "cosine with warmup at 0.6" and f["c10_val_cosine_06"] > 0.8
    # "for the two cosines the search chose d2l's own peak ...: for the cosine an interval that excludes 0"
    assert f["c10_same_cosine"] and f["c10_same_cosine_warmup"]
    assert f["c10_tuned_vs_d2l_cosine"].startswith(("higher", "lower"))
    e = facts.exercises(RESULTS)
    assert e["c12_val_12"] < 0.11  # "1.2 too large to train at all"


def test_errata():
    needs("d2l", "large_batch", "warmup", "tuned")
    f = facts.errata(RESULTS)
    assert f["c11_bugs_shown"] == 0  # "in 0 of the 4 runs did the bugs move the final test accuracy"
    for name in ("sqrt_less_overfitting", "small_steps_near_zero", "cosine_better", "decay_gap_cosine",
                 "decay_gap_cosine_warmup", "decay_test_acc_cosine", "decay_test_acc_cosine_warmup"):
        assert f[f"c11_{name}_published"] == "supported", name
    for name in ("sqrt_better", "warmup_early"):
        assert f[f"c11_{name}_published"] == "contradicted", name
    for name in ("multi_step_better", "decay_test_acc_multi_step", "decay_gap_multi_step"):
        assert f[f"c11_{name}_published"] == "not shown", name
    assert f["c11_changed_names"] == "sqrt_smoother"
    assert f["c11_learned_with"] == 0
    # "the training loss of the square-root and cosine runs did end lower at d2l's rates"
    assert facts.verdict("bugs_square_root_train_loss", RESULTS) == facts.verdict("bugs_cosine_train_loss", RESULTS) == "lower"
