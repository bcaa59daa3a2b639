"""The answer first: the recommendation rule on constructed data with a known answer, and each diagnostic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report.answer import Answer, recommend
from bench.report.diagnostics import Evidence, check, repeats_needed, repeats_that_can_reach
from bench.report.load import Results
from bench.report.stats import relative_difference, speed_interval

# batch size -> (test RMSE of 5 repeats, samples/s): 4 is 0.5% worse than 1 and 4x as fast; 16 is 10% worse
SWEEP = {
    1: ([10.0, 10.1, 9.9, 10.05, 9.95], 100.0),
    4: ([10.05, 10.1, 10.0, 10.08, 10.02], 400.0),
    16: ([10.9, 11.1, 11.0, 10.95, 11.05], 1600.0),
}


def candidates(sweep=SWEEP, persistence: float = 12.0, scope: str = "stateful/streams") -> pd.DataFrame:
    rows = []
    for b, (rmses, sps) in sweep.items():
        for i, r in enumerate(rmses):
            speed = sps * (1 + 0.01 * i)
            rows.append(
                dict(
                    scope=scope, batch_size=b, test_rmse=r, persistence_rmse=persistence, samples_per_sec=speed,
                    sps_median=speed, sps_q1=0.95 * speed, sps_q3=1.05 * speed, rate=0.01,
                )
            )  # fmt: skip
    return pd.DataFrame(rows)


def said(code: str, candidates=None, runs=None, margin: float = 0.02, critical=None) -> list:
    """What the declared diagnostic `code` says of these frames."""
    runs = pd.DataFrame() if runs is None else runs
    evidence = Evidence(
        Results(runs, pd.DataFrame(), ()), pd.DataFrame() if candidates is None else candidates, margin,
        critical=pd.DataFrame() if critical is None else critical,
    )  # fmt: skip
    return check(code)(evidence)


def test_recommends_the_fastest_batch_size_shown_to_be_within_the_margin():
    rec = recommend(candidates(), "stateful/streams", margin=0.02, tuned=True)
    assert rec.batch_size == 4 and rec.most_accurate == 1
    assert rec.option(4).within_margin and not rec.option(16).within_margin
    assert rec.speedup.value == pytest.approx(4.0, rel=0.05) and rec.speedup.low > 1.0
    assert rec.headline() == "stateful/streams: use batch size 4 at base learning rate 0.01 (chosen on validation)"
    # a wider margin admits batch size 16, which is fastest
    assert recommend(candidates(), "s", margin=0.15, tuned=True).batch_size == 16
    # a zero margin leaves only the most accurate
    assert recommend(candidates(), "s", margin=0.0, tuned=True).batch_size == 1


def test_not_significantly_worse_is_not_enough():
    # batch size 4 is no worse on average but so noisy that equivalence within 2% cannot be shown
    noisy = {1: SWEEP[1], 4: ([8.0, 12.0, 9.0, 11.0, 10.2], 400.0)}
    rec = recommend(candidates(noisy), "s", margin=0.02, tuned=False)
    assert rec.batch_size == 1 and not rec.option(4).within_margin


def test_no_recommendation_when_nothing_beats_persistence_or_there_are_no_intervals():
    none = recommend(candidates(persistence=9.5), "s", margin=0.02, tuned=False)
    assert none.batch_size is None and "persistence" in none.reason
    single = {b: (r[:1], s) for b, (r, s) in SWEEP.items()}
    lone = recommend(candidates(single), "s", margin=0.02, tuned=False)
    assert lone.batch_size is None and "repeats" in lone.reason
    one_size = recommend(candidates({1: SWEEP[1]}), "s", margin=0.02, tuned=False)
    assert one_size.batch_size is None and "only one batch size" in one_size.reason
    assert "no recommendation" in Answer(0.02, (none,)).text()


def test_relative_difference_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    a, b = 10.5 + rng.normal(0, 0.1, 30), 10.0 + rng.normal(0, 0.1, 30)
    d = relative_difference(a, b)
    assert d.low < d.value < d.high and d.value == pytest.approx(0.05, abs=0.01)
    assert d.high - d.low < 0.02  # 30 runs a side pin it down
    assert relative_difference(a[:1], b) is None


def test_speed_interval_has_a_band_for_runs_that_share_one_timing():
    # repeats trained together record the same rounds: the band comes from the rounds' spread
    shared = pd.DataFrame(
        dict(samples_per_sec=[100.0] * 3, sps_median=[100.0] * 3, sps_q1=[90.0] * 3, sps_q3=[120.0] * 3)
    )
    interval = speed_interval(shared)
    assert (interval.value, interval.low, interval.high) == (100.0, 90.0, 120.0) and interval.known
    # rows without rounds (older databases): the bootstrap over repeats
    old = speed_interval(pd.DataFrame(dict(samples_per_sec=[90.0, 100.0, 110.0, 120.0])))
    assert old.low < old.value < old.high


def test_too_few_repeats_is_said_once_with_the_repeats_that_can_reach_significance():
    three = {b: (r[:3], s) for b, (r, s) in SWEEP.items()}
    frame = pd.concat([candidates(three), candidates(three, scope="stateless")])
    found = said("too_few_repeats", frame) + said("repeats_for_power", frame)
    once = [d for d in found if d.code == "too_few_repeats"]
    assert len(once) == 1 and once[0].scope == "" and "use at least 4 repeats" in once[0].message
    assert repeats_that_can_reach() == 4  # 2 / C(8, 4) = 0.029 < 0.05; with 3: 2 / C(6, 3) = 0.1
    assert said("too_few_repeats", candidates()) == []
    power = [d for d in found if d.code == "repeats_for_power"]
    assert {d.scope for d in power} == {"stateful/streams", "stateless"}


def test_repeats_needed_grows_as_the_difference_shrinks():
    assert repeats_needed(1.0, 2.0) < repeats_needed(1.0, 1.0) < repeats_needed(1.0, 0.5)
    # the normal approximation: 2 (1.96 + 0.84)^2 / 1 x pi/3 = 16.4 -> 17 for a difference of one sd
    assert repeats_needed(1.0, 1.0) == 17
    assert repeats_needed(0.0, 1.0) is None


def test_no_skill_is_said_and_a_trend_suggests_differencing():
    frame = candidates(persistence=9.0).assign(test_out_of_range=0.6, difference=False)
    (d,) = said("no_skill", frame)
    assert d.code == "no_skill" and "difference: true" in d.message
    differenced = candidates(persistence=9.0).assign(test_out_of_range=0.6, difference=True)
    assert "difference: true" not in said("no_skill", differenced)[0].message
    assert said("no_skill", candidates()) == []


def test_a_busy_machine_is_flagged():
    runs = pd.DataFrame(dict(status="ok", other_cpu_share=[0.01, 0.02, 0.6], cpu_steal=[0.0, 0.0, 0.0]))
    (d,) = said("busy_machine", runs=runs)
    assert d.code == "busy_machine" and d.message.startswith("1 of 3 runs")
    assert said("busy_machine", runs=runs.iloc[:2]) == []


def test_a_critical_batch_size_past_the_largest_batch_size_is_a_lower_bound():
    row = dict(tuning_panel="", mode="stateless", batch_sizes="1 2 4 8", b_crit=6.0, b_crit_ci_low=3.0)
    (d,) = said("b_crit_unbounded", critical=pd.DataFrame([{**row, "b_crit_ci_high": 40.0}]))
    assert "at least 8" in d.message
    assert said("b_crit_unbounded", critical=pd.DataFrame([{**row, "b_crit_ci_high": 7.0}])) == []


def _with_steps(results, steps: dict[int, int | None], best: float = 30.0):
    """Synthetic runs whose steps to target (by batch size; None: never met) are known, evaluated every 10 steps."""
    import dataclasses

    return [
        dataclasses.replace(
            r,
            steps_to_target=steps[r.spec.batch_size],
            epochs_to_target=None if steps[r.spec.batch_size] is None else 1,
            target_resolution=10,
            target_best=best + 0.1 * r.spec.batch_size,
        )
        for r in results
        if r.status == "ok"
    ]


def test_a_target_met_at_the_first_evaluation_is_too_easy_and_fits_no_critical_batch_size(tmp_path):
    from bench.report import analyse, load_results
    from report_fixtures import save, synthetic_results

    runs = synthetic_results(batch_sizes=(1, 4, 16, 64), repeats=5, stateful=(True,), target=True)
    a = analyse(load_results(save(tmp_path / "easy", _with_steps(runs, {1: 10, 4: 10, 16: 40, 64: 30}))))
    (easy,) = [d for d in a.answer.diagnostics if d.code == "target_too_easy"]
    assert "most runs of batch size 1, 4 met test_rmse <= 45 at the first evaluation" in easy.message
    # the largest median best test RMSE over batch sizes (64: 30 + 6.4): a target every batch size still reaches
    assert "a harder target every batch size's median run still reaches: about 36.4" in easy.message
    # two batch sizes left: no S(B) fit, rather than one that passes through the first evaluations
    assert a.fits == {} and "after the first evaluation: no fit" in a.critical["note"].iloc[0]
    assert a.critical["too_easy"].iloc[0] == "1 4"


def test_a_target_never_met_is_too_hard_and_an_easier_one_is_suggested(tmp_path):
    from bench.report import analyse, load_results
    from report_fixtures import save, synthetic_results

    runs = synthetic_results(batch_sizes=(1, 4), repeats=5, stateful=(True,), target=True)
    a = analyse(load_results(save(tmp_path / "hard", _with_steps(runs, {1: None, 4: None}, best=50.0))))
    (hard,) = [d for d in a.answer.diagnostics if d.code == "target_too_hard"]
    assert "no run reached the target test_rmse <= 45" in hard.message and "about 50.4" in hard.message
    assert not [d for d in a.answer.diagnostics if d.code == "target_too_easy"]


def test_a_rate_chosen_at_the_edge_of_the_grid_names_the_rates_to_add(tmp_path):
    from bench.report import analyse, load_results
    from report_fixtures import VAL_BEST_RATE, save, tuning_results

    # the validation's best rate, 0.01, is the lowest of the two tried
    a = analyse(load_results(save(tmp_path / "edge", tuning_results(rates=(VAL_BEST_RATE, 0.1)))))
    edges = [d for d in a.answer.diagnostics if d.code == "rate_at_edge"]
    assert len(edges) == 1 and edges[0].scope == "stateful/streams"
    assert "chose the lowest rate tried (0.01): add 0.00333, 0.001" in edges[0].message
    assert "rate_at_edge" in set(a.problems["kind"])
    # the full grid has the best rate inside it: no warning
    b = analyse(load_results(save(tmp_path / "inside", tuning_results())))
    assert not [d for d in b.answer.diagnostics if d.code == "rate_at_edge"]


def test_a_simple_baseline_better_than_persistence_is_the_bar_and_is_named_first():
    """The LSTM beats persistence (12) but not the training mean (9.5): no_skill names the mean, and the
    Recommendation's accuracy line gives it as the best simple baseline."""
    frame = candidates().assign(mean_rmse=9.5, linear_rmse=11.0, seasonal_rmse=np.nan)
    (d,) = said("no_skill", frame)
    assert d.code == "no_skill"
    assert d.message.startswith("no batch size beats the best simple baseline, the training mean (RMSE 9.5;")
    assert "persistence 12" in d.message
    rec = recommend(frame, "stateful/streams", 0.02, False)
    assert rec.baseline == ("training mean", pytest.approx(9.5))
    assert "best simple baseline: training mean 9.5; persistence 12" in rec.details()[0]
    # a linear model worse than persistence is not the bar; nothing is said where the LSTM beats every one
    assert said("no_skill", candidates().assign(mean_rmse=13.0, linear_rmse=12.5)) == []
    assert recommend(candidates().assign(mean_rmse=13.0), "s", 0.02, False).baseline is None


