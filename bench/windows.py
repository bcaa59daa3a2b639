"""Series -> split, difference, scale -> sliding windows -> batch layout.

Index convention: `t` indexes the original series `y`. The model sees `z`, the transformed
series (differenced and/or scaled), where `z[t]` stands for `y[t]`. A window for target `t`
is `z[t-look_back:t]` and its label the next `horizon` values, `z[t:t+horizon]`; every test point
`t >= n_train` starts a target, whatever `look_back`, so input windows may reach back into the
training part. With a validation part, the last `n_val` points of the training part are held out:
the model trains on targets before `n_fit`, and the walk-forward goes over training, validation and
test targets in that order.

With `horizon` H > 1 a target counts for a part (training, validation, test) only when all H of its
values lie in that part: the last H - 1 targets of each part are left out (training has H - 1 fewer
windows, and so do validation and test). The walk-forward still steps one point at a time over every
target from the first to the last complete one, so a stateful model's state is carried as in training;
the targets that straddle two parts are predicted but scored in neither.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from bench.errors import UserError

if TYPE_CHECKING:
    from bench.datasets import Series

ScaleKind = Literal["minmax", "minmax_sym", "standard", "none"]
LayoutKind = Literal["streams", "sequential", "none"]


@dataclass(frozen=True)
class Scaler:
    """An affine map z = (x - shift) / factor, fitted on the training part only."""

    shift: float
    factor: float

    @classmethod
    def fit(cls, kind: ScaleKind, train: np.ndarray) -> Scaler:
        if kind == "none":
            return cls(0.0, 1.0)
        if kind == "standard":
            std = float(np.std(train))
            return cls(float(np.mean(train)), std if std > 0 else 1.0)
        lo, hi = float(np.min(train)), float(np.max(train))
        span = hi - lo if hi > lo else 1.0
        if kind == "minmax":
            return cls(lo, span)
        return cls((lo + hi) / 2, span / 2)  # minmax_sym: [-1, 1]

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.shift) / self.factor

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.factor + self.shift


@dataclass(frozen=True)
class Prepared:
    """A split, transformed series and how to map predictions back to original units."""

    y: np.ndarray = field(repr=False)  # original series (the target)
    z: np.ndarray = field(repr=False)  # transformed target; NaN where undefined (z[0] when differenced)
    n_train: int
    difference: bool
    scaler: Scaler  # the target's
    n_val: int = 0  # the last points of the training part, held out as validation
    x: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]  # transformed inputs (n, features)

    def __post_init__(self) -> None:
        if self.x is None:  # univariate: the target's own past is the input
            object.__setattr__(self, "x", self.z[:, None])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_fit(self) -> int:
        """Targets before this index train the model."""
        return self.n_train - self.n_val

    def to_original(self, z_pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Predictions in original units for target indices `targets` (undo scaling, then differencing).

        `z_pred` is (n,) or (n, horizon); differenced forecasts of several steps add up from the last
        value the window saw, y[t-1]."""
        x = self.scaler.inverse(np.asarray(z_pred, dtype=np.float64))
        if self.difference:
            last = self.y[targets - 1]
            x = x + last if x.ndim == 1 else np.cumsum(x, axis=1) + last[:, None]
        return x


class SplitOptions(Protocol):
    """How a series is split, differenced and scaled: a scenario's keys, or a run spec's fields."""

    test_fraction: float
    difference: bool
    scale: ScaleKind
    validation_fraction: float


def prepare_series(series: Series, options: SplitOptions) -> Prepared:
    """The data runs train and are scored on: `series` (its target and inputs) split, differenced and scaled
    as `options` say. The one path from a loaded series to prepared data, for planning (its checks) and for
    the worker; a series with non-finite values is refused (`UserError`)."""
    if not (np.all(np.isfinite(series.values)) and np.all(np.isfinite(series.inputs))):
        raise UserError(
            f"dataset '{series.spec.label}' has non-finite values (an unstable AR process?); change its parameters"
        )
    return prepare(
        series.values,
        options.test_fraction,
        options.difference,
        options.scale,
        options.validation_fraction,
        series.inputs,
    )


