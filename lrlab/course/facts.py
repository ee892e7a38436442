"""What each chapter's prose quotes, computed from the committed results: one function per chapter.

A chapter glues its numbers and verdicts into its sentences with one cell (hidden in the book)::

    course.glue(**facts.cosine_warmup())

and ``tests/test_facts.py`` checks, against the same files, what the sentences around the glued values
rely on (that a difference is a difference, that a run diverged). Verdicts come from
``book/results/verdicts.csv`` (:mod:`lrlab.course.verdicts`) and read like
``"higher by +1.43 points [+0.87, +1.99], in 5 of 5 seeds"`` (:meth:`lrlab.PairedDifference.describe`).

Every function takes ``where``: the results folder (default :func:`lrlab.course.results.results_dir`).
"""

from __future__ import annotations

from ..stats import paired_difference
from . import results as _results
from . import verdicts as _verdicts

__all__ = ["verdict", "says", "source", "why_schedule", "sqrt_factor", "piecewise_constant", "cosine_warmup",
           "mnist_cnn", "lr_finder", "cycles", "unknown_budget", "errata", "large_batches",
           "warmup_multifactor", "comparison", "exercises"]


def verdict(claim: str, where=None) -> str:
    """The verdict of ``claim`` in ``verdicts.csv``: higher, lower or no difference shown."""
    return _verdicts.finding(claim, where)["verdict"]


def says(claim: str, where=None, scale: float = 100.0, digits: int = 2, unit: str = "points") -> str:
    """The verdict of ``claim`` in words, with its interval and its seeds (accuracy in points by default)."""
    return _verdicts.finding(claim, where)["paired"].describe(scale, digits, unit)


def source(claim: str, where=None) -> str:
    """A source's statement measured: supported, contradicted or not shown (see :func:`verdicts.source_verdict`)."""
    expects = {c.claim: c.expects for c in _verdicts.CLAIMS}[claim]
    return _verdicts.source_verdict(verdict(claim, where), expects)


def _table(name: str, where=None):
    return _results.read_table(name if where is None else f"{where}/{name}.csv")


def _folder(where=None):
    """The results folder: ``where``, or the committed results."""
    return _results.results_dir() if where is None else where


# --------------------------------------------------------------------------- the chapters


def why_schedule(where=None) -> dict:
    """'Why schedule the learning rate': the constant 0.3 over seeds; how it ends; d2l's printed run."""
    d2l = _table("d2l", where)
    runs = _verdicts.with_measures(_results.select(d2l, variant="corrected", schedule="constant"))

    def window(first, last):
        return runs[runs.epoch.between(first, last)].groupby("seed")[["train_acc", "test_acc"]].mean()

    rise = window(25, 29) - window(15, 19)  # from the middle of the run to its end, per seed
    final = _results.final_epoch(runs)
    printed = _verdicts.printed_vs_measured(d2l, ["constant"]).set_index("metric")
    return {"c2_n": len(final), "c2_train_rise": 100 * rise.train_acc.mean(),
            "c2_train_rise_min": 100 * rise.train_acc.min(), "c2_test_rise": 100 * rise.test_acc.mean(),
            "c2_gap": 100 * final.gap.mean(), "c2_gap_sd": 100 * final.gap.std(),
            "c2_rough": 100 * final.roughness.mean(), "c2_test": final.test_acc.mean(),
            "c2_test_sd": final.test_acc.std(), "c2_printed_z": printed.loc["test_acc", "z"]}


