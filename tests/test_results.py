"""lrlab.course.results: the tables' schema, exact round trips, atomic writes, clear errors, the paired
comparisons the chapters quote; and the committed reference results themselves (schema, completeness,
that every run trained at the rates and momenta its arm declares, and that they reproduce)."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import lrlab
import lrlab.stats
from lrlab.sources import d2l_section
from lrlab.course import profiles, results, runner, studies
from lrlab.course.results import COLUMNS, ResultsError

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"


def rows(n_seeds=3, epochs=2, **over):
    out = []
    for seed in range(n_seeds):
        for epoch in range(epochs):
            row = {"experiment": "x", "variant": "corrected", "schedule": "s", "seed": seed, "epoch": epoch,
                   "lr": 0.1, "momentum": 0.0, "train_loss": 1.0 + seed, "train_acc": 0.5, "val_loss": float("nan"),
                   "val_acc": float("nan"), "test_loss": 2.0, "test_acc": 0.8 + 0.01 * seed, "seconds": 1.5,
                   "weight_norm": 3.0, "data": "d"}
            row.update(over)
            out.append(row)
    return out


# ------------------------------------------------------------------------------------------------ files


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=8))
def test_floats_round_trip_bit_for_bit(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("t") / "t.csv"
    table = [dict(rows(1, 1)[0], epoch=i, lr=v) for i, v in enumerate(values)]
    results.write_table(path, table)
    back = results.read_table(path)
    assert [float(v).hex() for v in back["lr"]] == [float(v).hex() for v in values]


def test_write_table_sorts_and_keeps_the_columns_in_order(tmp_path):
    path = tmp_path / "t.csv"
    results.write_table(path, list(reversed(rows())))
    back = results.read_table(path)
    assert tuple(back.columns) == COLUMNS
    assert list(zip(back.seed, back.epoch)) == [(s, e) for s in range(3) for e in range(2)]
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_write_atomic_leaves_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    results.write_table(path, rows())
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        results.write_table(path, rows(n_seeds=1))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # no temporary file left behind


def test_read_table_names_the_missing_file_and_the_fix(tmp_path):
    with pytest.raises(ResultsError, match=r"nope\.csv does not exist.*make results"):
        results.read_table(tmp_path / "nope.csv")


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.drop(columns="test_acc"), r"lacks the column\(s\) \['test_acc'\]"),
    (lambda f: f.assign(lr=["x"] + [0.1] * (len(f) - 1)), r"column 'lr' holds a non-number"),
    (lambda f: f.assign(epoch=0), r"has epoch 0 twice"),
    (lambda f: f.assign(seed=-1), r"column 'seed' must hold integers >= 0"),
    (lambda f: f.assign(schedule=[None] + ["s"] * (len(f) - 1)), r"column 'schedule' has empty cells"),
])
def test_read_table_rejects_a_bad_schema_naming_the_file(tmp_path, edit, message):
    path = tmp_path / "bad.csv"
    edit(pd.DataFrame(rows())).to_csv(path, index=False)
    with pytest.raises(ResultsError, match=message) as err:
        results.read_table(path)
    assert "bad.csv" in str(err.value)


def test_read_table_by_study_name_uses_results_dir(tmp_path, monkeypatch):
    results.write_table(tmp_path / "x.csv", rows())
    monkeypatch.setenv("LRLAB_RESULTS", str(tmp_path))
    assert results.results_dir() == tmp_path.resolve()
    assert len(results.read_table("x")) == 6


def test_read_provenance_errors(tmp_path):
    (tmp_path / "x.provenance.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        results.read_provenance(tmp_path / "x.provenance.json")
    (tmp_path / "y.provenance.json").write_text("{}")
    with pytest.raises(ResultsError, match="no 'runs' object"):
        results.read_provenance(tmp_path / "y.provenance.json")


# ------------------------------------------------------------------------------------------------ statistics


def test_summarize_by_hand():
    frame = pd.DataFrame(rows() + rows(schedule="t", test_acc=0.9))
    summary = results.summarize(frame, metrics=("train_loss",))
    # train loss at the last epoch is 1, 2, 3 for seeds 0, 1, 2: mean 2, sd 1
    assert summary.loc[("corrected", "s"), ("train_loss", "mean")] == 2.0
    assert summary.loc[("corrected", "s"), ("train_loss", "std")] == 1.0
    assert summary.loc[("corrected", "s"), ("train_loss", "n")] == 3


def test_paired_comparison_matches_scipys_paired_t_test():
    from scipy import stats

    a = [0.912, 0.905, 0.918, 0.909, 0.914]
    b = [0.897, 0.893, 0.901, 0.899, 0.894]
    p = lrlab.paired_difference(a, b)
    ref = stats.ttest_rel(a, b)
    lo, hi = ref.confidence_interval(0.95)
    assert p.n == 5 and p.mean_diff == pytest.approx(np.mean(np.subtract(a, b)), rel=1e-12)
    assert (p.ci_low, p.ci_high) == pytest.approx((lo, hi), rel=1e-12)
    assert p.t == pytest.approx(ref.statistic, rel=1e-12)
    assert p.sign_count == 5 and p.verdict == "higher"


def test_paired_comparison_by_hand():
    # differences 1, 2, 3: mean 2, sd 1. With 2 degrees of freedom Student's t has the closed form
    # F(t) = 1/2 + t / (2 sqrt(t^2 + 2)), so its 0.975 quantile solves t / sqrt(t^2 + 2) = 0.95:
    # t = 0.95 sqrt(2 / (1 - 0.95^2)) = 4.3027; the interval is 2 -+ t / sqrt(3).
    p = lrlab.paired_difference([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    half = 0.95 * math.sqrt(2 / (1 - 0.95 ** 2)) / math.sqrt(3)
    assert (p.mean_diff, p.sd_diff) == (2.0, 1.0)
    assert (p.ci_low, p.ci_high) == pytest.approx((2 - half, 2 + half), rel=1e-12)
    assert p.ci_low < 0 < p.ci_high and p.verdict == "no difference shown" and p.sign_count == 3
    # the same differences shifted by 2.5: the interval leaves 0 behind
    q = lrlab.paired_difference([4.5, 6.5, 8.5], [1.0, 2.0, 3.0])
    assert q.verdict == "higher" and q.describe() == "higher by 4.50 [2.02, 6.98], in 3 of 3 seeds"
    r = lrlab.paired_difference([1.0, 2.0, 3.0], [4.5, 6.5, 8.5])
    assert r.verdict == "lower" and r.sign_count == 3 and r.ci_high < 0
    assert r.describe() == "lower by 4.50 [2.02, 6.98], in 3 of 3 seeds"
    assert p.describe(scale=100, digits=0, unit="points") == ("no difference shown (+200 points, interval [-48, +448]; "
                                                              "3 of 3 seeds on the side of the mean)")


def test_pairing_finds_what_the_group_rule_misses():
    """Five seeds spread over 4 points; one arm is higher by 0.5 points in every seed. The old rule (|diff| >
    2 x the larger sd) saw nothing; the paired interval shows it."""
    base = np.array([0.86, 0.88, 0.87, 0.89, 0.85])
    p = lrlab.paired_difference(base + 0.005 + np.array([0, 1e-4, -1e-4, 2e-4, -2e-4]), base)
    assert abs(p.mean_diff) < 2 * base.std(ddof=1)
    assert p.verdict == "higher" and p.sign_count == 5


@pytest.mark.parametrize("a, b, message", [
    ([1.0], [2.0], "at least two seeds"),
    ([1.0, 2.0], [1.0], "same length"),
    ([1.0, float("nan")], [1.0, 2.0], "finite"),
])
def test_paired_comparison_rejects_what_it_cannot_compare(a, b, message):
    with pytest.raises(ValueError, match=message):
        lrlab.paired_difference(a, b)


@given(st.lists(st.floats(-1, 1), min_size=2, max_size=8))
@settings(max_examples=60, deadline=None)
def test_paired_comparison_invariants(d):
    b = np.linspace(0.1, 0.9, len(d))
    p = lrlab.paired_difference(b + np.asarray(d), b)
    assert p.ci_low <= p.mean_diff + 1e-12 and p.mean_diff <= p.ci_high + 1e-12
    assert p.verdict in lrlab.stats.VERDICTS
    assert (p.verdict == "no difference shown") == (p.ci_low <= 0 <= p.ci_high)
    flipped = lrlab.paired_difference(b, b + np.asarray(d))
    assert flipped.mean_diff == pytest.approx(-p.mean_diff, abs=1e-12)


def test_paired_on_a_table_pairs_by_seed_and_can_average_the_last_epochs():
    frame = pd.DataFrame(rows(n_seeds=3, epochs=4) + rows(n_seeds=3, epochs=4, schedule="t", test_acc=0.9))
    p = results.paired(frame, {"schedule": "t"}, {"schedule": "s"})
    assert p.n == 3 and p.mean_diff == pytest.approx(0.09) and p.verdict == "higher"
    seeds, a, b = results.paired_values(frame, {"schedule": "t"}, {"schedule": "s"}, epoch="last3")
    assert seeds == [0, 1, 2] and a.tolist() == pytest.approx([0.9] * 3)
    shifted = frame.assign(test_acc=frame.test_acc + 0.01 * frame.epoch)
    _, a, _ = results.paired_values(shifted, {"schedule": "s"}, {"schedule": "t"}, epoch="last3")
    assert a.tolist() == pytest.approx([0.8 + 0.02, 0.81 + 0.02, 0.82 + 0.02])  # the mean of epochs 1, 2, 3
    one_less = frame[~((frame.schedule == "t") & (frame.seed == 2))]
    assert results.paired(one_less, {"schedule": "t"}, {"schedule": "s"}).n == 2  # only seeds both sides have
    with pytest.raises(ValueError, match="more than one run per seed"):
        results.paired(frame, {"experiment": "x"}, {"schedule": "s"})
    with pytest.raises(ValueError, match="not a metric column"):
        results.paired(frame, {"schedule": "t"}, {"schedule": "s"}, metric="seed")


def test_compare_table_formats_mean_sd_and_printed_rows():
    frame = pd.DataFrame(rows())
    table = results.compare_table(frame, {"ours": {"schedule": "s"}, "theirs": (0.1234, 0.5, 0.9)})
    assert list(table.columns) == ["n", "train loss", "train acc", "test acc"]
    # each mean to the decimal of its sd's first significant digit; an sd of 0 keeps 3 decimals
    assert table.loc["ours"].tolist() == ["3", "2 ± 1", "0.500 ± 0.000", "0.81 ± 0.01"]
    assert table.loc["theirs"].tolist() == ["", "0.123", "0.500", "0.900"]
    fixed = results.compare_table(frame, {"ours": {"schedule": "s"}}, digits=3)
    assert fixed.loc["ours"].tolist() == ["3", "2.000 ± 1.000", "0.500 ± 0.000", "0.810 ± 0.010"]
    with pytest.raises(ValueError, match="2 numbers for 3 metrics"):
        results.compare_table(frame, {"theirs": (0.1, 0.2)})


@pytest.mark.parametrize("values, text", [
    ([0.881, 0.885, 0.877], "0.881 ± 0.004"),      # sd 0.004: three decimals
    ([0.80, 0.8192, 0.81], "0.81 ± 0.01"),         # sd 0.0096 rounds to 0.010: one decimal fewer
    ([0.9, 0.9, 0.9], "0.900 ± 0.000"),            # no spread: three decimals
    ([12.0, 15.0, 18.0], "15 ± 3"),
    ([0.5], "0.500"),                              # one value: no sd
])
def test_mean_sd_text_keeps_the_digits_the_spread_supports(values, text):
    assert results.mean_sd_text(values) == text


def test_per_epoch_mean_and_sd():
    frame = pd.DataFrame(rows())
    out = results.per_epoch(frame, "train_loss")
    assert out["mean"].tolist() == [2.0, 2.0] and out["std"].tolist() == [1.0, 1.0]


# ------------------------------------------------------------------------------------------------ the committed results


def committed(study):
    path = RESULTS / f"{study}.csv"
    if not path.exists():
        pytest.skip(f"{path} is not committed yet")
    return results.read_table(path), results.read_provenance(RESULTS / f"{study}.provenance.json")


@pytest.mark.parametrize("study", list(studies.STUDIES))
def test_committed_results_are_complete_with_provenance(study):
    frame, prov = committed(study)
    cfg = profiles.experiment(studies.STUDIES[study].experiment, "full")
    arms = {(a.variant, a.schedule): a for a in studies.STUDIES[study].arms_in(RESULTS)}
    for (variant, schedule, seed, data), run in frame.groupby(["variant", "schedule", "seed", "data"]):
        spec = studies.RunSpec(study, variant, schedule, int(seed))
        arm = arms[variant, schedule]
        epochs = arm.num_epochs(cfg)
        entry = prov["runs"][spec.id]
        if entry.get("stopped"):  # training stopped after an epoch whose training loss was not finite
            assert 1 <= len(run) <= epochs and run["epoch"].tolist() == list(range(len(run))), spec.id
            assert not np.isfinite(run["train_loss"].iloc[-1]), spec.id
            run = run.iloc[:-1]
        else:
            assert run["epoch"].tolist() == list(range(epochs)), spec.id
        assert entry["profile"] == "full" and entry["data"] == data
        for key in ("device", "torch", "lrlab", "python", "git", "started", "finished", "wall_seconds", "command"):
            assert entry[key] not in (None, ""), (spec.id, key)
        scored = ["val_loss", "val_acc"] if arm.holdout else ["test_loss", "test_acc"]
        assert np.isfinite(run[["train_loss", "weight_norm"] + scored].to_numpy()).all(), spec.id
        if arm.holdout:  # a search never looked at the test set
            assert run[["test_loss", "test_acc"]].isna().all().all(), spec.id
    per_arm = frame.groupby(["variant", "schedule"])["seed"].nunique()
    assert set(per_arm.index) == set(arms)
    for key, arm in arms.items():
        assert per_arm[key] == len(arm.seeds or studies.STUDIES[study].seeds), key  # every seed the plan has


@pytest.mark.parametrize("study", list(studies.STUDIES))
def test_committed_lr_and_momentum_columns_are_each_runs_declaration(study):
    """Every run trained at the rates and momenta its arm declares (published: d2l's traced rates)."""
    frame, _ = committed(study)
    budget = studies.Budget.of(profiles.experiment(studies.STUDIES[study].experiment, "full"))
    for (variant, schedule), run in frame.groupby(["variant", "schedule"]):
        arm = studies.STUDIES[study].arm(variant, schedule, RESULTS)
        rates, momenta = arm.rates(budget), arm.momenta(budget)
        if variant == "published":
            assert [rates(t) for t in range(30)] == d2l_section.published_rates(schedule, 30)
        expected = [(rates(t), momenta(t)) for t in range(arm.num_epochs(budget.cfg))]
        for seed, one in run.groupby("seed"):  # a run stopped early (non-finite loss) has a prefix of them
            one = one.sort_values("epoch")
            assert np.allclose(one["lr"], [r for r, _ in expected[:len(one)]], rtol=1e-12, atol=0), (variant, schedule, seed)
            assert np.allclose(one["momentum"], [m for _, m in expected[:len(one)]], rtol=1e-12, atol=0), \
                (variant, schedule, seed)


def test_committed_range_test_is_what_the_lr_find_runs_trained_at():
    table = studies.read_range_test(RESULTS)
    if table is None:
        pytest.skip("book/results/range_test.csv is not committed yet")
    assert sorted(table.seed.unique()) == list(studies.RANGE_TEST_SEEDS)
    runs, _ = committed("lr_find")
    for rule, lr in studies.range_test_rates(RESULTS).items():
        assert (runs[runs.schedule == rule].lr == lr).all(), rule
        assert lr in set(table[table.rule == rule].lr)  # a median of five: one seed's suggestion
    prov = results.read_provenance(RESULTS / "lr_find.provenance.json")["range_test"]
    assert prov["seeds"] == list(studies.RANGE_TEST_SEEDS) and prov["cpu"]


def test_committed_published_constant_repeats_corrected_constant_exactly():
    """The two 'constant' variants train at the same 0.3 from the same seed: on one device the runs are identical."""
    frame, prov = committed("d2l")
    cols = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"]
    compared = 0
    both = [set(results.select(frame, variant=v, schedule="constant").seed) for v in ("corrected", "published")]
    for seed in sorted(both[0] & both[1]):
        ids = [runner.RunSpec("d2l", v, "constant", int(seed)).id for v in ("corrected", "published")]
        if prov["runs"][ids[0]]["device"] != prov["runs"][ids[1]]["device"]:
            continue
        a = results.select(frame, variant="corrected", schedule="constant", seed=seed)[cols].reset_index(drop=True)
        b = results.select(frame, variant="published", schedule="constant", seed=seed)[cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
        compared += 1
    assert compared >= 1


# ------------------------------------------------------------------------------------------------ timing


def _run_provenance(wall, started, finished, device="cpu (test)", torch="2.0"):
    return {"device": device, "torch": torch, "wall_seconds": wall, "started": started, "finished": finished}


def test_timing_by_hand(tmp_path):
    table = rows(n_seeds=3, epochs=2)
    for row, seconds in zip(table, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)):
        row["seconds"] = seconds
    results.write_table(tmp_path / "x.csv", table)
    (tmp_path / "x.provenance.json").write_text(json.dumps({"runs": {
        "a": _run_provenance(60, "2026-01-01T10:00:00+00:00", "2026-01-01T10:01:00+00:00"),
        "b": _run_provenance(180, "2026-01-01T09:00:00+00:00", "2026-01-01T09:03:00+00:00", torch="2.1"),
        "c": _run_provenance(120, "2026-01-01T11:00:00+00:00", "2026-01-01T11:02:00+00:00")}}))
    t = results.timing("x", tmp_path)
    assert t["runs"] == 3 and t["minutes"] == 6.0 and t["run_minutes"] == 2.0
    assert t["epoch_seconds"] == 3.5  # the median of 1..6
    assert t["devices"] == ["cpu (test)"] and t["torch"] == ["2.0", "2.1"]
    assert t["first"] == "2026-01-01T09:00:00+00:00" and t["last"] == "2026-01-01T11:02:00+00:00"
    text = results.timing_text(["x"], tmp_path)
    assert text == ("- `x`: 3 runs, 6 minutes of training in all (2.0 minutes per run and 3.5 s per epoch, "
                    "medians), on cpu (test), torch 2.0, 2.1, between 2026-01-01 09:00 and 2026-01-01 11:02 UTC.")


def test_timing_text_sums_the_studies(tmp_path):
    for name, walls in (("x", (60, 120)), ("y", (5220,))):
        results.write_table(tmp_path / f"{name}.csv", rows())
        (tmp_path / f"{name}.provenance.json").write_text(json.dumps({"runs": {
            f"r{i}": _run_provenance(w, f"2026-01-0{i + 1}T10:00:00+00:00", f"2026-01-0{i + 1}T11:00:00+00:00")
            for i, w in enumerate(walls)}}))
    assert results.timing_text(where=tmp_path).splitlines()[-1] == "- In all: 3 runs, 1.5 hours of training."
    assert "In all" not in results.timing_text(["x"], tmp_path)  # one study: its own line is the total


def test_timing_names_the_cpus_the_runs_record(tmp_path):
    results.write_table(tmp_path / "x.csv", rows())
    runs = {"a": _run_provenance(60, "2026-01-01T10:00:00+00:00", "2026-01-01T10:01:00+00:00"),
            "b": _run_provenance(60, "2026-01-01T11:00:00+00:00", "2026-01-01T11:01:00+00:00"),
            "c": _run_provenance(60, "2026-01-01T12:00:00+00:00", "2026-01-01T12:01:00+00:00")}
    runs["b"]["cpu"] = runs["c"]["cpu"] = "AuthenticAMD family 25 model 17 stepping 1, AVX512"
    (tmp_path / "x.provenance.json").write_text(json.dumps({"runs": runs}))
    assert results.timing("x", tmp_path)["cpus"] == {"AuthenticAMD family 25 model 17 stepping 1, AVX512": 2}
    assert ("on cpu (test) (2 runs on AuthenticAMD family 25 model 17 stepping 1, AVX512; 1 from before the CPU id "
            "was recorded), torch 2.0") in results.timing_text(["x"], tmp_path)


def test_timing_without_runs_names_the_file(tmp_path):
    results.write_table(tmp_path / "x.csv", rows())
    (tmp_path / "x.provenance.json").write_text('{"runs": {}}')
    with pytest.raises(ResultsError, match=r"x\.provenance\.json records no runs"):
        results.timing("x", tmp_path)


def test_readme_states_the_committed_runs_timing():
    """The README's timing block is what the provenance files say (``make sync`` writes it)."""
    readme = (RESULTS.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- results-timing -->\n")[1].split("<!-- /results-timing -->")[0]
    assert block == results.timing_text(where=RESULTS) + "\n", "run `make sync`"