def prepare(
    y: np.ndarray,
    test_fraction: float,
    difference: bool,
    scale: ScaleKind,
    validation_fraction: float = 0.0,
    inputs: np.ndarray | None = None,
) -> Prepared:
    """Split `y` (last `test_fraction` is test, the last `validation_fraction` of the rest validation),
    optionally difference at lag 1, and scale on the part the model trains on. `inputs` (n, features),
    when the model sees more than the target's own past, get the same treatment column by column."""
    y = np.asarray(y, dtype=np.float64)
    n_train = int(len(y) * (1 - test_fraction))
    if n_train < 2 or n_train >= len(y):
        raise UserError(
            f"dataset: {len(y)} points with test_fraction {test_fraction} leaves {n_train} training and "
            f"{len(y) - n_train} test points; use a longer series or another test_fraction"
        )
    n_val = int(n_train * validation_fraction)
    if validation_fraction > 0 and (n_val < 1 or n_train - n_val < 2):
        raise UserError(
            f"dataset: validation_fraction {validation_fraction} of {n_train} training points leaves {n_val} "
            f"validation and {n_train - n_val} training points; use another validation_fraction or a longer series"
        )
    n_fit = n_train - n_val
    z, scaler = _transform(y, n_fit, difference, scale)
    x = None if inputs is None else np.column_stack([_transform(c, n_fit, difference, scale)[0] for c in inputs.T])
    return Prepared(
        y=y,
        z=z,
        n_train=n_train,
        difference=difference,
        scaler=scaler,
        n_val=n_val,
        x=x,  # type: ignore[arg-type]
    )


def _transform(v: np.ndarray, n_fit: int, difference: bool, scale: ScaleKind) -> tuple[np.ndarray, Scaler]:
    """One column differenced (NaN first) and scaled with a scaler fitted on its first `n_fit` points."""
    v = np.asarray(v, dtype=np.float64)
    x = np.full_like(v, np.nan)
    if difference:
        x[1:] = np.diff(v)
        scaler = Scaler.fit(scale, x[1:n_fit])
    else:
        x[:] = v
        scaler = Scaler.fit(scale, x[:n_fit])
    return scaler.transform(x), scaler


@dataclass(frozen=True)
class Windows:
    """The windows of one run as indices into the series, training rows in the batch layout's order.

    Target `t`'s window is `series[t - look_back : t]` (every feature) and its label `targets[t]`.
    `train_t` lists the training targets (for stateful runs consecutive chunks of `batch_size` are
    the batches); `walk_t` every target (train, validation, test) in time order for the batch-1
    walk-forward. Nothing is materialised: memory is O(series x features), not O(windows x
    look_back x features). An engine gathers windows as it needs them (`gather`; the `scan` engine
    inside its compiled loop); `train_x`, `train_y` and `walk_x` materialise them for engines that
    want arrays (`fit`).
    """

    look_back: int
    batch_size: int
    layout: LayoutKind
    series: np.ndarray = field(repr=False)  # (N, features) float32, the transformed inputs
    targets: np.ndarray = field(repr=False)  # (N,) float32, the transformed target
    train_t: np.ndarray = field(repr=False)  # (n,) target index into the series
    n_dropped: int
    walk_t: np.ndarray = field(repr=False)
    n_train_points: int  # how many leading walk rows are training targets
    n_val_points: int = 0  # how many walk rows are validation targets (they start at `val_start`)
    horizon: int = 1  # values forecast from each window

    def gather(self, t: np.ndarray) -> np.ndarray:
        """The windows for targets `t`: (len(t), look_back, features) float32."""
        return self.series[np.asarray(t)[:, None] + np.arange(-self.look_back, 0)[None, :]]

    def labels(self, t: np.ndarray) -> np.ndarray:
        """The labels of targets `t`: (len(t), horizon) float32, the next `horizon` transformed values."""
        return self.targets[np.asarray(t)[:, None] + np.arange(self.horizon)[None, :]]

    @functools.cached_property
    def train_x(self) -> np.ndarray:
        return self.gather(self.train_t)

    @functools.cached_property
    def train_y(self) -> np.ndarray:
        return self.labels(self.train_t)

    @functools.cached_property
    def walk_x(self) -> np.ndarray:
        return self.gather(self.walk_t)

    @property
    def n_features(self) -> int:
        return int(self.series.shape[1])

    @property
    def n_train_windows(self) -> int:
        return len(self.train_t)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.train_t) // self.batch_size)

    @property
    def val_start(self) -> int:
        """The walk row of the first validation target (the H - 1 before it straddle training and validation)."""
        return self.n_train_points + self.horizon - 1

    @property
    def test_start(self) -> int:
        """The walk row of the first test target."""
        return self.val_start + (self.n_val_points + self.horizon - 1 if self.n_val_points else 0)

    @property
    def test_t(self) -> np.ndarray:
        return self.walk_t[self.test_start :]