def sqrt_factor(where=None) -> dict:
    """'The square-root and factor schedules': d2l's four statements, and the paired method introduced."""
    d2l = _table("d2l", where)
    final = _results.final_epoch(d2l).set_index(["variant", "schedule", "seed"])
    norm_ratio = (final.loc[("corrected", "square_root"), "weight_norm"].mean()
                  / final.loc[("corrected", "constant"), "weight_norm"].mean())
    constant, sqrt = {"variant": "corrected", "schedule": "constant"}, {"variant": "corrected", "schedule": "square_root"}
    seeds, a, b = _results.paired_values(d2l, sqrt, constant)
    sd_a, sd_b = a.std(ddof=1), b.std(ddof=1)
    out = {"c3_norm": 100 * (1 - norm_ratio), "c3_n": len(seeds),
           "c3_sd_sqrt": 100 * sd_a, "c3_sd_const": 100 * sd_b, "c3_sd_diff": 100 * paired_difference(a, b).sd_diff,
           "c3_last3": says("sqrt_vs_constant_last3", where)}
    for name in ("sqrt_better", "sqrt_smoother", "sqrt_less_overfitting", "small_steps_near_zero"):
        for variant in ("corrected", "published"):
            claim = f"{name}_{variant}"
            out[f"c3_{name}_{variant}"] = source(claim, where)
    out["c3_acc"] = says("sqrt_better_corrected", where)
    out["c3_acc_published"] = says("sqrt_better_published", where)
    out["c3_gap"] = says("sqrt_less_overfitting_corrected", where)
    out["c3_rough"] = says("sqrt_smoother_corrected", where)
    out["c3_rough_published"] = says("sqrt_smoother_published", where)
    return out


def piecewise_constant(where=None) -> dict:
    """'Piecewise constant schedules': the cut at epoch 15, paired within each run; d2l's 'better solution'."""
    d2l = _table("d2l", where)
    described = _results.select(d2l, variant="corrected", schedule="multi_step")
    loss = described.pivot(index="epoch", columns="seed", values="train_loss")  # one column per seed
    at_cut = loss.loc[14] - loss.loc[15]  # the fall into epoch 15, the first at 0.25
    before = loss.loc[13] - loss.loc[14]  # the fall one epoch earlier, still at 0.5
    cut = paired_difference(at_cut, before)
    return {"c4_at_cut": at_cut.mean(), "c4_before": before.mean(),
            "c4_cut": cut.describe(scale=1, digits=3, unit=""), "c4_cut_verdict": cut.verdict,
            "c4_better": says("multi_step_better_corrected", where),
            "c4_better_published": says("multi_step_better_published", where),
            "c4_better_source": source("multi_step_better_corrected", where),
            "c4_better_source_published": source("multi_step_better_published", where)}


def cosine_warmup(where=None) -> dict:
    """'Cosine schedules and warmup': the cosines against the constant rate; warmup's first five epochs."""
    d2l = _table("d2l", where)
    warm_vs_plain = _results.paired(d2l, {"variant": "corrected", "schedule": "cosine_warmup"},
                                    {"variant": "corrected", "schedule": "cosine"})
    return {"c5_cos": says("cosine_better_corrected", where),
            "c5_cos_published": says("cosine_better_published", where),
            "c5_warm": says("decay_test_acc_cosine_warmup_corrected", where),
            "c5_warm_published": says("decay_test_acc_cosine_warmup_published", where),
            "c5_cos_source": source("cosine_better_corrected", where),
            "c5_early": says("warmup_early_corrected", where, scale=1, digits=3, unit=""),
            "c5_early_published": says("warmup_early_published", where, scale=1, digits=3, unit=""),
            "c5_early_source": source("warmup_early_corrected", where),
            "c5_early_source_published": source("warmup_early_published", where),
            "c5_ww": warm_vs_plain.describe(100, 2, "points")}


def mnist_cnn(where=None) -> dict:
    """'StepLR and CosineAnnealingLR on MNIST': the four variants, every pair compared seed by seed."""
    mnist = _table("mnist_cnn", where)
    final = _results.final_epoch(mnist)
    means = final.groupby(["variant", "schedule"])["test_acc"].mean()
    claims = [c.claim for c in _verdicts.CLAIMS if c.chapter == "mnist-step-cosine"]
    shown = [c for c in claims if verdict(c, where) != "no difference shown"]
    widest = max(claims, key=lambda c: _verdicts.finding(c, where)["ci_high"] - _verdicts.finding(c, where)["ci_low"])
    return {"mnist_n_seeds": int(final.groupby(["variant", "schedule"]).size().min()),
            "mnist_acc_low": 100 * means.min(), "mnist_acc_high": 100 * means.max(),
            "mnist_fraction": 100 * 8000 / 60000, "mnist_pairs": len(claims), "mnist_shown": len(shown),
            "mnist_written_vs_corrected": says("mnist_cosine_written_vs_cosine_corrected", where),
            "mnist_step_vs_constant": says("mnist_step_vs_constant", where),
            "mnist_widest": says(widest, where)}


