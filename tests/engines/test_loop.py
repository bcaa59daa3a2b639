"""EpochLoop and Throughput: the bookkeeping every engine shares, checked with a fake engine."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from bench.engines import loop as loop_module
from bench.engines.loop import EpochLoop
from bench.results import Throughput, compile_estimate
from bench.scenario import parse_scenario_text
from bench.specs import expand
from bench.datasets import load_series
from bench.windows import make_windows, prepare


def test_rates_come_from_the_timed_rounds_with_their_distribution():
    t = Throughput.from_rounds(
        [1.0, 2.0, 1.0, 0.5],
        samples_per_round=100,
        steps_per_round=10,
        compile_seconds=4.0,
        train_seconds=9.0,
        predict_samples_per_sec=None,
        peak_rss_mb=1.0,
        trained_together=3,
    )
    # the run's throughput is its median round (one statistic everywhere), not the rate over all rounds (400 / 4.5)
    assert t.samples_per_sec == pytest.approx(100) == t.sps_median
    assert t.steps_per_sec == pytest.approx(10)
    assert t.timed_rounds == 4 and t.sps_min == pytest.approx(50) and t.sps_max == pytest.approx(200)
    assert t.sps_q1 == pytest.approx(87.5) and t.sps_q3 == pytest.approx(125)
    assert t.machine_samples_per_sec == pytest.approx(3 * 100)


def test_compile_time_is_the_first_epoch_beyond_a_steady_one_or_unknown():
    assert compile_estimate(5.0, [1.0, 2.0, 1.0]) == pytest.approx(4.0)
    # a first epoch no slower than the rest (an already compiled program, or noise): unknown, never negative
    assert compile_estimate(0.9, [1.0, 2.0, 1.0]) is None
    assert compile_estimate(5.0, []) is None


def test_calibration_adds_rounds_until_the_minimum_rounds_and_time():
    timed = []

    def time_round() -> float:
        timed.append(0.01)
        return 0.01

    extra = loop_module.calibration_rounds([0.01, 0.01], time_round)
    # five rounds are not yet 0.1 s: rounds continue until both minimums are met
    assert len(extra) == len(timed) == 8 and sum(extra) + 0.02 >= loop_module.MIN_TIMED_SECONDS
    assert loop_module.calibration_rounds([0.1] * 5, time_round) == []
    assert loop_module.calibration_rounds([], None) == []


def test_calibration_stops_at_its_time_cap():
    extra = loop_module.calibration_rounds([], lambda: 0.6)
    assert extra == [0.6, 0.6]  # the cap (1 s) is checked before each round


def make_loop(extra: str, predictions):
    """An EpochLoop on airline whose 'model' predicts `predictions()` (scaled units) for the walk."""
    (spec,) = expand(
        parse_scenario_text(
            "name: l\ndataset: airline\nlook_back: 3\n" + ("" if "steps:" in extra else "epochs: 6\n") + extra,
            Path("s.yaml"),
        )
    )
    prep = prepare(load_series(spec.dataset).values, spec.test_fraction, spec.difference, spec.scale)
    w = make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout)
    return EpochLoop(spec, prep, w, predictions), prep, w


def drive(loop: EpochLoop, losses: list[float], seconds: list[float]) -> None:
    for loss, s in zip(losses, seconds, strict=True):
        loop.begin_epoch()
        if loop.end_epoch(loss, seconds=s):
            break


def test_target_reached_at_a_later_epoch_counts_the_training_seconds_up_to_it_without_compiling():
    quality = itertools.chain([0.5, 0.3], itertools.repeat(0.0))  # an error shrinking epoch by epoch

    def predictions():
        q = next(quality)
        return loop.prep.z[loop.windows.walk_t] + q

    loop, prep, w = make_loop("target: {metric: test_rmse, value: 1.0}\n", predictions)
    drive(loop, [0.1] * 6, [3.0, 1.0, 1.5, 1.0, 1.0, 1.0])
    result = loop.result()
    assert result.status == "ok"
    # the first epoch (3 s: compiling) counts as the median later epoch (1 s)
    assert result.epochs_to_target == 3 and result.seconds_to_target == pytest.approx(3.5)
    assert [e.test_rmse is not None for e in result.epochs] == [True] * 6


def test_a_target_never_reached_stays_empty():
    loop, prep, w = make_loop("target: {metric: test_rmse, value: 0.001}\n", lambda: np.zeros((len(w.walk_t), 1)))
    drive(loop, [0.1] * 6, [1.0] * 6)
    result = loop.result()
    assert result.epochs_to_target is None and result.seconds_to_target is None


def test_divergence_after_the_target_keeps_the_time_to_target():
    loop, prep, w = make_loop("target: {metric: test_rmse, value: 1.0e+9}\n", lambda: prep.z[w.walk_t][:, None])
    drive(loop, [0.1, float("nan"), 0.1], [1.0, 1.0, 1.0])
    result = loop.result()
    assert result.status == "diverged" and result.diverged_epoch == 2 and len(result.epochs) == 2
    assert result.epochs_to_target == 1 and result.seconds_to_target == pytest.approx(1.0)


def test_final_prediction_speed_excludes_a_first_call_compile(monkeypatch):
    calls = []

    def predictions():
        calls.append(1)
        return loop.prep.z[loop.windows.walk_t][:, None]

    clock = iter(np.arange(0, 1000, 0.5))
    loop, prep, w = make_loop("", predictions)
    drive(loop, [0.1] * 6, [1.0] * 6)
    monkeypatch.setattr(loop_module.time, "perf_counter", lambda: next(clock))
    result = loop.result()
    assert len(calls) == 2  # one untimed warm-up call, then the timed one
    assert result.throughput.predict_samples_per_sec == pytest.approx(len(w.walk_t) / 0.5)
    assert result.n_train_windows == len(w.train_t) and result.n_dropped == 0


def test_a_step_budget_evaluates_every_eval_every_steps_inside_epochs():
    evaluated = []

    def predictions():
        evaluated.append(loop.steps)
        return loop.prep.z[loop.windows.walk_t][:, None]

    loop, prep, w = make_loop("steps: 200\neval_every: 30\n", predictions)
    per_epoch = w.steps_per_epoch
    assert loop.eval_points(1) == [k for k in range(30, per_epoch, 30)]
    assert loop.resolution == 30
    # the second epoch's points continue the count of steps across the epoch boundary
    assert all((per_epoch + k) % 30 == 0 for k in loop.eval_points(2))


def test_an_epochs_time_is_its_own_segments_without_the_evaluations():
    loop, prep, w = make_loop("steps: 200\neval_every: 30\n", lambda: loop.prep.z[loop.windows.walk_t][:, None])
    per_epoch = w.steps_per_epoch
    for epoch, (first, rest) in enumerate([(2.0, 0.5), (0.25, 0.5)], start=1):
        points = loop.eval_points(epoch)
        assert points, "the test needs an evaluation inside each epoch"
        loop.mid_epoch(points[0], seconds=first)
        for p in points[1:]:
            loop.mid_epoch(p, seconds=0.0)
        loop.end_epoch(0.1, seconds=rest)
    # each epoch counts its own segments: the first epoch's (compiling) segment does not leak into the second
    assert [r.seconds for r in loop.rows] == [2.5, 0.75]
    assert loop.rows[0].step == per_epoch


def test_an_engine_that_does_not_stop_inside_epochs_is_evaluated_at_their_ends():
    evaluated = []

    def predictions():
        evaluated.append(loop.steps)
        return loop.prep.z[loop.windows.walk_t][:, None]

    loop, prep, w = make_loop("steps: 200\neval_every: 30\n", predictions)
    drive(loop, [0.1] * 3, [1.0] * 3)  # no mid_epoch calls, as an engine without the hook
    per_epoch = w.steps_per_epoch
    assert evaluated == [per_epoch, 2 * per_epoch, 200] and loop.resolution == per_epoch


def test_the_baselines_are_computed_once_per_run_and_use_the_scenarios_season(monkeypatch: pytest.MonkeyPatch):
    """They depend on the data, not on training: every evaluation and the final result reuse one computation."""
    calls = []
    real = loop_module.baseline_rmses

    def counted(prep, windows, season):  # noqa: ANN001
        calls.append(season)
        return real(prep, windows, season)

    monkeypatch.setattr(loop_module, "baseline_rmses", counted)
    loop, prep, w = make_loop("eval_every: 1\nseason: 6\n", lambda: prep.z[w.walk_t])
    drive(loop, [0.1] * 6, [1.0] * 6)
    result = loop.result()
    assert len(loop.rows) == 6 and all(r.test_rmse is not None for r in loop.rows)  # six evaluations
    assert calls == [6] and result.metrics.baseline_season == 6
