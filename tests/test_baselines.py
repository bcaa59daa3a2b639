"""The simple baselines on series where each one's answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from bench.baselines import BASELINES, baseline_rmses, find_season
from bench.datasets import DatasetSpec, load_series
from bench.windows import make_windows, prepare


def rmses(y: np.ndarray, season: int | None = None, look_back: int = 3, horizon: int = 1, **kw):
    prep = prepare(y, 0.3, kw.get("difference", False), "standard")
    return baseline_rmses(prep, make_windows(prep, look_back, 1, True, "streams", horizon=horizon), season)


def best(found: dict) -> str:
    scored = {b.name: found[b.column] for b in BASELINES if found[b.column] is not None}
    return min(scored, key=scored.get)


def test_a_constant_plus_noise_is_best_forecast_by_the_training_mean() -> None:
    """The mean is the best forecast of white noise; a regression on 24 lags fits some of the noise."""
    found = rmses(5.0 + np.random.default_rng(0).normal(0, 1, 400), look_back=24)
    assert best(found) == "mean" and found["mean_rmse"] == pytest.approx(1.0, abs=0.15)
    assert found["persistence_rmse"] > 1.2  # the difference of two draws: sqrt(2) in expectation


def test_the_mean_is_of_the_part_the_model_is_fitted_on_not_of_validation_or_test() -> None:
    y = np.concatenate([np.zeros(50), np.ones(20), np.full(30, 5.0)])  # fitted part, validation, test
    prep = prepare(y, 0.3, False, "none", validation_fraction=20 / 70)
    assert prep.n_fit == 50
    found = baseline_rmses(prep, make_windows(prep, 2, 1, True, "streams"), None)
    assert found["mean_rmse"] == pytest.approx(5.0)
    assert found["seasonal_rmse"] is None and found["baseline_season"] is None  # white noise has no season


def test_a_pure_seasonal_series_is_forecast_exactly_by_the_seasonal_naive_at_every_lead() -> None:
    t = np.arange(240)
    y = 10 + np.sin(2 * np.pi * t / 12) + 0.5 * np.cos(2 * np.pi * t / 4)
    found = rmses(y, horizon=3)
    assert found["baseline_season"] == 12  # found in the training part
    assert found["seasonal_rmse"] == pytest.approx(0.0, abs=1e-9) and best(found) == "seasonal"
    assert rmses(y, season=6)["seasonal_rmse"] > 0.5  # a season given is the season used


def test_an_ar1_process_is_best_forecast_by_the_linear_autoregression() -> None:
    phi, n = 0.6, 2000
    e = np.random.default_rng(2).normal(0, 1, n)
    y = np.zeros(n)
    for i in range(1, n):
        y[i] = phi * y[i - 1] + e[i]
    found = rmses(y)
    assert best(found) == "linear"
    assert found["linear_rmse"] == pytest.approx(1.0, abs=0.08)  # the innovation's standard deviation
    assert found["mean_rmse"] == pytest.approx(1 / np.sqrt(1 - phi**2), abs=0.15)  # the process's deviation


def test_the_linear_baseline_forecasts_a_differenced_ramp_exactly_and_airline_has_a_season_of_12() -> None:
    found = rmses(np.arange(300, dtype=float) * 2.0 + 7, difference=True, horizon=2)
    assert found["linear_rmse"] == pytest.approx(0.0, abs=1e-6)
    airline = load_series(DatasetSpec("airline")).values
    assert find_season(airline[:96]) == 12
