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
    for variant in ("corrected", "published"):  # "two statements hold in both variants and one does not"
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