def lr_finder(where=None) -> dict:
    """'Finding the learning rate': the rates the range test suggested, and training at them."""
    from .studies import range_test_rates

    rates = range_test_rates(_folder(where))
    found = _table("lr_find", where)
    steepest = _results.final_epoch(_results.select(found, schedule="steepest"))
    return {"c9a_valley": rates["valley"], "c9a_minimum": rates["minimum"], "c9a_steepest": rates["steepest"],
            "c9a_vd": says("lr_find_valley_vs_constant", where), "c9a_vd3": says("lr_find_valley_vs_constant_last3", where),
            "c9a_md": says("lr_find_minimum_vs_constant", where),
            "c9a_md3": says("lr_find_minimum_vs_constant_last3", where),
            "c9a_steep_acc": steepest.test_acc.max(), "c9a_steep_loss": steepest.train_loss.min(),
            "c9a_epoch0": _results.select(_table("d2l", where), variant="corrected", schedule="constant", epoch=0)["train_loss"].mean()}


def cycles(where=None) -> dict:
    """'Cycles': one-cycle and warm restarts against d2l's cosine; shape and momentum separated."""
    runs = _table("cycles", where)
    last = _results.final_epoch(runs)
    cycled = _results.select(last, schedule="cosine_cycled_momentum")
    restart = _results.select(runs, schedule="restarts")
    out = {f"c9b_{c.claim}": says(c.claim, where, *((100, 2, "points") if c.measure.endswith("acc") else (1, 3, "")))
           for c in _verdicts.CLAIMS if c.chapter == "cycles"}
    out.update(c9b_one_loss=_results.select(last, schedule="one_cycle").train_loss.mean(),
               c9b_nomom_loss=_results.select(last, schedule="one_cycle_no_momentum").train_loss.mean(),
               c9b_one_test_loss=_results.select(last, schedule="one_cycle").test_loss.mean(),
               c9b_nomom_test_loss=_results.select(last, schedule="one_cycle_no_momentum").test_loss.mean(),
               c9b_cycled_acc=cycled.test_acc.max(), c9b_cycled_loss=cycled.train_loss.min(),
               c9b_end1=_results.select(restart, epoch=9).test_acc.mean(),
               c9b_after=_results.select(restart, epoch=10).test_acc.mean(),
               c9b_end2=_results.final_epoch(restart).test_acc.mean())
    return out


def unknown_budget(where=None) -> dict:
    """'Schedules for an unknown budget': WSD and schedule-free against a cosine planned for each budget."""
    from .studies import PROBE_EPOCHS, schedule_free_lr

    budget = _table("budget", where)
    probe = _results.final_epoch(_results.select(budget, variant="probe")).set_index("schedule")["train_loss"]
    out = {f"c9c_wsd_{B}": says(f"wsd_vs_cosine_{B}", where) for B in (10, 20, 30)}
    out.update({f"c9c_sf_{B}": says(f"schedule_free_vs_cosine_{B}", where) for B in (10, 20, 30)})
    out.update(c9c_probe_03=probe["schedule_free@0.3"], c9c_probe_1=probe["schedule_free@1"],
               c9c_probe_epochs=PROBE_EPOCHS,
               c9c_sf_lr=schedule_free_lr(_folder(where)))
    # averaging the weights against decaying the rate (the averaging study)
    def short(arm):  # the glue names call the EMA arm "ema"
        return "ema" if arm == "constant_ema" else arm

    for a, b in _verdicts.AVERAGING_PAIRS:
        out[f"c9c_avg_{short(a)}_{short(b)}"] = says(f"avg_{a}_vs_{b}", where)
        out[f"c9c_avg_{short(a)}_{short(b)}_loss"] = says(f"avg_{a}_vs_{b}_test_loss", where, scale=1.0, digits=3,
                                                          unit="")
    for name in ("cosine", "wsd"):
        out[f"c9c_avg_{name}_machine"] = says(f"avg_{name}_here_vs_budget", where)
    last = _results.final_epoch(_table("averaging", where))
    out["c9c_avg_constant_sd"] = 100 * _results.select(last, schedule="constant")["test_acc"].std(ddof=1)
    out["c9c_avg_n"] = int(_results.select(last, schedule="constant")["seed"].nunique())
    return out


