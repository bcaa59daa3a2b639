"""Checks of a series against the scenario that will train on it, before anything runs.

Each finding is a `DataCheck` warning: the run goes ahead, the terminal says it once per dataset
(`validate` and `run`), and the results folder keeps it for the report's problems. What cannot be
trained on at all (no training windows, a column with no value) is a `UserError` where it is found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.datasets import Series
from bench.datasets.files import OUTLIERS
from bench.datasets.rows import find_outliers
from bench.windows import Prepared

#: Under this many points a test (or validation) RMSE says little.
MIN_POINTS = 10
#: A test part with more than this share of its values outside the training range cannot be reached by
#: a model of scaled levels.
OUTSIDE_SHARE = 0.5


@dataclass(frozen=True)
class DataCheck:
    """A warning about a dataset: `code` names the check (problems.csv's `kind`)."""

    dataset: str
    code: str
    message: str

    def line(self) -> str:
        return f"dataset '{self.dataset}': {self.message}"


def check_series(
    series: Series, prep: Prepared, look_backs: list[int], batch_sizes: list[int], difference: bool
) -> list[DataCheck]:
    """Every warning about `series` as the scenario splits it (`prep`) for these look_backs and batch sizes."""
    label = series.spec.label
    found = [
        *_constant_columns(series, prep.n_fit),
        *_outliers(series),
        *_sizes(len(series), prep, look_backs, batch_sizes),
    ]
    if not difference:
        found += _test_outside_training(series.values, prep)
    return [DataCheck(label, code, message) for code, message in found]


def _outliers(series: Series) -> list[tuple[str, str]]:
    """Values far from the rest of their column (`bench.datasets.rows.find_outliers`), unless the dataset says
    what to do with them (`outliers:`)."""
    if series.spec.params.get("outliers", OUTLIERS[0]) != "warn":
        return []
    found = find_outliers(dict(zip(series.spec.features, series.inputs.T.astype(np.float64), strict=True)))
    if not found:
        return []
    first = found[0]
    many = f"{len(found)} values far from the rest of their" if len(found) > 1 else "1 value far from the rest of its"
    return [
        (
            "outlier",
            f"{many} column, the first at point {first.row + 1} of column '{first.column}': {first.value:g} is "
            f"{first.mads:.0f} MADs from the median {first.median:g} (a unit slip or a typo?); correct it, or say "
            "what to do with outliers: drop, clip or keep (error stops)",
        )
    ]


def _constant_columns(series: Series, n_fit: int) -> list[tuple[str, str]]:
    found = []
    for name, col in zip(series.spec.features, series.inputs.T):
        if np.nanmin(col) == np.nanmax(col):
            found.append(
                ("constant_column", f"column '{name}' is constant ({col[0]:g}): it tells the model nothing; "
                 "remove it from features")
            )  # fmt: skip
        elif np.nanmin(col[:n_fit]) == np.nanmax(col[:n_fit]):
            found.append(
                ("constant_column", f"column '{name}' is constant over the {n_fit} training points: scaling fitted "
                 "there cannot place its later values; use a longer training part or remove it from features")
            )  # fmt: skip
    return found


def _sizes(n: int, prep: Prepared, look_backs: list[int], batch_sizes: list[int]) -> list[tuple[str, str]]:
    n_test = n - prep.n_train
    found = []
    if n_test < MIN_POINTS:
        found.append(
            ("short_test", f"the test part has {n_test} points (of {n}): its RMSE rests on under {MIN_POINTS}; "
             "use a longer series or a larger test_fraction")
        )  # fmt: skip
    if 0 < prep.n_val < MIN_POINTS:
        found.append(
            ("short_validation", f"the validation part has {prep.n_val} points: choices made on it rest on under "
             f"{MIN_POINTS}; use a larger validation_fraction or a longer series")
        )  # fmt: skip
    big = [b for b in batch_sizes if b > n_test]
    if big:
        found.append(
            ("few_test_points", f"the test part has {n_test} points, fewer than batch size {', '.join(map(str, big))}: "
             "a batch of the walk-forward holds more windows than the test has")
        )  # fmt: skip
    long = [lb for lb in look_backs if lb > n_test]
    if long:
        found.append(
            ("few_test_points", f"the test part has {n_test} points, fewer than look_back "
             f"{', '.join(map(str, long))}: test windows are mostly training data")
        )  # fmt: skip
    return found


def _test_outside_training(y: np.ndarray, prep: Prepared) -> list[tuple[str, str]]:
    fit, test = y[: prep.n_fit], y[prep.n_train :]
    lo, hi = float(np.min(fit)), float(np.max(fit))
    share = float(np.mean((test < lo) | (test > hi))) if len(test) else 0.0
    if share <= OUTSIDE_SHARE:
        return []
    return [
        ("test_outside_training", f"{share:.0%} of the test part lies outside the training part's range "
         f"[{lo:g}, {hi:g}] (a trend?): a model of scaled levels cannot reach it; add difference: true")
    ]  # fmt: skip
