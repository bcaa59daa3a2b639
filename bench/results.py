"""The records an engine returns: one `RunResult` per run, with per-epoch rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.environment import env_id
from bench.runspec import RunSpec
from bench.schema import Column, column, columns, flatten
from bench.vocabulary import Status


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
    # the step the row's metrics were evaluated at (inside the epoch with a step budget's eval_every)
    eval_step: int | None = field(default=None, metadata=column("outcome", int, added=5))


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
    # share of test targets outside the training targets' range (a trend the model never saw)
    test_out_of_range: float | None = field(default=None, metadata=column("outcome", float, added=5))
    # test RMSE at each lead time, lead 1 first, as a JSON list (one value when the horizon is 1)
    test_rmse_by_lead: str | None = field(default=None, metadata=column("outcome", str, added=7))
    persistence_rmse_by_lead: str | None = field(default=None, metadata=column("outcome", str, added=7))
    # the other simple baselines' test RMSEs (`bench.baselines`; None where one does not apply, as a
    # seasonal forecast without a season) and the season the seasonal one used
    mean_rmse: float | None = field(default=None, metadata=column("outcome", float, added=9))
    seasonal_rmse: float | None = field(default=None, metadata=column("outcome", float, added=9))
    linear_rmse: float | None = field(default=None, metadata=column("outcome", float, added=9))
    baseline_season: int | None = field(default=None, metadata=column("outcome", int, added=9))

    def __post_init__(self) -> None:
        skill = 1.0 - self.test_rmse / self.persistence_rmse if self.persistence_rmse > 0 else float("nan")
        object.__setattr__(self, "skill", skill)


#: Calibration (pytest-benchmark style): a run's throughput rests on at least this many timed rounds ...
MIN_ROUNDS = 5
#: ... adding up to at least this many seconds; extra rounds stop at MAX_CALIBRATION_SECONDS.
MIN_TIMED_SECONDS = 0.1
MAX_CALIBRATION_SECONDS = 1.0


@dataclass(frozen=True)
class Throughput:
    """Training speed from steady-state timed rounds (whole epochs after the first, compiling one, plus any
    calibration rounds), with the distribution behind it.

    A run's throughput is the median of its rounds' rates (`samples_per_sec` equals `sps_median`): the one
    statistic the terminal, the Recommendation, speed.csv, the figures and `compare` show, so a slow round
    (another process, a page fault) moves none of them. Runs before 0.9 stored the rate over all rounds
    together; the report reads `sps_median` for them (`bench.report.load.prepare_runs`)."""

    samples_per_sec: float = field(metadata=column("outcome", float))  # median over timed rounds
    steps_per_sec: float = field(metadata=column("outcome", float))  # the same, in optimizer steps
    # None: unknown (the first epoch was not measurably slower than the others)
    compile_seconds: float | None = field(metadata=column("outcome", float))
    train_seconds: float = field(metadata=column("outcome", float))
    predict_samples_per_sec: float | None = field(metadata=column("outcome", float))
    peak_rss_mb: float = field(metadata=column("outcome", float))
    # samples/s per timed round: how many rounds, and their min, quartiles and max
    timed_rounds: int | None = field(default=None, metadata=column("outcome", int, added=5))
    calibration_rounds: int | None = field(default=None, metadata=column("outcome", int, added=5))
    sps_min: float | None = field(default=None, metadata=column("outcome", float, added=5))
    sps_q1: float | None = field(default=None, metadata=column("outcome", float, added=5))
    sps_median: float | None = field(default=None, metadata=column("outcome", float, added=5))
    sps_q3: float | None = field(default=None, metadata=column("outcome", float, added=5))
    sps_max: float | None = field(default=None, metadata=column("outcome", float, added=5))
    # runs trained together share the machine: samples of all of them per second (samples_per_sec is each one's share)
    machine_samples_per_sec: float | None = field(default=None, metadata=column("outcome", float, added=5))

    @classmethod
    def from_rounds(
        cls,
        seconds: list[float],
        samples_per_round: int,
        steps_per_round: int,
        compile_seconds: float | None,
        train_seconds: float,
        predict_samples_per_sec: float | None,
        peak_rss_mb: float,
        calibration_rounds: int = 0,
        trained_together: int = 1,
    ) -> Throughput:
        """Rates over steady-state rounds of `samples_per_round` samples each (never a compiling call)."""
        t = np.asarray(seconds, dtype=np.float64)
        t = t[np.isfinite(t) & (t > 0)]
        if not len(t):
            nan = float("nan")
            return cls(nan, nan, compile_seconds, train_seconds, predict_samples_per_sec, peak_rss_mb, 0, 0)
        rates = samples_per_round / t
        q = np.percentile(rates, [0, 25, 50, 75, 100])
        sps = float(q[2])
        return cls(
            samples_per_sec=sps,
            steps_per_sec=sps * steps_per_round / samples_per_round,
            compile_seconds=compile_seconds,
            train_seconds=train_seconds,
            predict_samples_per_sec=predict_samples_per_sec,
            peak_rss_mb=peak_rss_mb,
            timed_rounds=len(t),
            calibration_rounds=calibration_rounds,
            sps_min=float(q[0]),
            sps_q1=float(q[1]),
            sps_median=float(q[2]),
            sps_q3=float(q[3]),
            sps_max=float(q[4]),
            machine_samples_per_sec=sps * trained_together,
        )


def compile_estimate(first: float, steady: list[float]) -> float | None:
    """Seconds the first (compiling) epoch took beyond a steady one; None (unknown) when that is not
    positive, as when the program was already compiled or the machine's noise hides it."""
    if not steady:
        return None
    extra = first - float(np.median(steady))
    return extra if extra > 0 else None


@dataclass(frozen=True)
class Conditions:
    """How busy the machine was while the runs were timed (`bench.environment.LoadMeter`)."""

    # 1-minute load average over the cores
    load_per_core: float | None = field(default=None, metadata=column("outcome", float, added=5))
    # share of the machine's CPU time stolen by the hypervisor (None where the kernel does not report it)
    cpu_steal: float | None = field(default=None, metadata=column("outcome", float, added=5))
    # share of the machine's CPU time other processes used
    other_cpu_share: float | None = field(default=None, metadata=column("outcome", float, added=5))


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
    # steps between evaluations: steps_to_target is known to this many optimizer steps
    target_resolution: int | None = field(default=None, metadata=column("outcome", int, added=5))
    # the best value of the target metric over the run's evaluations (what a harder target could ask)
    target_best: float | None = field(default=None, metadata=column("outcome", float, added=5))
    # the model's size and layers, e.g. "GRU(8) > LSTM(4) > Dense(16) > Dense(1)" (`bench.model.describe`)
    n_params: int | None = field(default=None, metadata=column("outcome", int, added=6))
    model_summary: str | None = field(default=None, metadata=column("outcome", str, added=6))
    conditions: Conditions | None = field(default=None, metadata=flatten())
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