def errata(where=None) -> dict:
    """'Errata': whether d2l's bugs moved its runs; its statements measured, counted by verdict."""
    table = _verdicts.read_verdicts(where)
    claims = {c.claim: c for c in _verdicts.CLAIMS}
    statements = [c for c in _verdicts.CLAIMS if c.study == "d2l" and c.expects]
    measured = {c.claim: _verdicts.source_verdict(table.set_index("claim").loc[c.claim, "verdict"], c.expects)
                for c in statements}
    published = {k: v for k, v in measured.items() if k.endswith("_published")}
    changed = [k for k in published if measured[k] != measured[k.replace("_published", "_corrected")]]
    bugs = table[table.claim.str.startswith("bugs_") & (table.measure == "test_acc")]
    largest = bugs.loc[bugs.mean_diff.abs().idxmax()]
    out = {"c11_n": len(published), "c11_supported": sum(v == "supported" for v in published.values()),
           "c11_contradicted": sum(v == "contradicted" for v in published.values()),
           "c11_not_shown": sum(v == "not shown" for v in published.values()),
           "c11_changed": len(changed), "c11_changed_names": ", ".join(sorted(k[:-len("_published")] for k in changed)),
           "c11_bugs_shown": int((bugs.verdict != "no difference shown").sum()), "c11_bugs_n": len(bugs),
           "c11_largest": says(largest.claim, where), "c11_largest_run": claims[largest.claim].a[1]}
    out.update({f"c11_{k}": v for k, v in measured.items()})
    lb = large_batches(where)  # warmup and divergence, in d2l's regime (the section's summary: warmup prevents it)
    out.update(c11_div_without=lb["c9d_d2l_linear_diverged"], c11_div_with=lb["c9d_d2l_linear_warmup_diverged"],
               c11_div_n=lb["c9d_d2l_linear_n"], c11_learned_with=lb["c9d_d2l_linear_warmup_learned"])
    warm = warmup_multifactor(where)
    out.update(c11_warmup_faster=warm["c7_warmup_faster_source"], c11_warmup_stabler=warm["c7_warmup_stabler_source"])
    return out


#: A run "at chance": its final test accuracy within this of 0.1, a guess among Fashion-MNIST's ten classes.
CHANCE_BAND = 0.005


def _outcomes(runs) -> dict:
    """How ``runs`` (final epochs) ended: diverged (a non-finite training loss), at chance, or learned."""
    import numpy as np

    diverged = ~np.isfinite(runs.train_loss)
    chance = ~diverged & (runs.test_acc - 0.1).abs().lt(CHANCE_BAND)
    return {"n": len(runs), "diverged": int(diverged.sum()), "chance": int(chance.sum()),
            "learned": int((~diverged & ~chance).sum())}


