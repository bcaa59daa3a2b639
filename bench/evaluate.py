"""Accuracy in original units from a batch-1 walk-forward over train then test windows."""

from __future__ import annotations

import numpy as np

from bench.results import Metrics
from bench.windows import Prepared, Windows


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def persistence_rmse(prep: Prepared, targets: np.ndarray) -> float:
    """RMSE of the naive forecast y[t] = y[t-1] on the given target indices."""
    return rmse(prep.y[targets], prep.y[targets - 1])


def walk_metrics(prep: Prepared, windows: Windows, z_pred: np.ndarray) -> Metrics:
    """Metrics for predictions (scaled units) on every walk window: train, then validation, then test."""
    pred = prep.to_original(np.ravel(z_pred), windows.walk_t)
    truth = prep.y[windows.walk_t]
    k, v = windows.n_train_points, windows.n_train_points + windows.n_val_points
    return Metrics(
        train_rmse=rmse(pred[:k], truth[:k]),
        test_rmse=rmse(pred[v:], truth[v:]),
        test_mae=float(np.mean(np.abs(pred[v:] - truth[v:]))),
        persistence_rmse=persistence_rmse(prep, windows.test_t),
        val_rmse=rmse(pred[k:v], truth[k:v]) if v > k else None,
        val_mae=float(np.mean(np.abs(pred[k:v] - truth[k:v]))) if v > k else None,
        test_out_of_range=out_of_range(prep.y[: prep.n_train], prep.y[windows.test_t]),
    )


def out_of_range(train: np.ndarray, test: np.ndarray) -> float:
    """Share of `test` values outside the range of `train` (a trend carries the test part beyond what the
    model was trained on)."""
    train, test = np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if not len(test) or not len(train):
        return float("nan")
    lo, hi = np.nanmin(train), np.nanmax(train)
    return float(np.mean((test < lo) | (test > hi)))
