"""The engine-independent part of a run: epoch timing, divergence, evaluation and time-to-target.

An engine trains; `EpochLoop` is told when each epoch begins and ends and decides whether to go
on. Timers cover training only: evaluation happens after an epoch's clock has stopped.
"""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class Budget:
    """How long a run trains: whole epochs, or `steps` optimizer updates (the last epoch then partial)."""

    epochs: int  # epochs begun, the last one possibly partial
    steps_per_epoch: int
    total_steps: int

    @classmethod
    def of(cls, spec: RunSpec, windows: Windows) -> Budget:
        per_epoch = windows.steps_per_epoch
        if spec.steps is None:
            return cls(int(spec.epochs or 0), per_epoch, int(spec.epochs or 0) * per_epoch)
        return cls(-(-spec.steps // per_epoch), per_epoch, spec.steps)

    def steps_in(self, epoch: int) -> int:
        """Optimizer updates in 1-based `epoch`."""
        return min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch)


@dataclass
class EpochLoop:
    """Book-keeping for one run's epochs. `predict_walk` returns scaled predictions for `windows.walk_t`."""

    spec: RunSpec
    prep: Prepared
    windows: Windows
    predict_walk: Callable[[], np.ndarray]
    rows: list[EpochRow] = field(default_factory=list)
    diverged_epoch: int | None = None
    epochs_to_target: int | None = None
    steps_to_target: int | None = None
    steps: int = 0
    _t0: float = 0.0

    @property
    def budget(self) -> Budget:
        return Budget.of(self.spec, self.windows)

    def begin_epoch(self) -> None:
        self._t0 = time.perf_counter()

    def end_epoch(self, loss: float, seconds: float | None = None, noise_scale: float | None = None) -> bool:
        """Record the epoch that just finished (the engine must have synchronised); True means stop.

        `seconds` overrides the clock, for repeats trained together that share one wall time.
        Evaluation runs every `eval_every` epochs, or steps when the budget is in steps (at the end of
        the epoch that reaches a multiple), and always after the last epoch of the budget.
        """
        seconds = time.perf_counter() - self._t0 if seconds is None else seconds
        epoch = len(self.rows) + 1
        budget = self.budget
        before, self.steps = self.steps, self.steps + budget.steps_in(epoch)
        noise = float(noise_scale) if noise_scale is not None and math.isfinite(noise_scale) else None
        if not math.isfinite(loss):
            self.rows.append(EpochRow(epoch, float(loss), seconds, step=self.steps, grad_noise_scale=noise))
            self.diverged_epoch = epoch
            return True
        every = self.spec.eval_every
        # eval_every counts the budget's unit: epochs, or steps (then at the end of the epoch that reaches a multiple)
        if every <= 0:
            evaluate = False
        elif self.spec.steps is None:
            evaluate = epoch % every == 0 or epoch == budget.epochs
        else:
            evaluate = self.steps // every > before // every or epoch == budget.epochs
        m = self.evaluate() if evaluate else None
        self.rows.append(
            EpochRow(
                epoch,
                float(loss),
                seconds,
                m.test_rmse if m else None,
                m.test_mae if m else None,
                m.train_rmse if m else None,
                m.val_rmse if m else None,
                step=self.steps,
                grad_noise_scale=noise,
            )
        )
        if m is not None and self.spec.target_metric and self.epochs_to_target is None:
            if getattr(m, self.spec.target_metric) <= self.spec.target_value:
                self.epochs_to_target = epoch
                self.steps_to_target = self.steps
        return False

    def seconds_to_target(self) -> float | None:
        """Training seconds up to the epoch that met the target, compilation left out: the first epoch
        counts as long as the median later epoch, so a run whose program another run compiled (the
        stateless runs of a batch size on `scan`) is not faster to the target for that reason."""
        if self.epochs_to_target is None:
            return None
        times = [r.seconds for r in self.rows]
        first = min(times[0], float(np.median(times[1:]))) if len(times) > 1 else times[0]
        return float(first + sum(times[1 : self.epochs_to_target]))

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
            seconds_to_target=self.seconds_to_target(),
            steps_to_target=self.steps_to_target,
            steps_run=self.steps,
            grad_noise_scale=self.rows[-1].grad_noise_scale if self.rows else None,
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
        # a partial last epoch would skew the per-epoch rates: whole epochs count, or the one partial epoch
        budget = self.budget
        whole = [r.seconds for r in self.rows if budget.steps_in(r.epoch) == budget.steps_per_epoch]
        steps = budget.steps_per_epoch if whole else budget.total_steps
        throughput = Throughput.from_epoch_times(
            whole or [r.seconds for r in self.rows],
            samples_per_epoch=w.n_train_windows if whole else min(steps * w.batch_size, w.n_train_windows),
            steps_per_epoch=steps,
            predict_samples_per_sec=len(w.walk_t) / predict_seconds if predict_seconds > 0 else None,
            peak_rss_mb=peak_rss_mb(),
        )
        throughput = dataclasses.replace(throughput, train_seconds=float(sum(r.seconds for r in self.rows)))
        return RunResult(status="ok", metrics=metrics, throughput=throughput, **common)
