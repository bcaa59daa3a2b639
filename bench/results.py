"""The records an engine returns: one `RunResult` per run, with per-epoch rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from bench.environment import env_id
from bench.runspec import RunSpec
from bench.schema import Column, column, columns, flatten

Status = Literal["ok", "failed", "diverged", "unsupported"]


@dataclass(frozen=True)
class EpochRow:
    """One training epoch: its mean training loss (scaled units), wall time, and any evaluation."""

    epoch: int = field(metadata=column("outcome", int))  # 1-based
    loss: float = field(metadata=column("outcome", float))
    seconds: float = field(metadata=column("outcome", float))
    test_rmse: float | None = field(default=None, metadata=column("outcome", float))
    test_mae: float | None = field(default=None, metadata=column("outcome", float))
    train_rmse: float | None = field(default=None, metadata=column("outcome", float))
    val_rmse: float | None = field(default=None, metadata=column("outcome", float, added=3))
    step: int | None = field(default=None, metadata=column("outcome", int, added=3))  # optimizer updates so far
    grad_noise_scale: float | None = field(default=None, metadata=column("outcome", float, added=3))


@dataclass(frozen=True)
class Metrics:
    """Accuracy in the series' original units."""

    train_rmse: float = field(metadata=column("outcome", float))
    test_rmse: float = field(metadata=column("outcome", float))
    test_mae: float = field(metadata=column("outcome", float))
    persistence_rmse: float = field(metadata=column("outcome", float))
    # 1 - test_rmse / persistence_rmse: above 0 is better than predicting the last value
    skill: float = field(init=False, metadata=column("outcome", float))
    # on the validation part (None without one)
    val_rmse: float | None = field(default=None, metadata=column("outcome", float, added=3))
    val_mae: float | None = field(default=None, metadata=column("outcome", float, added=3))

    def __post_init__(self) -> None:
        skill = 1.0 - self.test_rmse / self.persistence_rmse if self.persistence_rmse > 0 else float("nan")
        object.__setattr__(self, "skill", skill)


@dataclass(frozen=True)
class Throughput:
    """Training speed from per-epoch wall times (timers around training only)."""

    samples_per_sec: float = field(metadata=column("outcome", float))
    steps_per_sec: float = field(metadata=column("outcome", float))
    compile_seconds: float = field(metadata=column("outcome", float))
    train_seconds: float = field(metadata=column("outcome", float))
    predict_samples_per_sec: float | None = field(metadata=column("outcome", float))
    peak_rss_mb: float = field(metadata=column("outcome", float))

    @classmethod
    def from_epoch_times(
        cls,
        seconds: list[float],
        samples_per_epoch: int,
        steps_per_epoch: int,
        predict_samples_per_sec: float | None,
        peak_rss_mb: float,
    ) -> Throughput:
        """Rates over the epochs after the first (the first pays for tracing and compilation)."""
        t = np.asarray(seconds, dtype=np.float64)
        steady = t[1:] if len(t) > 1 else t
        total = float(steady.sum())
        compile_s = float(t[0] - np.median(t[1:])) if len(t) > 1 else float("nan")
        return cls(
            samples_per_sec=samples_per_epoch * len(steady) / total if total > 0 else float("nan"),
            steps_per_sec=steps_per_epoch * len(steady) / total if total > 0 else float("nan"),
            compile_seconds=compile_s,
            train_seconds=float(t.sum()),
            predict_samples_per_sec=predict_samples_per_sec,
            peak_rss_mb=peak_rss_mb,
        )


@dataclass(frozen=True)
class RunResult:
    """What one run produced. `status` says whether the metrics can be trusted."""

    spec: RunSpec
    status: Status = field(metadata=column("outcome", str))
    error: str | None = field(default=None, metadata=column("outcome", str))
    metrics: Metrics | None = field(default=None, metadata=flatten())
    throughput: Throughput | None = field(default=None, metadata=flatten())
    n_train_windows: int | None = field(default=None, metadata=column("outcome", int))
    n_dropped: int | None = field(default=None, metadata=column("outcome", int))
    epochs_to_target: int | None = field(default=None, metadata=column("outcome", int))
    seconds_to_target: float | None = field(default=None, metadata=column("outcome", float))
    diverged_epoch: int | None = field(default=None, metadata=column("outcome", int))
    steps_run: int | None = field(default=None, metadata=column("outcome", int, added=3))
    steps_to_target: int | None = field(default=None, metadata=column("outcome", int, added=3))
    # McCandlish et al.'s B_simple at the end of training (`noise_scale: true`)
    grad_noise_scale: float | None = field(default=None, metadata=column("outcome", float, added=3))
    # the LSTM kernel that ran (`bench.kernels`): cudnn, generic, or cudnn+generic
    kernel: str | None = field(default=None, metadata=column("outcome", str, added=4))
    epochs: tuple[EpochRow, ...] = field(default=(), metadata=columns(Column("epochs_run", "outcome", int, get=len)))
    # adjustments the engine made (use_cudnn=False on torch)
    notes: str = field(default="", metadata=column("outcome", str))
    concurrency: int = field(default=1, metadata=column("outcome", int))
    # repeats trained as one vmapped program share their epoch times, so speeds compare only within a value
    trained_together: int = field(default=1, metadata=column("outcome", int, facet=True))
    started_at: str = field(default="", metadata=column("outcome", str))
    finished_at: str = field(default="", metadata=column("outcome", str))
    environment: dict[str, str] = field(
        default_factory=dict,
        metadata=columns(
            Column("env_id", "outcome", str, get=lambda env: env_id(env) if env else None),
            *(
                Column(k, "outcome", str, get=lambda env, k=k: env.get(k))
                for k in ("hostname", "backend_version", "gpus")
            ),
        ),
    )