def large_batches(where=None) -> dict:
    """'Large batches': what a larger batch costs, the linear rule from three base rates, and the warmup."""
    import math

    large = _table("large_batch", where)
    last = _results.final_epoch(large)

    def runs(batch, schedule):
        return _results.select(last, variant=f"global{batch}", schedule=schedule)

    out = {"c9d_chance": math.log(10)}
    for prefix, tag in (("", "d2l"), ("goyal_", "goyal"), ("base0.1_", "b01")):
        for batch in (256, 1024, 4096, 8192):
            for rule in ("unscaled", "linear", "linear_warmup"):
                if ((last.variant == f"global{batch}") & (last.schedule == prefix + rule)).any():
                    o = _outcomes(runs(batch, prefix + rule))
                    out.update({f"c9d_{tag}_{rule}_{batch}_{k}": v for k, v in o.items()})
        for rule in ("linear", "linear_warmup"):
            scaled = last[last.schedule == prefix + rule]
            o = _outcomes(scaled)
            out.update({f"c9d_{tag}_{rule}_{k}": v for k, v in o.items()})
    for batch in (256, 1024, 4096, 8192):
        acc = runs(batch, "unscaled").test_acc
        out[f"c9d_unscaled_{batch}"], out[f"c9d_min_{batch}"], out[f"c9d_max_{batch}"] = acc.mean(), acc.min(), acc.max()
    b01 = runs(1024, "base0.1_linear").test_acc
    out.update(c9d_b01_1024=b01.mean(), c9d_b01_256=runs(256, "base0.1_unscaled").test_acc.mean(),
               c9d_b01_unscaled_1024=runs(1024, "base0.1_unscaled").test_acc.mean())
    for claim in ("lb_unscaled_1024_vs_256", "lb_base01_linear_vs_unscaled_1024", "lb_base01_linear_1024_vs_256",
                  "lb_base01_warmup_vs_linear_1024"):
        out[f"c9d_{claim}"] = says(claim, where)
    # the room: what the tuned search measured at batch 256 with a constant rate (validation accuracy)
    search = _results.final_epoch(_results.select(_table("tuned", where), variant="search"))
    for peak in ("0.6", "1.2"):
        out[f"c9d_room_{peak.replace('.', '')}"] = float(search[search.schedule == f"constant@{peak}"].val_acc.mean())
    from .studies import range_test_rates

    out["c9d_steepest"] = range_test_rates(_folder(where))["steepest"]
    return out


def warmup_multifactor(where=None) -> dict:
    """'Warmup, then multi-step decay': the tutorial's promise measured on the course's proxy."""
    runs = _table("warmup", where)
    early = _results.select(runs, epoch=4).groupby("schedule").train_loss.mean()
    out = {f"c7_{c}": says(c, where, *((1, 3, "") if c == "warmup_faster" else (100, 2, "points")))
           for c in ("warmup_faster", "warmup_stabler", "warmup_final")}
    out.update({f"c7_{c}_source": source(c, where) for c in ("warmup_faster", "warmup_stabler")})
    out.update(c7_early_warm=early["warmup_multifactor"], c7_early_none=early["multi_step"],
               c7_diverged=_outcomes(_results.final_epoch(runs))["diverged"], c7_n=len(_results.final_epoch(runs)))
    return out


#: d2l's shapes as the chapters' prose names them
_SHAPES = {"constant": "constant rate", "square_root": "square root", "multi_step": "multi-step schedule",
           "cosine": "cosine", "cosine_warmup": "cosine with warmup"}


