"""The learning-rate x batch-size report: rate chosen on validation only, steps to target, the S(B) fit and
the critical batch size, on synthetic sweeps with known numbers (report_fixtures.tuning_results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report import load_results, write_report
from bench.report.load import prepare_runs
from bench.report.figures import lr_batch_heatmap, steps_to_target, tuned_rmse_by_batch_size
from bench.report.tuning import (
    NO_VALIDATION,
    compare_estimates,
    critical_batch_size,
    excess_critical_batch_size,
    fit_scaling,
    select_rates,
    target_choices,
    tuning_facets,
)
from bench.store import Store

from report_fixtures import (
    B_CRIT,
    S_MIN,
    TEST_BEST_RATE,
    TUNING_BATCH_SIZES,
    VAL_BEST_RATE,
    save,
    tuning_results,
    tuning_steps_to_target,
)

TUNING_STEMS = ("tuned_rmse_by_batch_size", "lr_batch_heatmap", "noise_scale")
STEPS_STEMS = ("steps_to_target", "time_to_target")


#: The analysis' table functions `test_every_table_of_a_tuned_report_is_computed_once` counts.
COUNTED = ("select_rates", "rate_scores", "target_scores", "target_choices", "critical_table", "accuracy_table",
           "speed_table", "problem_table", "answer")  # fmt: skip
CALLS: dict[str, int] = {}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(results folder, index.html) of the tuning sweep: validation split, target, steps, noise scale. Two
    rates (the validation's best and the test set's best) keep the per-rate panels of the other figures few.
    Writing the report counts the calls of the analysis' table functions into CALLS."""
    from bench.report import analysis

    folder = save(tmp_path_factory.mktemp("tuned") / "results", tuning_results(rates=(VAL_BEST_RATE, TEST_BEST_RATE)))
    with pytest.MonkeyPatch.context() as patch:
        for name in COUNTED:
            original = getattr(analysis, name)

            def counted(*args, _name=name, _original=original, **kwargs):  # noqa: ANN002, ANN003, ANN202
                CALLS[_name] = CALLS.get(_name, 0) + 1
                return _original(*args, **kwargs)

            patch.setattr(analysis, name, counted)
        return folder, write_report([folder], folder / "report").index


