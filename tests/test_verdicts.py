"""lrlab.course.verdicts: every comparison the book states, as data (book/results/verdicts.csv).

The file is regenerated from the committed result tables and must equal the committed one; each verdict
follows from its interval; the measures and d2l's printed numbers are checked by hand.
"""

import math
from pathlib import Path

import pandas as pd
import pytest

from lrlab.course import results, verdicts
from lrlab.sources import d2l_section as S

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"


def _runs(schedule, test_accs_per_seed, train_acc=0.9, variant="published", train_loss=0.5):
    rows = []
    for seed, accs in enumerate(test_accs_per_seed):
        for epoch, acc in enumerate(accs):
            rows.append({"experiment": "d2l", "variant": variant, "schedule": schedule, "seed": seed, "epoch": epoch,
                         "lr": 0.1, "momentum": 0.0, "train_loss": train_loss + seed * 0.01, "train_acc": train_acc,
                         "val_loss": math.nan, "val_acc": math.nan, "test_loss": 1.0, "test_acc": acc, "seconds": 1.0,
                         "weight_norm": 1.0, "data": "d"})
    return rows


def test_measures_by_hand():
    frame = pd.DataFrame(_runs("constant", [[0.1, 0.5, 0.3, 0.7, 0.6, 0.9]]))
    measured = verdicts.with_measures(frame)
    # last two thirds of 6 epochs: epochs 2..5 (epoch >= 6/3 = 2): changes 0.4, 0.1, 0.3 -> mean 0.8 / 3
    assert measured["roughness"].iloc[0] == pytest.approx(0.8 / 3)
    assert measured["gap"].tolist() == pytest.approx([0.9 - a for a in [0.1, 0.5, 0.3, 0.7, 0.6, 0.9]])


def test_verdicts_by_hand(tmp_path):
    rows = (_runs("constant", [[0.80, 0.80], [0.81, 0.81], [0.82, 0.82]])
            + _runs("square_root", [[0.90, 0.90], [0.91, 0.91], [0.92, 0.92]])      # higher in every seed
            + _runs("multi_step", [[0.70, 0.70], [0.71, 0.71], [0.72, 0.72]])       # lower in every seed
            + _runs("cosine", [[0.80, 0.81], [0.82, 0.80], [0.81, 0.83]]))          # +0.01, -0.01, +0.01
    results.write_table(tmp_path / "d2l.csv", rows)
    claims = {c.claim: c for c in verdicts.CLAIMS}
    frame = verdicts.verdict_table([claims["sqrt_better_published"], claims["multi_step_better_published"],
                                    claims["cosine_better_published"]], where=tmp_path)
    assert tuple(frame.columns) == verdicts.COLUMNS
    table = frame.set_index("claim")
    assert table.loc["sqrt_better_published", "verdict"] == "higher"
    assert table.loc["sqrt_better_published", "mean_diff"] == pytest.approx(0.10)
    assert table.loc["sqrt_better_published", ["n", "sign_count", "epoch"]].tolist() == [3, 3, "1"]
    assert table.loc["multi_step_better_published", "verdict"] == "lower"
    assert table.loc["cosine_better_published", "verdict"] == "no difference shown"
    assert table.loc["cosine_better_published", "sign_count"] == 2
    assert verdicts.source_verdict("higher", +1) == "supported"
    assert verdicts.source_verdict("lower", +1) == "contradicted"
    assert verdicts.source_verdict("no difference shown", -1) == "not shown"


def test_claims_are_unique_and_name_arms_of_their_tables():
    from lrlab.course import studies

    assert len({c.claim for c in verdicts.CLAIMS}) == len(verdicts.CLAIMS)
    for c in verdicts.CLAIMS:
        assert c.expects in (-1, 0, 1) and (c.epoch is None or c.epoch == "last3" or isinstance(c.epoch, int)), c
        for study, (variant, schedule) in ((c.study, c.a), (c.study_b or c.study, c.b)):
            if schedule.endswith("@*"):  # the one arm of that shape that a search chose
                if (RESULTS / f"{study}.csv").exists():
                    arms = studies.STUDIES[study].arms_in(RESULTS)
                    assert len([a for a in arms if a.variant == variant and a.schedule.startswith(schedule[:-1])]) == 1
            else:
                studies.STUDIES[study].arm(variant, schedule, RESULTS)  # KeyError if the arm does not exist


def test_committed_verdicts_are_what_the_tables_give(tmp_path):
    """verdicts.csv, regenerated from the committed tables, is the committed file, and each verdict follows
    from its interval (run `make verdicts` after the results change)."""
    committed = verdicts.read_verdicts(RESULTS)
    fresh = verdicts.verdict_table(where=RESULTS)
    pd.testing.assert_frame_equal(committed, fresh.astype({"epoch": str}), check_exact=False, rtol=1e-12)
    for _, row in committed.iterrows():
        expected = "higher" if row.ci_low > 0 else "lower" if row.ci_high < 0 else "no difference shown"
        assert row.verdict == expected, row.claim
        assert row.ci_low <= row.mean_diff <= row.ci_high and 0 <= row.sign_count <= row.n, row.claim


def test_results_rows_pair_each_run_with_its_printed_numbers():
    rows = verdicts.results_rows(["cosine"])
    assert list(rows) == ["cosine: lrlab, schedule as described", "cosine: lrlab, rates d2l's code used",
                          "cosine: printed by d2l (one run)"]
    assert rows["cosine: printed by d2l (one run)"] == (0.207, 0.923, 0.892)
    assert rows["cosine: lrlab, rates d2l's code used"] == {"variant": "published", "schedule": "cosine"}


def test_printed_vs_measured_by_hand():
    rows = []
    for seed, acc in enumerate([0.87, 0.88, 0.89]):
        rows += _runs("constant", [[0.5, acc]], train_acc=0.95)
        rows[-1]["seed"] = rows[-2]["seed"] = seed
    frame = pd.DataFrame(rows).assign(train_loss=0.128)
    table = verdicts.printed_vs_measured(frame, runs=["constant"]).set_index("metric")
    # printed test acc 0.885 against 0.88 +- 0.01: z = 0.5
    assert table.loc["test_acc", "printed"] == S.PRINTED["constant"][2] == 0.885
    assert table.loc["test_acc", "z"] == pytest.approx(0.5)
    assert table.loc["train_acc", "mean"] == pytest.approx(0.95)
    assert math.isnan(table.loc["train_loss", "z"])  # no spread: no z