def comparison(where=None) -> dict:
    """'Comparing the schedules': d2l's five runs paired against the constant rate, each shape at its own
    peak (the tuned study), and d2l's printed runs against the course's seeds."""
    from ..sources.d2l_section import RUNS

    d2l = _table("d2l", where)
    final = _results.final_epoch(d2l)
    sds = final.groupby(["variant", "schedule"]).test_acc.std()
    out = {"c10_n": int(final.groupby(["variant", "schedule"]).size().min()),
           "c10_sd_low": 100 * sds.min(), "c10_sd_high": 100 * sds.max(),
           "c10_sd_widest": sds.loc["corrected"].idxmax()}
    for run in RUNS[1:]:
        for variant in ("corrected", "published"):
            out[f"c10_{run}_{variant}_acc"] = says(f"decay_test_acc_{run}_{variant}", where)
            out[f"c10_{run}_{variant}_gap"] = says(f"decay_gap_{run}_{variant}", where)
            out[f"c10_{run}_{variant}_loss"] = says(f"decay_train_loss_{run}_{variant}", where, 1, 3, "")
    for variant in ("corrected", "published"):
        out[f"c10_ww_{variant}"] = says(f"warmup_vs_cosine_{variant}", where)
    printed = _verdicts.printed_vs_measured(d2l).set_index(["run", "metric"])
    far = printed[printed.z.abs() > 2]
    out.update(c10_within=int((printed.z.abs() <= 2).sum()), c10_numbers=len(printed), c10_far=len(far),
               c10_far_runs=", ".join(sorted({r for r, _ in far.index})),
               c10_warm_mean=printed.loc[("cosine_warmup", "test_acc"), "mean"])
    for metric in ("test_acc", "train_loss", "train_acc"):
        out[f"c10_warm_z_{metric}"] = printed.loc[("cosine_warmup", metric), "z"]
    # each shape at its own peak
    from .studies import D2L_PEAKS, TUNED_PEAKS, tuned_peaks

    peaks = tuned_peaks(_folder(where))
    tuned = _table("tuned", where)
    search = _results.final_epoch(_results.select(tuned, variant="search"))
    finals = _results.final_epoch(_results.select(tuned, variant="final"))
    out.update(c10_peaks_n=len(TUNED_PEAKS), c10_peak_lo=min(TUNED_PEAKS), c10_peak_hi=max(TUNED_PEAKS))
    for shape in RUNS:
        name = f"{shape}@{peaks[shape]:g}"
        out[f"c10_peak_{shape}"] = peaks[shape]
        out[f"c10_val_{shape}"] = float(search[search.schedule == name].val_acc.mean())
        out[f"c10_final_{shape}"] = float(finals[finals.schedule == name].test_acc.mean())
        out[f"c10_tuned_vs_d2l_{shape}"] = says(f"tuned_vs_d2l_{shape}", where)
        if shape != "constant":
            out[f"c10_tuned_{shape}"] = says(f"tuned_{shape}_vs_constant", where)
            out[f"c10_tuned_{shape}_last3"] = says(f"tuned_{shape}_vs_constant_last3", where)
            out[f"c10_tuned_{shape}_verdict"] = verdict(f"tuned_{shape}_vs_constant", where)
    val = search.assign(shape=search.schedule.str.split("@").str[0],
                        peak=search.schedule.str.split("@").str[1].astype(float)).set_index(["shape", "peak"]).val_acc
    chance = val[val < 0.11]
    out.update(c10_chance_top=int((chance.index.get_level_values("peak") == max(TUNED_PEAKS)).sum()),
               c10_chance_other=", ".join(f"{_SHAPES[s]} at {p:g}" for s, p in chance.index if p != max(TUNED_PEAKS)),
               c10_val_cosine_06=float(val.get(("cosine", 0.6), float("nan"))),
               c10_val_cosine_warmup_06=float(val.get(("cosine_warmup", 0.6), float("nan"))))
    for shape in ("cosine", "cosine_warmup"):  # the same shape, the same peak: two machines
        out[f"c10_same_{shape}"] = peaks[shape] == D2L_PEAKS[shape]
    best = max(RUNS, key=lambda s: out[f"c10_final_{s}"])
    out.update(c10_best_shape=best, c10_best_shape_label=best.replace("_", " "),
               c10_tuned_higher=sum(out.get(f"c10_tuned_{s}_verdict") == "higher" for s in RUNS[1:]),
               c10_tuned_lower=sum(out.get(f"c10_tuned_{s}_verdict") == "lower" for s in RUNS[1:]))
    # the best epoch against the last one (an exercise): who profits from picking it on the test set
    gain = (d2l.groupby(["variant", "schedule", "seed"])["test_acc"].max()
            - final.set_index(["variant", "schedule", "seed"])["test_acc"]).loc["corrected"].groupby("schedule").mean()
    out.update(c10_gain_most=", ".join(gain.nlargest(2).index), c10_gain_least=", ".join(gain.nsmallest(2).index))
    return out


def exercises(where=None) -> dict:
    """'Exercises, glossary and references': the best constant rate, from the tuned study's search and finals."""
    from .studies import TUNED_PEAKS, tuned_peaks

    tuned = _table("tuned", where)
    search = _results.final_epoch(_results.select(tuned, variant="search"))
    constant = {p: float(search[search.schedule == f"constant@{p:g}"].val_acc.mean()) for p in TUNED_PEAKS}
    best = tuned_peaks(_folder(where))["constant"]
    finals = _results.final_epoch(_results.select(tuned, variant="final", schedule=f"constant@{best:g}"))
    out = {f"c12_val_{str(p).replace('.', '')}": v for p, v in constant.items()}
    out.update(c12_best=best, c12_best_val=constant[best], c12_best_test=float(finals.test_acc.mean()),
               c12_best_test_sd=float(finals.test_acc.std()), c12_n=len(finals),
               c12_vs_d2l=says("tuned_vs_d2l_constant", where))
    return out
