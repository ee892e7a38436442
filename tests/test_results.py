"""lrlab.results: the tables' schema, exact round trips, atomic writes, clear errors, the statistics the
chapters quote; and the committed reference results themselves (schema, completeness, and that every
run trained at the rates it claims)."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from lrlab import d2l_section, profiles, results, runner
from lrlab.results import COLUMNS, ResultsError

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"


def rows(n_seeds=3, epochs=2, **over):
    out = []
    for seed in range(n_seeds):
        for epoch in range(epochs):
            row = {"experiment": "x", "variant": "corrected", "schedule": "s", "seed": seed, "epoch": epoch,
                   "lr": 0.1, "train_loss": 1.0 + seed, "train_acc": 0.5, "test_loss": 2.0, "test_acc": 0.8 + 0.01 * seed,
                   "seconds": 1.5, "weight_norm": 3.0, "data": "d"}
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


def test_summarize_and_difference_by_hand():
    frame = pd.DataFrame(rows() + rows(schedule="t", test_acc=0.9))
    summary = results.summarize(frame, metrics=("train_loss",))
    # train loss at the last epoch is 1, 2, 3 for seeds 0, 1, 2: mean 2, sd 1
    assert summary.loc[("corrected", "s"), ("train_loss", "mean")] == 2.0
    assert summary.loc[("corrected", "s"), ("train_loss", "std")] == 1.0
    assert summary.loc[("corrected", "s"), ("train_loss", "n")] == 3
    d = results.difference(frame, {"schedule": "t"}, {"schedule": "s"})
    # test acc: t is 0.9 for all seeds (sd 0); s is 0.80, 0.81, 0.82 (sd 0.01): diff 0.09 > 2 * 0.01
    assert math.isclose(d.diff, 0.09) and math.isclose(d.spread, 0.01) and d.exceeds_spread
    close = results.difference(frame, {"schedule": "s"}, {"schedule": "s"})
    assert close.diff == 0 and not close.exceeds_spread


def test_difference_needs_two_seeds_and_a_metric():
    frame = pd.DataFrame(rows(n_seeds=1))
    with pytest.raises(ValueError, match="at least two seeds"):
        results.difference(frame, {"schedule": "s"}, {"schedule": "s"})
    with pytest.raises(ValueError, match="not a metric column"):
        results.difference(frame, {"schedule": "s"}, {"schedule": "s"}, metric="seed")
    with pytest.raises(ValueError, match="no row has"):
        results.select(frame, schedule="nope")


def test_compare_table_formats_mean_sd_and_printed_rows():
    frame = pd.DataFrame(rows())
    table = results.compare_table(frame, {"ours": {"schedule": "s"}, "theirs": (0.1234, 0.5, 0.9)})
    assert list(table.columns) == ["n", "train loss", "train acc", "test acc"]
    assert table.loc["ours"].tolist() == ["3", "2.000 ± 1.000", "0.500 ± 0.000", "0.810 ± 0.010"]
    assert table.loc["theirs"].tolist() == ["", "0.123", "0.500", "0.900"]
    with pytest.raises(ValueError, match="2 numbers for 3 metrics"):
        results.compare_table(frame, {"theirs": (0.1, 0.2)})


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


@pytest.mark.parametrize("study", list(runner.STUDIES))
def test_committed_results_are_complete_with_provenance(study):
    frame, prov = committed(study)
    cfg = profiles.experiment(runner.STUDIES[study].experiment, "full")
    for (variant, schedule, seed, data), run in frame.groupby(["variant", "schedule", "seed", "data"]):
        spec = runner.RunSpec(study, variant, schedule, int(seed))
        epochs = runner.STUDIES[study].arm(variant, schedule).epochs(cfg)
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
        assert np.isfinite(run[["train_loss", "test_loss", "test_acc", "weight_norm"]].to_numpy()).all()
    arms = {(a.variant, a.schedule) for a in runner.STUDIES[study].arms}
    per_arm = frame.groupby(["variant", "schedule"])["seed"].nunique()
    assert set(per_arm.index) == arms
    assert (per_arm >= 3).all(), "at least 3 seeds per arm"


@pytest.mark.parametrize("study", list(runner.STUDIES))
def test_committed_lr_column_is_each_runs_schedule(study):
    """corrected / as_written / course: the arm's closed-form schedule; published: d2l's traced rates."""
    frame, _ = committed(study)
    cfg = profiles.experiment(runner.STUDIES[study].experiment, "full")
    for (variant, schedule), run in frame.groupby(["variant", "schedule"]):
        arm = runner.STUDIES[study].arm(variant, schedule)
        rates = arm.rates(cfg)
        if variant == "published":
            expected = d2l_section.published_rates(schedule, cfg.num_epochs)
            assert list(rates.rates) == expected
        else:
            expected = [float(rates(t)) for t in range(arm.epochs(cfg))]
        for seed, one in run.groupby("seed"):  # a run stopped early (non-finite loss) has a prefix of the rates
            assert np.allclose(one.sort_values("epoch")["lr"], expected[:len(one)], rtol=1e-12, atol=0), \
                (variant, schedule, seed)


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


def test_difference_of_per_run_values_and_its_description():
    d = results.Difference.of("gap", [0.10, 0.12, 0.14], [0.02, 0.03, 0.04])
    # means 0.12 and 0.03, sds 0.02 and 0.01: diff 0.09 > 2 * 0.02
    assert math.isclose(d.diff, 0.09) and math.isclose(d.spread, 0.02) and d.exceeds_spread
    assert d.describe() == "+0.090 (larger sd 0.020): exceeds the spread"
    assert results.Difference.of("x", [1, 2], [1.5, 2.5]).describe(1) == "-0.5 (larger sd 0.7): within the spread"
    with pytest.raises(ValueError, match="non-finite"):
        results.Difference.of("x", [1, float("nan")], [1, 2])


def test_difference_accepts_a_derived_column():
    frame = pd.DataFrame(rows()).assign(gap=lambda f: f.train_acc - f.test_acc)
    both = pd.concat([frame, frame.assign(schedule="u", gap=frame.gap + 1)])
    d = results.difference(both, {"schedule": "u"}, {"schedule": "s"}, metric="gap")
    assert math.isclose(d.diff, 1.0) and d.exceeds_spread


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
