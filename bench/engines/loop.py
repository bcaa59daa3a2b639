"""The engine-independent part of a run: epoch timing, divergence, evaluation and time-to-target.

An engine trains; `EpochLoop` is told when each epoch begins and ends and decides whether to go
on. Timers cover training only: evaluation happens after an epoch's clock has stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np

from bench.environment import peak_rss_mb
from bench.evaluate import walk_metrics
from bench.results import EpochRow, Metrics, RunResult, Throughput
from bench.runspec import RunSpec
from bench.windows import Prepared, Windows


@dataclass
class EpochLoop:
    """Book-keeping for one run's epochs. `predict_walk` returns scaled predictions for `windows.walk_x`."""

    spec: RunSpec
    prep: Prepared
    windows: Windows
    predict_walk: Callable[[], np.ndarray]
    rows: list[EpochRow] = field(default_factory=list)
    diverged_epoch: int | None = None
    epochs_to_target: int | None = None
    seconds_to_target: float | None = None
    _t0: float = 0.0

    def begin_epoch(self) -> None:
        self._t0 = time.perf_counter()

    def end_epoch(self, loss: float, seconds: float | None = None) -> bool:
        """Record the epoch that just finished (the engine must have synchronised); True means stop.

        `seconds` overrides the clock, for repeats trained together that share one wall time.
        """
        seconds = time.perf_counter() - self._t0 if seconds is None else seconds
        epoch = len(self.rows) + 1
        if not math.isfinite(loss):
            self.rows.append(EpochRow(epoch, float(loss), seconds))
            self.diverged_epoch = epoch
            return True
        evaluate = self.spec.eval_every > 0 and (epoch % self.spec.eval_every == 0 or epoch == self.spec.epochs)
        m = self.evaluate() if evaluate else None
        self.rows.append(
            EpochRow(
                epoch,
                float(loss),
                seconds,
                m.test_rmse if m else None,
                m.test_mae if m else None,
                m.train_rmse if m else None,
            )
        )
        if m is not None and self.spec.target_metric and self.epochs_to_target is None:
            if getattr(m, self.spec.target_metric) <= self.spec.target_value:
                self.epochs_to_target = epoch
                self.seconds_to_target = float(sum(r.seconds for r in self.rows))
        return False

    def evaluate(self) -> Metrics:
        return walk_metrics(self.prep, self.windows, self.predict_walk())

    def result(self, notes: str = "", trained_together: int = 1) -> RunResult:
        """The run's result after training stopped: final metrics (timed prediction) and throughput."""
        w = self.windows
        common = dict(
            spec=self.spec,
            epochs=tuple(self.rows),
            n_train_windows=w.n_train_windows,
            n_dropped=w.n_dropped,
            notes=notes,
            trained_together=trained_together,
            epochs_to_target=self.epochs_to_target,
            seconds_to_target=self.seconds_to_target,
        )
        if self.diverged_epoch is not None:
            return RunResult(
                status="diverged",
                error=f"non-finite training loss at epoch {self.diverged_epoch}",
                diverged_epoch=self.diverged_epoch,
                **common,
            )
        self.predict_walk()  # untimed: the first call may compile, and the rate is meant without it
        t0 = time.perf_counter()
        z_pred = self.predict_walk()
        predict_seconds = time.perf_counter() - t0
        metrics = walk_metrics(self.prep, w, z_pred)
        if not math.isfinite(metrics.test_rmse):
            return RunResult(status="diverged", error="non-finite predictions after training", metrics=None, **common)
        throughput = Throughput.from_epoch_times(
            [r.seconds for r in self.rows],
            samples_per_epoch=w.n_train_windows,
            steps_per_epoch=w.steps_per_epoch,
            predict_samples_per_sec=len(w.walk_x) / predict_seconds if predict_seconds > 0 else None,
            peak_rss_mb=peak_rss_mb(),
        )
        return RunResult(status="ok", metrics=metrics, throughput=throughput, **common)