def check_windows(prep: Prepared, look_back: int, batch_size: int, stateful: bool, horizon: int = 1) -> int:
    """The number of training windows for this look_back; raises UserError when a run cannot be built."""
    n = prep.n_fit - look_back - (1 if prep.difference else 0) - (horizon - 1)
    ahead = f" and horizon {horizon}" if horizon > 1 else ""
    if n < 1:
        raise UserError(
            f"look_back {look_back}{ahead} {'leave' if ahead else 'leaves'} no training windows in {prep.n_fit} "
            "training points"
            f"{' after differencing' if prep.difference else ''}; use a smaller look_back"
            f"{' or horizon' if horizon > 1 else ''}, or a longer series"
        )
    n_test = len(prep.y) - prep.n_train
    for part, points in (("validation", prep.n_val), ("test", n_test)):
        if horizon > 1 and 0 < points < horizon:
            raise UserError(
                f"horizon {horizon} is longer than the {points} {part} points, so no {part} target has all its "
                f"values; use a smaller horizon or a larger {part}_fraction"
            )
    if stateful and n < batch_size:
        raise UserError(
            f"batch_size {batch_size} is larger than the {n} training windows (look_back {look_back}); "
            "use a smaller batch_size or a longer series"
        )
    return n


def target_indices(prep: Prepared, look_back: int, horizon: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target indices of training, validation and test windows (each with all `horizon` values in its part)."""
    first = look_back + (1 if prep.difference else 0)
    tail = horizon - 1
    return (
        np.arange(first, prep.n_fit - tail),
        np.arange(prep.n_fit, max(prep.n_fit, prep.n_train - tail)),
        np.arange(prep.n_train, len(prep.y) - tail),
    )


def layout_order(n: int, batch_size: int, layout: LayoutKind) -> tuple[np.ndarray, int]:
    """Row order of `n` time-ordered windows for a stateful batch layout, and how many were dropped.

    The oldest windows are dropped so the count is a multiple of `batch_size`. In `streams`
    layout the kept windows are cut into `batch_size` contiguous segments, and batch k holds
    step k of every segment, so row i of batch k+1 continues row i of batch k. In `sequential`
    layout the windows stay in time order (the seed tutorial's layout).
    """
    if layout == "none":
        return np.arange(n), 0
    kept = (n // batch_size) * batch_size
    dropped = n - kept
    idx = np.arange(dropped, n)
    if layout == "sequential":
        return idx, dropped
    steps = kept // batch_size
    order = (np.arange(batch_size)[None, :] * steps + np.arange(steps)[:, None]).ravel()
    return idx[order], dropped


def make_windows(
    prep: Prepared, look_back: int, batch_size: int, stateful: bool, layout: LayoutKind, horizon: int = 1
) -> Windows:
    """Build the windows for one run; stateful runs get the batch layout, stateless runs time order."""
    check_windows(prep, look_back, batch_size, stateful, horizon)
    all_train_t, val_t, test_t = target_indices(prep, look_back, horizon)
    effective = layout if stateful else "none"
    order, dropped = layout_order(len(all_train_t), batch_size, effective)
    train_t = all_train_t[order]
    walk_t = np.arange(all_train_t[0], test_t[-1] + 1)  # every target in turn, straddling ones included
    return Windows(
        look_back=look_back,
        batch_size=batch_size,
        layout=effective,
        series=np.asarray(prep.x, dtype=np.float32),
        targets=np.asarray(prep.z, dtype=np.float32),
        train_t=train_t,
        n_dropped=dropped,
        walk_t=walk_t,
        n_train_points=len(all_train_t),
        n_val_points=len(val_t),
        horizon=horizon,
    )