def test_across_datasets_compares_rmse_on_one_target_and_skill_across_series():
    from bench.report.answer import across_datasets

    def frame(dataset: str, shift: float, persistence: float) -> pd.DataFrame:
        sweep = {b: ([r + shift for r in rmses], sps) for b, (rmses, sps) in SWEEP.items()}
        return candidates(sweep, persistence=persistence, scope=f"dataset={dataset}, stateless").assign(
            dataset=dataset, mode="stateless", mean_rmse=persistence * 0.9
        )

    same = pd.concat([frame("macro:unemp univariate", 0.0, 12.0), frame("macro:unemp +infl", 2.0, 12.0)])
    (sentence,) = across_datasets(same)
    assert sentence == (
        "stateless across datasets (the same target): macro:unemp univariate is the most accurate (mean test RMSE "
        "10 at batch size 1); macro:unemp +infl 20% worse (12)"
    )
    # two series: RMSEs in different units, so each is judged against its own best simple baseline
    other = pd.concat([frame("nile", 100.0, 150.0), frame("co2", 0.0, 12.0)])
    (sentence,) = across_datasets(other)
    assert sentence.startswith("stateless across datasets (different series: compared by skill")
    assert sentence.endswith("nile +0.19, co2 +0.07")  # 1 - 110/135 and 1 - 10/10.8
    assert across_datasets(frame("nile", 0.0, 12.0)) == ()


