"""Synthetic results with known numbers, for the report and compare tests (and the report benchmark).

A plain module rather than conftest.py so tests can import it: several conftest modules would clash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from bench.results import EpochRow, Metrics, RunResult, Throughput
from bench.runspec import RunSpec
from bench.store import Store

import runspecs

PERSISTENCE_RMSE = 48.0
DIVERGED_RMSE = 1.0e6  # would wreck any mean it leaked into


def make_spec(**overrides: object) -> RunSpec:
    """A seed-like RunSpec (airline, look_back 3, LSTM(4), 5 epochs) with `overrides` applied."""
    repeat = int(overrides.get("repeat", 0))  # type: ignore[call-overload]
    return runspecs.make_spec(
        **{"scenario": "synthetic", "epochs": 5, "eval_every": 1, "seed": 1000 + repeat, **overrides}
    )


def expected_rmse(batch_size: int, repeat: int, stateful: bool) -> float:
    """Test RMSE of a synthetic ok run: grows with batch size; stateless is 3 worse."""
    return 40.0 + 0.5 * batch_size + 1.0 * repeat + (0.0 if stateful else 3.0)


def expected_sps(batch_size: int, repeat: int, stateful: bool, speed: float = 1.0) -> float:
    """Samples/s of a synthetic ok run: proportional to batch size, times `speed`."""
    return 1000.0 * batch_size * (1.0 + 0.1 * repeat) * (1.0 if stateful else 1.2) * speed


def expected_epochs_to_target(batch_size: int, repeat: int) -> int | None:
    """Epochs to target; None (never reached) for batch size 16, repeat 0."""
    return None if (batch_size == 16 and repeat == 0) else 2 + batch_size.bit_length() + repeat


def _ok(spec: RunSpec, n_epochs: int, speed: float) -> RunResult:
    bs, rep, st = spec.batch_size, spec.repeat, spec.stateful
    rmse = expected_rmse(bs, rep, st)
    sps = expected_sps(bs, rep, st, speed)
    epochs = tuple(EpochRow(e, 0.5 / e * (1 + 0.1 * rep) + 0.001 * bs, 100.0 / sps) for e in range(1, n_epochs + 1))
    ett = expected_epochs_to_target(bs, rep) if spec.target_metric else None
    return RunResult(
        spec=spec,
        status="ok",
        metrics=Metrics(train_rmse=rmse - 5.0, test_rmse=rmse, test_mae=0.8 * rmse, persistence_rmse=PERSISTENCE_RMSE),
        throughput=Throughput(
            samples_per_sec=sps,
            steps_per_sec=sps / bs,
            compile_seconds=0.5,
            train_seconds=100.0 * n_epochs / sps,
            predict_samples_per_sec=None,
            peak_rss_mb=300.0,
        ),
        epochs=epochs,
        n_train_windows=96,
        n_dropped=0,
        epochs_to_target=ett,
        seconds_to_target=None if ett is None else ett * 100.0 / sps,
        started_at=f"2026-11-28T10:{rep:02d}:{bs % 60:02d}",
        finished_at="2026-11-28T11:00:00",
        environment={"hostname": "testhost", "backend": spec.backend, "device": spec.device},
    )


def synthetic_results(
    batch_sizes: Iterable[int] = (1, 4, 16),
    repeats: int = 3,
    stateful: Iterable[bool] = (True, False),
    target: bool = False,
    failed: bool = True,
    diverged: bool = True,
    speed: Callable[[int], float] = lambda bs: 1.0,
    n_epochs: int = 5,
    **spec: object,
) -> list[RunResult]:
    """Ok runs for every batch size x stateful flag x repeat, plus one failed and one diverged run
    (both extra repeats of the stateful batch-1 configuration). `speed(bs)` scales samples/s;
    `spec` overrides RunSpec fields (device, engine, look_back, ...)."""
    tgt = {"target_metric": "test_rmse", "target_value": 45.0} if target else {}
    out: list[RunResult] = []
    for st in stateful:
        for bs in batch_sizes:
            for rep in range(repeats):
                out.append(_ok(make_spec(batch_size=bs, stateful=st, repeat=rep, **tgt, **spec), n_epochs, speed(bs)))
    if failed:
        out.append(
            RunResult(
                make_spec(batch_size=1, repeat=repeats, **tgt, **spec),
                status="failed",
                error="RuntimeError: synthetic failure",
                started_at="2026-11-28T12:00:00",
            )
        )
    if diverged:
        bad = _ok(make_spec(batch_size=1, repeat=repeats + 1, **tgt, **spec), n_epochs, 1.0)
        out.append(
            RunResult(
                bad.spec,
                status="diverged",
                error="loss became NaN at epoch 3",
                metrics=Metrics(DIVERGED_RMSE, DIVERGED_RMSE, DIVERGED_RMSE, PERSISTENCE_RMSE),
                throughput=bad.throughput,
                epochs=bad.epochs[:3],
                diverged_epoch=3,
                started_at="2026-11-28T12:01:00",
            )
        )
    return out


def save(folder: Path, results: Iterable[RunResult]) -> Path:
    with Store.open(folder) as store:
        for r in results:
            store.save(r)
    return folder


#: The tuning sweep's known numbers. On validation the middle rate wins at every batch size; on the test set
#: the largest rate would (so a selection that peeked at the test set would pick it). Batch size 4 is the most
#: accurate at its tuned rate.
TUNING_RATES = (0.001, 0.01, 0.1)
TUNING_BATCH_SIZES = (1, 4, 16, 64)
VAL_BEST_RATE, TEST_BEST_RATE = 0.01, 0.1
S_MIN, B_CRIT = 1000.0, 16.0
STEPS_PER_EPOCH_ROWS = 96


def tuning_val_rmse(bs: int, lr: float, repeat: int) -> float:
    return 30.0 + {0.001: 5.0, 0.01: 0.0, 0.1: 2.0}[lr] + 0.1 * bs + 0.1 * repeat


def tuning_test_rmse(bs: int, lr: float, repeat: int) -> float:
    return 40.0 + {0.001: 5.0, 0.01: 3.0, 0.1: 0.0}[lr] + 0.5 * abs(bs.bit_length() - 3) + 0.1 * repeat


def tuning_steps_to_target(bs: int, lr: float, repeat: int) -> int | None:
    """S(B) = S_MIN (1 + B_CRIT / B) at the fastest rate: 0.1 up to batch size 16, 0.01 at 64. At 64, rate 0.1
    reaches the target very fast in half its runs and never in the others: its median run misses it."""
    if bs == 64 and lr == 0.1:
        return 50 if repeat % 2 == 0 else None
    factor = {0.001: 3.0, 0.01: 1.5 if bs < 64 else 1.0, 0.1: 1.0}[lr]
    return round(S_MIN * (1.0 + B_CRIT / bs) * factor * (1.0 + 0.01 * repeat))


def tuning_steps_per_sec(bs: int) -> float:
    return 100.0 * bs**0.5


def tuning_results(
    batch_sizes: Iterable[int] = TUNING_BATCH_SIZES,
    rates: Iterable[float] = TUNING_RATES,
    repeats: int = 4,
    stateful: Iterable[bool] = (True,),
    validation: bool = True,
    noise: bool = True,
    target: bool = True,
    n_epochs: int = 4,
    **spec: object,
) -> list[RunResult]:
    """A learning rate x batch size sweep with a validation split, a target, steps to target and the gradient
    noise scale (final B_simple 14-17, around B_CRIT), all from the functions above; one diverged run
    at batch size 1."""
    tgt = {"target_metric": "test_rmse", "target_value": 45.0} if target else {}
    val = {"validation_fraction": 0.2} if validation else {}
    out: list[RunResult] = []
    for st in stateful:
        for bs in batch_sizes:
            per_epoch = -(-STEPS_PER_EPOCH_ROWS // bs)
            sps = tuning_steps_per_sec(bs) * bs
            for lr in rates:
                for rep in range(repeats):
                    s = make_spec(
                        batch_size=bs,
                        stateful=st,
                        repeat=rep,
                        learning_rate=lr,
                        base_learning_rate=lr,
                        noise_scale=noise,
                        **tgt,
                        **val,
                        **spec,
                    )
                    rmse = tuning_test_rmse(bs, lr, rep) + (0.0 if st else 1.0)
                    vr = tuning_val_rmse(bs, lr, rep) if validation else None
                    stt = tuning_steps_to_target(bs, lr, rep) if target else None
                    epochs = tuple(
                        EpochRow(
                            e,
                            1.0 / e,
                            per_epoch / tuning_steps_per_sec(bs),
                            val_rmse=vr,
                            step=e * per_epoch,
                            grad_noise_scale=(4.0 + 10.0 * e / n_epochs + rep) if noise else None,
                        )
                        for e in range(1, n_epochs + 1)
                    )
                    out.append(
                        RunResult(
                            spec=s,
                            status="ok",
                            metrics=Metrics(
                                train_rmse=rmse - 5.0,
                                test_rmse=rmse,
                                test_mae=0.8 * rmse,
                                persistence_rmse=PERSISTENCE_RMSE,
                                val_rmse=vr,
                                val_mae=None if vr is None else 0.8 * vr,
                            ),
                            throughput=Throughput(
                                samples_per_sec=sps,
                                steps_per_sec=sps / bs,
                                compile_seconds=0.5,
                                train_seconds=n_epochs * per_epoch / tuning_steps_per_sec(bs),
                                predict_samples_per_sec=None,
                                peak_rss_mb=300.0,
                            ),
                            epochs=epochs,
                            n_train_windows=STEPS_PER_EPOCH_ROWS,
                            n_dropped=0,
                            steps_run=n_epochs * per_epoch,
                            steps_to_target=stt,
                            # the synthetic runs are short: the target falls in their last epoch at the latest
                            epochs_to_target=None if stt is None else min(n_epochs, -(-stt // per_epoch)),
                            seconds_to_target=None if stt is None else stt / tuning_steps_per_sec(bs),
                            grad_noise_scale=epochs[-1].grad_noise_scale,
                            started_at="2026-11-28T10:00:00",
                            finished_at="2026-11-28T11:00:00",
                            environment={"hostname": "testhost", "backend": s.backend, "device": s.device},
                        )
                    )
    first = out[0]
    out.append(
        RunResult(
            make_spec(
                batch_size=1,
                repeat=repeats,
                learning_rate=0.1,
                base_learning_rate=0.1,
                noise_scale=noise,
                **tgt,
                **val,
                **spec,
            ),
            status="diverged",
            error="loss became NaN at epoch 2",
            metrics=Metrics(DIVERGED_RMSE, DIVERGED_RMSE, DIVERGED_RMSE, PERSISTENCE_RMSE),
            throughput=first.throughput,
            epochs=first.epochs[:2],
            diverged_epoch=2,
            started_at="2026-11-28T12:01:00",
        )
    )
    return out
