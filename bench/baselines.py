"""Simple forecasts every run is scored against, on the same test targets and leads as the model.

A user would try these before an LSTM, so the report measures the model against the best of them, not
only against persistence:

- `persistence`: every lead repeats the last value the window saw, y[t-1];
- `mean`: the mean of the part the model is fitted on (the training part without validation);
- `seasonal`: the value one season earlier, y[t + j - s ceil((j + 1) / s)] for lead j, where the season s is
  the scenario's `season` or one found in the fitted part (`find_season`); none without a season;
- `linear`: a linear autoregression on the same window, least squares on the look_back inputs (every
  feature, scaled as the model sees them) plus an intercept, one fit per lead, on the training windows.

Each is an entry of `BASELINES`: adding one is a function and its entry; a run records each one's test
RMSE in the column the entry names (`bench.results.Metrics`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.windows import Prepared, Windows

#: A season is found when the autocorrelation of the fitted part's changes peaks at its lag above this ...
SEASON_ACF = 0.3
#: ... and the fitted part holds at least this many seasons.
SEASON_CYCLES = 3


@dataclass(frozen=True)
class Baseline:
    """A simple forecast: its name, how the report names it, the runs column of its test RMSE, and the
    forecast of the test targets' leads in original units ((n, horizon); None where it does not apply)."""

    name: str
    label: str
    column: str
    forecast: Callable[[Prepared, Windows, int | None], np.ndarray | None]


def _targets(windows: Windows) -> np.ndarray:
    """Target index of every test lead: (n, horizon)."""
    return windows.test_t[:, None] + np.arange(windows.horizon)[None, :]


def persistence(prep: Prepared, windows: Windows, season: int | None = None) -> np.ndarray:
    return np.repeat(prep.y[windows.test_t - 1][:, None], windows.horizon, axis=1)


def training_mean(prep: Prepared, windows: Windows, season: int | None = None) -> np.ndarray:
    return np.full(_targets(windows).shape, float(np.nanmean(prep.y[: prep.n_fit])))


def seasonal_naive(prep: Prepared, windows: Windows, season: int | None = None) -> np.ndarray | None:
    if not season:
        return None
    lead = np.arange(windows.horizon)
    back = season * np.ceil((lead + 1) / season).astype(int)  # seasons back to a value the window has seen
    index = _targets(windows) - back[None, :]
    if index.min() < 0:
        return None
    return prep.y[index]


def linear_autoregression(prep: Prepared, windows: Windows, season: int | None = None) -> np.ndarray:
    def design(t: np.ndarray) -> np.ndarray:
        x = windows.gather(t).reshape(len(t), -1).astype(np.float64)
        return np.hstack([x, np.ones((len(t), 1))])

    train = np.sort(windows.train_t)
    x, y = design(train), windows.labels(train).astype(np.float64)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    coef, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
    z_pred = design(windows.test_t) @ coef
    return prep.to_original(z_pred, windows.test_t)


BASELINES: tuple[Baseline, ...] = (
    Baseline("persistence", "persistence", "persistence_rmse", persistence),
    Baseline("mean", "training mean", "mean_rmse", training_mean),
    Baseline("seasonal", "seasonal naive", "seasonal_rmse", seasonal_naive),
    Baseline("linear", "linear autoregression", "linear_rmse", linear_autoregression),
)


def find_season(y: np.ndarray, max_lag: int = 400) -> int | None:
    """The season of a series: the lag from 2 up at which the autocorrelation of its changes is highest, when
    that is above `SEASON_ACF`, a local peak, and the series holds `SEASON_CYCLES` of it; else None."""
    d = np.diff(np.asarray(y, dtype=np.float64))
    d = d[np.isfinite(d)] - np.nanmean(d)
    top = min(max_lag, len(d) // SEASON_CYCLES)
    if top < 3 or not np.any(d):
        return None
    denom = float(d @ d)
    acf = np.array([float(d[:-k] @ d[k:]) / denom for k in range(1, top + 1)])
    lag = int(np.argmax(acf[1:]) + 2)
    peak = acf[lag - 1] >= acf[lag - 2] and (lag == top or acf[lag - 1] >= acf[lag])
    return lag if acf[lag - 1] > SEASON_ACF and peak else None


def baseline_rmses(prep: Prepared, windows: Windows, season: int | None) -> dict[str, float | None]:
    """Each baseline's test RMSE over every lead, by its runs column (None where it does not apply), and the
    season the seasonal one used."""
    from bench.evaluate import rmse, truth  # evaluate reads the baselines: imported here, not at the top

    s = season if season is not None else find_season(prep.y[: prep.n_fit])
    true = truth(prep, windows.test_t, windows.horizon)
    out: dict[str, float | None] = {}
    for b in BASELINES:
        pred = b.forecast(prep, windows, s)
        out[b.column] = None if pred is None else rmse(pred, true)
    return {**out, "baseline_season": s}