def _annotations(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_rate_chosen_on_validation_not_test(tuned: tuple[Path, Path]) -> None:
    folder, index = tuned
    results = load_results(folder)
    assert results.facets == ("base_learning_rate",)  # the old figures: one panel per rate
    assert tuning_facets(results.facets) == ()  # the tuning figures: the rate is an axis
    ok = results.ok
    # the fixture is built so that the test set would pick another rate at every batch size
    on_test = ok.groupby(["batch_size", "base_learning_rate"])["test_rmse"].median().groupby("batch_size").idxmin()
    assert {rate for _, rate in on_test} == {TEST_BEST_RATE}

    chosen = select_rates(results.runs, results.facets).set_index("batch_size")
    assert chosen.index.tolist() == list(TUNING_BATCH_SIZES)
    assert (chosen["base_learning_rate"] == VAL_BEST_RATE).all()
    assert (chosen["trials_tried"] == 2).all()

    csv = pd.read_csv(index.parent / "tuned.csv").set_index("batch_size")
    assert (csv["base_learning_rate"] == VAL_BEST_RATE).all() and (csv["learning_rate"] == VAL_BEST_RATE).all()
    at_rate = ok[ok["base_learning_rate"] == VAL_BEST_RATE].groupby("batch_size")["test_rmse"]
    np.testing.assert_allclose(csv["test_rmse_mean"], at_rate.mean().loc[csv.index])
    np.testing.assert_array_equal(csv["n"], at_rate.size().loc[csv.index])
    assert (csv["test_rmse_ci_low"] <= csv["test_rmse_mean"]).all()
    assert (csv["test_rmse_mean"] <= csv["test_rmse_ci_high"]).all()

    labels = _annotations(tuned_rmse_by_batch_size(results))
    assert labels == [f"lr {VAL_BEST_RATE:g}"] * len(TUNING_BATCH_SIZES)


def test_no_validation_split_says_why(tmp_path: Path) -> None:
    runs = tuning_results(
        batch_sizes=(1, 4, 16), rates=(0.01, 0.1), repeats=2, validation=False, noise=False, target=False
    )
    folder = save(tmp_path / "noval", runs)
    index = write_report([folder], tmp_path / "report").index
    summary = (index.parent / "summary.md").read_text()
    assert f"**Missing:** No figure 'tuned_rmse_by_batch_size': {NO_VALIDATION}." in summary
    assert "would make the reported test RMSE optimistic" in summary
    assert not (index.parent / "tuned.csv").exists() and not (index.parent / "tuned_rmse_by_batch_size.png").exists()
    assert "Tuned on validation" not in summary
    results = load_results(folder)
    assert select_rates(results.runs, results.facets).empty
    # the heatmap falls back to the test set and says so; nothing is outlined as chosen
    fig = lr_batch_heatmap(results)
    assert "TEST" in fig.get_suptitle() and "no rate is chosen" in fig.get_suptitle()
    assert not [p for ax in fig.axes for p in ax.patches]


@pytest.mark.parametrize(("s_min", "b_crit"), [(1000.0, 16.0), (250.0, 300.0)])
def test_fit_recovers_s_min_and_b_crit(s_min: float, b_crit: float) -> None:
    sizes = 2.0 ** np.arange(0, 11)
    exact = s_min * (1.0 + b_crit / sizes)
    assert fit_scaling(sizes, exact) == pytest.approx((s_min, b_crit), rel=1e-4)

    rng = np.random.default_rng(7)
    batch = np.repeat(sizes, 8)
    steps = s_min * (1.0 + b_crit / batch) * np.exp(rng.normal(0.0, 0.15, len(batch)))
    steps[rng.random(len(batch)) < 0.05] = np.nan  # a few runs never reached the target
    fit = critical_batch_size(batch, steps)
    assert fit is not None and fit.batch_sizes == tuple(int(s) for s in sizes)
    assert fit.s_min == pytest.approx(s_min, rel=0.15)
    assert fit.b_crit == pytest.approx(b_crit, rel=0.15)
    assert fit.ci_low < b_crit < fit.ci_high
    assert fit.ci_low < fit.b_crit < fit.ci_high
    assert critical_batch_size(batch, steps) == fit  # a fixed seed: the same CI every time
    assert fit.note == ""


def test_fit_says_when_it_cannot_tell() -> None:
    sizes = np.array([1.0, 4.0, 16.0, 64.0])
    flat = critical_batch_size(np.repeat(sizes, 3), np.full(12, 500.0))
    assert flat is not None and "steps do not fall with batch size" in flat.note
    perfect = critical_batch_size(np.repeat(sizes, 3), np.repeat(6400.0 / sizes, 3))
    assert perfect is not None and "in proportion to batch size throughout" in perfect.note
    # a batch size whose median run missed the target drops out; two left are too few to fit
    steps = np.array([100.0, 110, 120, 50, 55, 60, np.nan, np.nan, 30, np.nan, np.nan, np.nan])
    assert critical_batch_size(np.repeat(sizes, 3), steps) is None


def test_the_20_percent_excess_critical_batch_size_on_a_known_curve() -> None:
    """S(B) = 100 (1 + 8 / B): from batch 1, perfect scaling is 900 / B, so the excess S(B) B / 900 - 1 is 11%
    at batch 2 and 33% at 4; it crosses 20% between them (at 2.8 on the curve; 2.68 interpolated in log B)."""
    sizes = np.array([1.0, 2, 4, 8, 16])
    steps = np.repeat(100 * (1 + 8 / sizes), 3)
    value, note = excess_critical_batch_size(np.repeat(sizes, 3), steps)
    assert value == pytest.approx(2 ** (1 + np.log(1.2 / (10 / 9)) / np.log(1.2)), rel=1e-9) and note == ""
    assert 2 < value < 4
    perfect, note = excess_critical_batch_size(np.repeat(sizes, 3), np.repeat(1600 / sizes, 3))
    assert perfect == 16 and note.startswith("at least 16")
    # a batch size whose median run missed the target is past the critical one
    missed = np.where(np.repeat(sizes, 3) == 4, np.nan, np.repeat(1600 / sizes, 3))
    assert excess_critical_batch_size(np.repeat(sizes, 3), missed)[0] == pytest.approx(2.0)
    assert np.isnan(excess_critical_batch_size(np.array([4.0]), np.array([10.0]))[0])


def test_steps_to_target_takes_the_rate_with_fewest_median_steps(tuned: tuple[Path, Path]) -> None:
    folder, index = tuned
    results = load_results(folder)
    choices = target_choices(results.runs, results.facets, "steps_to_target").set_index("batch_size")
    # batch 64 at rate 0.1 reaches the target in 50 steps in half its runs but never in the others: its
    # median run misses the target, so 0.01 is the fastest rate there
    expected = {1: 0.1, 4: 0.1, 16: 0.1, 64: 0.01}
    assert choices["base_learning_rate"].to_dict() == expected
    for bs, rate in expected.items():
        runs = [tuning_steps_to_target(bs, rate, rep) for rep in range(4)]
        if (bs, rate) == (1, 0.1):
            runs.append(None)  # the diverged run: an attempt that never reached the target
        assert choices.loc[bs, "median"] == pytest.approx(np.median([np.inf if s is None else s for s in runs]))
    assert choices.loc[1, "n"] == 5  # the diverged run counts as an attempt that missed
    table = pd.read_csv(index.parent / "tuned_to_target.csv").set_index("batch_size")
    assert table["steps_base_learning_rate"].to_dict() == expected
    # time favours large batches here and picks its own rate per batch size
    assert table["seconds_median"].idxmin() == 64
    labels = _annotations(steps_to_target(results))
    assert labels == [f"lr {expected[bs]:g}" for bs in TUNING_BATCH_SIZES]

    critical = pd.read_csv(index.parent / "critical_batch_size.csv").iloc[0]
    assert critical["b_crit"] == pytest.approx(B_CRIT, rel=0.1)
    assert critical["s_min"] == pytest.approx(S_MIN, rel=0.1)
    assert critical["b_crit_ci_low"] <= B_CRIT * 1.02 and critical["b_crit_ci_high"] >= B_CRIT
    assert 4 < critical["b_crit_20"] < 16  # S(B) = S_MIN (1 + 16 / B) crosses 20% over perfect scaling at 4.4
    # B_simple is read where each run met the target: the 2 of 32 ok runs that never did have none
    assert critical["b_simple_median"] == pytest.approx(15.5) and critical["b_simple_n"] == 30
    assert not critical["disagree"]


def test_findings_name_tuned_batch_size_and_critical_batch_size(tuned: tuple[Path, Path]) -> None:
    _, index = tuned
    summary = (index.parent / "summary.md").read_text()
    findings = summary.split("## Findings")[1].split("## Figures")[0]
    assert "the most accurate batch size at its own learning rate is 4 (base rate 0.01" in findings
    assert "It beats every other batch size significantly (Mann-Whitney, p 0.029)" in findings
    assert "Fewest steps to reach test_rmse <= 45: batch size 64" in findings
    assert "Least time to reach test_rmse <= 45: batch size 64" in findings
    assert "Critical batch size from steps to target: B_crit 16" in findings
    assert "95% bootstrap CI" in findings
    assert "From the gradient noise scale: B_simple 15.5" in findings
    assert "estimates of the critical batch size agree" in findings
    assert "the test set is never used to choose" in summary.split("## Method")[1]  # the tuning protocol
    # a tuned sweep's answer before its per-rate detail
    assert summary.index("## Tuned per batch size") < summary.index("## Figures per configuration")


def test_estimates_disagree() -> None:
    assert compare_estimates(16.0, (14.0, 18.0), 15.0, (12.0, 17.0)) == (False, "they agree within 1.1x")
    disagree, why = compare_estimates(16.0, (14.0, 18.0), 50.0, (40.0, 60.0))
    assert disagree and "3.1x" in why
    disagree, why = compare_estimates(16.0, (15.0, 17.0), 20.0, (19.0, 21.0))
    assert disagree and "intervals do not overlap" in why
    assert compare_estimates(16.0, (15.6, 16.5), 15.5, (15.0, 16.0))[0] is False  # 3% apart, overlapping


def test_tuning_figures_written_as_png_and_svg(tuned: tuple[Path, Path]) -> None:
    _, index = tuned
    for stem in (*TUNING_STEMS, *STEPS_STEMS):
        for ext in ("png", "svg"):
            f = index.parent / f"{stem}.{ext}"
            assert f.is_file() and f.stat().st_size > 5_000, f
    summary = (index.parent / "summary.md").read_text()
    assert "**Missing:**" not in summary
    for stem in (*TUNING_STEMS, *STEPS_STEMS):
        assert f"]({stem}.png)" in summary
    assert "## Tuned per batch size" in summary and "## Critical batch size" in summary


def test_a_sweep_that_tunes_nothing_reports_as_before(target_report: tuple[Path, Path]) -> None:
    _, index = target_report
    summary = (index.parent / "summary.md").read_text()
    for name in ("tuned", "tuned_to_target", "critical_batch_size"):
        assert not (index.parent / f"{name}.csv").exists()
    for stem in (*TUNING_STEMS, *STEPS_STEMS):
        assert not (index.parent / f"{stem}.png").exists() and f"'{stem}'" not in summary
    assert "Learning rate tuned" not in summary and "Critical batch size" not in summary


def test_panels_leave_out_the_rate_and_old_rows_fall_back_to_the_effective_rate(tuned: tuple[Path, Path]) -> None:
    folder, _ = tuned
    with Store.open(folder, create=False) as store:
        cpu = store.runs()
    # a second device where the validation set prefers the largest rate; rows without a base rate (older
    # than the column) are tuned on their effective learning rate
    gpu = cpu.assign(device="gpu", run_id=cpu["run_id"] + "-gpu")
    gpu["val_rmse"] = np.where(gpu["learning_rate"] == TEST_BEST_RATE, 1.0, gpu["val_rmse"])
    runs, facets = prepare_runs(pd.concat([cpu, gpu], ignore_index=True).assign(base_learning_rate=np.nan))
    assert facets == ("device",) and tuning_facets(facets) == ("device",)
    chosen = select_rates(runs, facets)
    assert set(chosen["tuning_panel"]) == {"device=cpu", "device=gpu"}
    by_device = chosen.groupby("device")["base_learning_rate"].unique()
    assert list(by_device["cpu"]) == [VAL_BEST_RATE] and list(by_device["gpu"]) == [TEST_BEST_RATE]


def test_the_noise_scale_is_read_where_each_run_met_the_target() -> None:
    import pandas as pd

    from bench.report.tuning import noise_scale_at_target

    runs = pd.DataFrame({"run_id": ["a", "b"], "epochs_to_target": [2, None], "grad_noise_scale": [-30.0, -31.0]})
    epochs = pd.DataFrame(
        {"run_id": ["a", "a", "a", "b"], "epoch": [1, 2, 3, 1], "grad_noise_scale": [5.0, 7.0, -30.0, 4.0]}
    )
    at = noise_scale_at_target(runs, epochs)
    assert at.loc[0, "grad_noise_scale"] == 7.0 and pd.isna(at.loc[1, "grad_noise_scale"])


def test_a_tuned_report_fits_the_optimal_rate_against_batch_size(tuned: tuple[Path, Path]) -> None:
    _, index = tuned
    table = pd.read_csv(index.parent / "optimal_rate.csv")
    assert set(table["best"]) <= {"constant", "linear", "sqrt", "surge"} and table["best"].notna().all()
    assert (index.parent / "optimal_rate.png").stat().st_size > 0
    assert "Optimal learning rate against batch size" in index.read_text()


def test_best_of_k_is_the_minimum_of_k_trials_drawn_without_replacement() -> None:
    from bench.report.budget import best_of_k, budget_table

    scores = np.array([5.0, 1.0, 3.0, 4.0])
    best = best_of_k(scores, resamples=2000)
    assert (best[-1] == 1.0).all()  # all four trials: always the best one
    assert best[0].mean() == pytest.approx(scores.mean(), rel=0.05)  # one trial: a random one
    # two of four: the best (1.0) is among them with probability 1/2, else the best of the other three
    p_best = (best[1] == 1.0).mean()
    assert p_best == pytest.approx(0.5, abs=0.04)
    assert (np.diff(best, axis=0) <= 0).all()  # more trials never do worse
    frame = pd.DataFrame({"tuning_panel": "", "mode": "stateless", "batch_size": 4, "median": scores})
    table = budget_table(frame, ["tuning_panel", "mode", "batch_size"])
    assert table["k"].tolist() == [1, 2, 3, 4] and table["best_median"].iloc[-1] == 1.0


def test_a_tuned_report_shows_the_tuning_budget(tuned: tuple[Path, Path]) -> None:
    _, index = tuned
    table = pd.read_csv(index.parent / "tuning_budget.csv")
    for _, g in table.groupby(["mode", "batch_size"]):
        assert g["k"].tolist() == list(range(1, g["trials"].iloc[0] + 1))
        assert (np.diff(g["best_median"]) <= 1e-12).all()
    assert (index.parent / "tuning_budget.png").stat().st_size > 0


def test_every_table_of_a_tuned_report_is_computed_once(tuned: tuple[Path, Path]) -> None:
    """The analysis is one source: the page, its figures, CSVs and answer read each table, none computes it again."""
    # target scores and choices: once on steps, once on seconds
    assert CALLS == {
        "select_rates": 1, "rate_scores": 1, "target_scores": 2, "target_choices": 2, "critical_table": 1,
        "accuracy_table": 1, "speed_table": 1, "problem_table": 1, "answer": 1,
    }  # fmt: skip