def test_diverged_and_flagged_runs_are_counted_by_setting_and_a_batch_size_that_lost_all_is_named():
    rows = [("stateless", 1, "ok", ""), ("stateless", 1, "diverged", ""), ("stateless", 16, "diverged", ""),
            ("stateless", 16, "diverged", ""), ("stateful/streams", 4, "ok", "flagged: the training loss ended "
            "above where it started (0.1 to 0.2)"), ("stateful/streams", 4, "ok", "")]  # fmt: skip
    runs = pd.DataFrame(rows, columns=["mode", "batch_size", "status", "notes"])
    (diverged,), (flagged,) = said("diverged", runs=runs), said("flagged", runs=runs)
    assert diverged.code == "diverged" and diverged.message == (
        "3 of 6 runs diverged: stateless batch 1 (1 of 2), stateless batch 16 (2 of 2); stateless batch size 16 lost "
        "every run to divergence (lower the learning rate)"
    )
    assert flagged.code == "flagged" and flagged.message == (
        "1 of 6 runs trained but are flagged: stateful/streams batch 4 (1 of 2) (the training loss ended above where "
        "it started: see each run's notes)"
    )
    clean = runs[runs["status"] == "ok"].assign(notes="")
    assert said("diverged", runs=clean) == said("flagged", runs=clean) == []


def test_a_run_whose_loss_rose_or_whose_predictions_are_constant_is_flagged():
    from bench.engines.loop import run_flags
    from bench.results import EpochRow

    falling = [EpochRow(1, 0.5, 1.0), EpochRow(2, 0.2, 1.0)]
    rising = [EpochRow(1, 0.2, 1.0), EpochRow(2, 0.5, 1.0)]
    varied = np.linspace(0, 1, 10)
    assert run_flags(falling, varied, 5) == []
    (rose,) = run_flags(rising, varied, 5)
    assert rose == "flagged: the training loss ended above where it started (0.2 to 0.5)"
    (flat,) = run_flags(falling, np.r_[varied[:5], np.full(5, 0.3)], 5)  # constant on the test part only
    assert flat == "flagged: the test predictions are constant (0.3 in scaled units)"
