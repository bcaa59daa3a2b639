"""The records an engine returns: one `RunResult` per run, with per-epoch rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from bench.specs import RunSpec

Status = Literal["ok", "failed", "diverged", "unsupported"]


@dataclass(frozen=True)
class EpochRow:
    """One training epoch: its mean training loss (scaled units), wall time, and any evaluation."""

    epoch: int  # 1-based
    loss: float
    seconds: float
    test_rmse: float | None = None
    test_mae: float | None = None
    train_rmse: float | None = None


@dataclass(frozen=True)
class Metrics:
    """Accuracy in the series' original units."""

    train_rmse: float
    test_rmse: float
    test_mae: float
    persistence_rmse: float

    @property
    def skill(self) -> float:
        return 1.0 - self.test_rmse / self.persistence_rmse if self.persistence_rmse > 0 else float("nan")


@dataclass(frozen=True)
class Throughput:
    """Training speed from per-epoch wall times (timers around training only)."""

    samples_per_sec: float
    steps_per_sec: float
    compile_seconds: float
    train_seconds: float
    predict_samples_per_sec: float | None
    peak_rss_mb: float

    @classmethod
    def from_epoch_times(
        cls, seconds: list[float], samples_per_epoch: int, steps_per_epoch: int, predict_samples_per_sec: float | None, peak_rss_mb: float
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
    status: Status
    error: str | None = None
    metrics: Metrics | None = None
    throughput: Throughput | None = None
    epochs: tuple[EpochRow, ...] = ()
    n_train_windows: int | None = None
    n_dropped: int | None = None
    epochs_to_target: int | None = None
    seconds_to_target: float | None = None
    diverged_epoch: int | None = None
    notes: str = ""  # e.g. adjustments the engine made (use_cudnn=False on torch)
    started_at: str = ""
    finished_at: str = ""
    concurrency: int = 1
    trained_together: int = 1  # repeats trained as one vmapped program; their epoch times are shared
    environment: dict[str, str] = field(default_factory=dict)
