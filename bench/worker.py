"""Code that runs inside a worker process: one Keras backend and device per process.

Keras fixes its backend when it is first imported, so the parent sets `KERAS_BACKEND` (and hides
GPUs for CPU runs) through `init_worker` before anything imports Keras here. `worker_pool` and
`gpu_backends` are the parent's side: they start such processes.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import traceback
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, UTC

from bench import environment, registry
from bench.datasets import load_series
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.windows import make_windows, prepare
from bench.vocabulary import FAILED, UNSUPPORTED

log = logging.getLogger(__name__)


def init_worker(backend: str, device: str, threads: int | None = None) -> None:
    """Configure this fresh process for `backend` on `device` before Keras is imported."""
    entry = registry.backend(backend)
    os.environ.update(entry.environment(device, threads))
    import keras  # noqa: F401  (import now so the first run does not pay for it in its timings)

    entry.configure(threads)


def worker_pool(backend: str, device: str = "cpu") -> ProcessPoolExecutor:
    """A fresh one-process pool configured for `backend` on `device` (spawned: Keras not yet imported)."""
    return ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker, initargs=(backend, device)
    )


def gpu_backends(backends: Iterable[str]) -> frozenset[str]:
    """Those of `backends` that can use a GPU on this machine (what `device: auto` picks the GPU for).

    nvidia-smi is asked first; only when it finds a GPU does each backend get asked, in a spawned
    worker of its own, because a CPU-only build (tensorflow-cpu, plain jax) sees none.
    """
    if not environment.gpu_present():
        return frozenset()
    pools = {b: worker_pool(b, "gpu") for b in sorted(set(backends))}
    asked = {b: pool.submit(gpu_names, b) for b, pool in pools.items()}  # side by side: each imports its backend
    found = set()
    for backend, pool in pools.items():
        try:
            if asked[backend].result(timeout=600):
                found.add(backend)
        except Exception:  # a backend that is not installed, or whose worker dies, has no usable GPU
            log.debug("asking %s for GPUs failed", backend, exc_info=True)
        finally:
            pool.shutdown(cancel_futures=True)
    return frozenset(found)


def gpu_names(backend: str) -> list[str]:
    """The GPUs this process's backend can use."""
    try:
        return registry.backend(backend).gpu_names()
    except Exception:  # a backend without GPU support raises many kinds of errors; all mean "none"
        log.debug("GPU query failed", exc_info=True)
    return []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def refusal(spec: RunSpec, hostname: str) -> tuple[str, str] | None:
    """(status, reason) when this process must not run `spec`, else None."""
    import keras

    if keras.backend.backend() != spec.backend:
        return FAILED, f"worker runs backend {keras.backend.backend()}, spec asks for {spec.backend}"
    engine = registry.engine(spec.engine)
    if spec.backend not in engine.runs_on():
        return UNSUPPORTED, (
            f"engine: {spec.engine} runs on backend {', '.join(engine.runs_on())} only, not {spec.backend}; "
            f"set backend: {engine.runs_on()[0]}"
        )
    if spec.device == "gpu" and not gpu_names(spec.backend):
        return (
            UNSUPPORTED,
            f"device: gpu asked for, but the {spec.backend} backend sees no GPU on {hostname}; use device: cpu or auto",
        )
    reason = engine.unsupported_reason(spec)
    return (UNSUPPORTED, reason) if reason else None


def _noted(result: RunResult, note: str) -> RunResult:
    return dataclasses.replace(result, notes="; ".join(n for n in (result.notes, note) if n))


def execute(spec: RunSpec, concurrency: int = 1) -> RunResult:
    """Run one spec in this process and return its result; never raises for a failed run."""
    return execute_group([spec], concurrency)[0]


def execute_group(specs: list[RunSpec], concurrency: int = 1) -> list[RunResult]:
    """Run specs (repeats of one configuration, or one spec) in this process; never raises for a failed run."""
    import keras

    first = specs[0]
    environment.reset_peak_rss()
    started = _now()
    env = environment.capture(keras.backend.backend(), first.device)
    stamp = dict(started_at=started, concurrency=concurrency, environment=env)
    try:
        refused = refusal(first, env["hostname"])
        if refused:
            return [RunResult(s, refused[0], error=refused[1], finished_at=_now(), **stamp) for s in specs]  # type: ignore[arg-type]
        series = load_series(first.dataset)
        prep = prepare(
            series.values,
            first.test_fraction,
            first.difference,
            first.scale,  # type: ignore[arg-type]
            first.validation_fraction,
            series.inputs,
        )
        windows = make_windows(prep, first.look_back, first.batch_size, first.stateful, first.layout, first.horizon)  # type: ignore[arg-type]
        engine = registry.engine(first.engine)
        with environment.LoadMeter() as meter:
            results = engine.run(specs, prep, windows)
        conditions = meter.conditions()
        results = [dataclasses.replace(r, conditions=conditions) for r in results]
        if first.noise_scale and not engine.measures_noise_scale:
            results = [
                _noted(r, f"grad_noise_scale: unsupported by engine {r.spec.engine} (use engine: scan)")
                for r in results
            ]
        if series.notes:
            results = [_noted(r, series.notes) for r in results]
    except Exception as exc:
        log.debug("runs %s failed", [s.run_id for s in specs], exc_info=True)
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {os.path.basename(last.filename)}:{last.lineno}" if last else ""
        message = " ".join(str(exc).split())[:500]
        return [
            RunResult(s, FAILED, error=f"{type(exc).__name__}: {message}{where}", finished_at=_now(), **stamp)
            for s in specs
        ]
    return [dataclasses.replace(r, finished_at=_now(), **stamp) for r in results]
