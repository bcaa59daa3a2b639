"""The engine-independent part of a run: epoch timing, divergence, evaluation and time-to-target.

An engine trains; `EpochLoop` is told when each epoch begins and ends (and where it pauses to
evaluate) and decides whether to go on. Timers cover training only: evaluation happens while the
epoch's clock is stopped, and throughput comes from steady-state rounds, never a compiling call.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np

from bench.environment import peak_rss_mb
from bench.baselines import baseline_rmses
from bench.evaluate import walk_metrics
from bench.results import (
    MAX_CALIBRATION_SECONDS,
    MIN_ROUNDS,
    MIN_TIMED_SECONDS,
    EpochRow,
    Metrics,
    RunResult,
    Throughput,
    compile_estimate,
)
from bench.runspec import RunSpec
from bench.windows import Prepared, Windows
from bench.vocabulary import DIVERGED, FLAGGED, OK


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


TimeRound = Callable[[], float]


def calibration_rounds(steady: list[float], time_round: TimeRound | None) -> list[float]:
    """Extra timed rounds (seconds each) so a run's throughput rests on at least MIN_ROUNDS rounds and
    MIN_TIMED_SECONDS, as pytest-benchmark calibrates; at most MAX_CALIBRATION_SECONDS are spent.
    `time_round` trains one whole epoch of the already-compiled program on a throwaway copy of the
    state and returns its seconds; None: the engine cannot, and the rounds are what training gave."""
    extra: list[float] = []
    if time_round is None:
        return extra
    spent = 0.0
    while len(steady) + len(extra) < MIN_ROUNDS or sum(steady) + sum(extra) < MIN_TIMED_SECONDS:
        if spent >= MAX_CALIBRATION_SECONDS:
            break
        seconds = time_round()
        extra.append(seconds)
        spent += seconds
    return extra


@dataclass
class EpochLoop:
    """Book-keeping for one run's epochs. `predict_walk` returns scaled predictions for `windows.walk_t`.

    With a step budget and `eval_every`, evaluation happens every `eval_every` optimizer steps, inside
    an epoch too: the engine asks `eval_points` where to stop an epoch and calls `mid_epoch` there.
    """

    spec: RunSpec
    prep: Prepared
    windows: Windows
    predict_walk: Callable[[], np.ndarray]
    rows: list[EpochRow] = field(default_factory=list)
    diverged_epoch: int | None = None
    epochs_to_target: int | None = None
    steps_to_target: int | None = None
    _target_trained: float = 0.0  # training seconds into epochs_to_target when the target was met
    target_best: float | None = None
    steps: int = 0
    _t0: float = 0.0
    _trained: float = 0.0  # training seconds of this epoch before the last mid-epoch evaluation
    _last_eval: Metrics | None = None
    _last_eval_step: int | None = None
    _epoch_resolution: bool = False  # the engine skipped evaluation points inside an epoch

    @property
    def budget(self) -> Budget:
        return Budget.of(self.spec, self.windows)

    @property
    def resolution(self) -> int | None:
        """Optimizer steps between evaluations: steps to target are known to this many steps."""
        every = self.spec.eval_every
        if every <= 0:
            return None
        if self.spec.steps is None:
            return every * self.budget.steps_per_epoch
        return max(every, self.budget.steps_per_epoch) if self._epoch_resolution else every

    def eval_points(self, epoch: int) -> list[int]:
        """Steps into 1-based `epoch` (exclusive of its end) after which to evaluate: with a step budget,
        where the run's step count reaches a multiple of `eval_every`."""
        every = self.spec.eval_every
        if self.spec.steps is None or every <= 0:
            return []
        before = (epoch - 1) * self.budget.steps_per_epoch
        n = self.budget.steps_in(epoch)
        return [k for k in range(1, n) if (before + k) % every == 0]

    def begin_epoch(self) -> None:
        self._trained = 0.0
        self._t0 = time.perf_counter()

    def _seconds(self, seconds: float | None) -> float:
        return time.perf_counter() - self._t0 if seconds is None else seconds

    def mid_epoch(self, step_in_epoch: int, seconds: float | None = None) -> None:
        """Evaluate `step_in_epoch` steps into the current epoch (the engine has synchronised); the
        evaluation is left out of the epoch's training time. `seconds` overrides the clock for the
        training since the epoch began or the last call (runs trained together share one wall time)."""
        self._trained += self._seconds(seconds)
        step = self.steps + step_in_epoch
        self._record(self.evaluate(), step, len(self.rows) + 1, self._trained)
        self._t0 = time.perf_counter()

    def _record(self, m: Metrics, step: int, epoch: int, trained_in_epoch: float) -> None:
        self._last_eval, self._last_eval_step = m, step
        if not self.spec.target_metric:
            return
        value = getattr(m, self.spec.target_metric)
        if value is not None and math.isfinite(value):
            self.target_best = value if self.target_best is None else min(self.target_best, value)
        if self.epochs_to_target is None and value is not None and value <= self.spec.target_value:
            self.epochs_to_target, self.steps_to_target = epoch, step
            self._target_trained = trained_in_epoch

    def end_epoch(self, loss: float, seconds: float | None = None, noise_scale: float | None = None) -> bool:
        """Record the epoch that just finished (the engine must have synchronised); True means stop.

        `seconds` overrides the clock for the training since the epoch began or the last mid-epoch
        evaluation. Evaluation runs every `eval_every` epochs, or every `eval_every` steps with a step
        budget (at the epoch's end when that is where a multiple falls), and after the budget's last epoch.
        """
        seconds = self._trained + self._seconds(seconds)
        self._trained = 0.0
        epoch = len(self.rows) + 1
        budget = self.budget
        self.steps += budget.steps_in(epoch)
        noise = float(noise_scale) if noise_scale is not None and math.isfinite(noise_scale) else None
        if not math.isfinite(loss):
            self.rows.append(EpochRow(epoch, float(loss), seconds, step=self.steps, grad_noise_scale=noise))
            self.diverged_epoch = epoch
            return True
        every = self.spec.eval_every
        if every <= 0:
            evaluate = False
        elif self.spec.steps is None:
            evaluate = epoch % every == 0 or epoch == budget.epochs
        else:
            # an engine that does not stop inside epochs (`mid_epoch`) is evaluated at the end of the epoch
            # that reached a multiple, and its steps to target are then known to an epoch
            points = self.eval_points(epoch)
            skipped = bool(points) and (self._last_eval_step or 0) < (epoch - 1) * budget.steps_per_epoch + points[-1]
            self._epoch_resolution = self._epoch_resolution or skipped
            evaluate = self.steps % every == 0 or epoch == budget.epochs or skipped
        if evaluate:
            # the epoch's clock has stopped: sum(previous rows) + this epoch's training
            self._record(self.evaluate(), self.steps, epoch, seconds)
        elif self._last_eval_step is not None and self._last_eval_step <= (epoch - 1) * budget.steps_per_epoch:
            self._last_eval = None  # no evaluation in this epoch
        m = self._last_eval
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
                eval_step=self._last_eval_step if m else None,
            )
        )
        self._last_eval = None
        return False

    def seconds_to_target(self) -> float | None:
        """Training seconds up to the evaluation that met the target, evaluation and compilation left out:
        the first epoch counts as long as the median later epoch, so a run whose program another run
        compiled (the stateless runs of a batch size on `scan`) is not faster to the target for that reason."""
        if self.epochs_to_target is None:
            return None
        times = [r.seconds for r in self.rows]
        cap = float(np.median(times[1:])) if len(times) > 1 else float("inf")
        before = times[: self.epochs_to_target - 1]
        if before:
            return float(min(before[0], cap) + sum(before[1:]) + self._target_trained)
        return float(min(self._target_trained, cap))

    @functools.cached_property
    def baselines(self) -> dict[str, float | None]:
        """The simple baselines' test RMSEs (`bench.baselines`): they depend on the data, not on training, so
        once per run, not at every evaluation."""
        return baseline_rmses(self.prep, self.windows, self.spec.season)

    def evaluate(self) -> Metrics:
        return walk_metrics(self.prep, self.windows, self.predict_walk(), self.baselines)

    def steady_rounds(self) -> list[float]:
        """Seconds of the whole epochs after the first: the steady-state timed rounds training gave."""
        full = self.budget.steps_per_epoch
        return [r.seconds for r in self.rows[1:] if self.budget.steps_in(r.epoch) == full]

    def result(
        self,
        notes: str = "",
        trained_together: int = 1,
        extra_rounds: list[float] | None = None,
        compiled_here: bool | None = None,
    ) -> RunResult:
        """The run's result after training stopped: final metrics (timed prediction) and throughput.

        Throughput comes from steady-state rounds only: whole epochs after the first plus `extra_rounds`
        (`calibration_rounds`). `compiled_here` False says the first epoch reused a compiled program,
        so compile_seconds is 0."""
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
            target_resolution=self.resolution,
            target_best=self.target_best,
            steps_run=self.steps,
            grad_noise_scale=self.rows[-1].grad_noise_scale if self.rows else None,
        )
        if self.diverged_epoch is not None:
            return RunResult(
                status=DIVERGED,
                error=f"non-finite training loss at epoch {self.diverged_epoch}",
                diverged_epoch=self.diverged_epoch,
                **common,
            )
        self.predict_walk()  # untimed: the first call may compile, and the rate is meant without it
        t0 = time.perf_counter()
        z_pred = self.predict_walk()
        predict_seconds = time.perf_counter() - t0
        metrics = walk_metrics(self.prep, w, z_pred, self.baselines)
        if not math.isfinite(metrics.test_rmse):
            return RunResult(status=DIVERGED, error="non-finite predictions after training", metrics=None, **common)
        budget = self.budget
        steady, extra = self.steady_rounds(), list(extra_rounds or [])
        rounds = steady + extra
        first_whole = bool(self.rows) and budget.steps_in(1) == budget.steps_per_epoch
        if compiled_here is False:
            compile_s: float | None = 0.0
        else:
            compile_s = compile_estimate(self.rows[0].seconds, rounds) if first_whole else None
        throughput = Throughput.from_rounds(
            rounds,
            samples_per_round=w.n_train_windows,
            steps_per_round=budget.steps_per_epoch,
            compile_seconds=compile_s,
            train_seconds=float(sum(r.seconds for r in self.rows)),
            predict_samples_per_sec=len(w.walk_t) / predict_seconds if predict_seconds > 0 else None,
            peak_rss_mb=peak_rss_mb(),
            calibration_rounds=len(extra),
            trained_together=trained_together,
        )
        common["notes"] = "; ".join(n for n in (notes, *run_flags(self.rows, z_pred, w.test_start)) if n)
        return RunResult(status=OK, metrics=metrics, throughput=throughput, **common)


def run_flags(rows: list[EpochRow], z_pred: np.ndarray, test_start: int) -> list[str]:
    """What went wrong in a run that stayed finite, each a note starting FLAGGED: a training loss that ended
    above where it started, and test predictions that do not vary (the model learned a constant)."""
    flags = []
    losses = [r.loss for r in rows if math.isfinite(r.loss)]
    if len(losses) >= 2 and losses[-1] > losses[0]:
        flags.append(f"{FLAGGED} the training loss ended above where it started ({losses[0]:.4g} to {losses[-1]:.4g})")
    test = np.asarray(z_pred, dtype=np.float64)[test_start:]
    if len(test) >= 2 and float(np.ptp(test)) <= 1e-6 * max(1.0, float(np.abs(test).max())):
        flags.append(f"{FLAGGED} the test predictions are constant ({float(test.flat[0]):.4g} in scaled units)")
    return flags
