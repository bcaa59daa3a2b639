"""Accuracy in original units from a batch-1 walk-forward over train then test windows."""

from __future__ import annotations

import json

import numpy as np

from bench.baselines import baseline_rmses, persistence
from bench.results import Metrics
from bench.windows import Prepared, Windows


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def truth(prep: Prepared, targets: np.ndarray, horizon: int = 1) -> np.ndarray:
    """The values forecast from the windows of `targets`: (n, horizon), in original units."""
    return prep.y[np.asarray(targets)[:, None] + np.arange(horizon)[None, :]]


def by_lead(pred: np.ndarray, true: np.ndarray) -> str:
    """RMSE per lead time (column) as a JSON list, lead 1 first."""
    return json.dumps([round(float(v), 10) for v in np.sqrt(np.mean((pred - true) ** 2, axis=0))])


def walk_metrics(
    prep: Prepared, windows: Windows, z_pred: np.ndarray, baselines: dict[str, float | None] | None = None
) -> Metrics:
    """Metrics for predictions (scaled units, (n,) or (n, horizon)) on every walk window: train, then
    validation, then test; with a horizon over every lead, and per lead (`test_rmse_by_lead`); beside them
    the simple baselines' test RMSEs (`bench.baselines.baseline_rmses`; computed here when not given, with a
    season looked for)."""
    h = windows.horizon
    pred = prep.to_original(np.reshape(z_pred, (len(windows.walk_t), h)), windows.walk_t)
    true = truth(prep, windows.walk_t, h)
    train = slice(0, windows.n_train_points)
    val = slice(windows.val_start, windows.val_start + windows.n_val_points)
    test = slice(windows.test_start, None)
    has_val = windows.n_val_points > 0
    return Metrics(
        train_rmse=rmse(pred[train], true[train]),
        test_rmse=rmse(pred[test], true[test]),
        test_mae=float(np.mean(np.abs(pred[test] - true[test]))),
        **(baselines if baselines is not None else baseline_rmses(prep, windows, None)),
        val_rmse=rmse(pred[val], true[val]) if has_val else None,
        val_mae=float(np.mean(np.abs(pred[val] - true[val]))) if has_val else None,
        test_out_of_range=out_of_range(prep.y[: prep.n_train], true[test]),
        test_rmse_by_lead=by_lead(pred[test], true[test]),
        persistence_rmse_by_lead=by_lead(persistence(prep, windows), true[test]),
    )


def out_of_range(train: np.ndarray, test: np.ndarray) -> float:
    """Share of `test` values outside the range of `train` (a trend carries the test part beyond what the
    model was trained on)."""
    train, test = np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if not test.size or not train.size:
        return float("nan")
    lo, hi = np.nanmin(train), np.nanmax(train)
    return float(np.mean((test < lo) | (test > hi)))
