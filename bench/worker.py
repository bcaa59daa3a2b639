"""Code that runs inside a worker process: one Keras backend and device per process.

Keras fixes its backend when it is first imported, so the parent sets `KERAS_BACKEND` (and hides
GPUs for CPU runs) through `init_worker` before anything imports Keras here.
"""

from __future__ import annotations

import logging
import os
import traceback
from datetime import datetime, timezone

from bench import environment
from bench.datasets import load_series
from bench.results import RunResult
from bench.specs import RunSpec
from bench.windows import make_windows, prepare

log = logging.getLogger(__name__)


def init_worker(backend: str, device: str, threads: int | None = None) -> None:
    """Configure this fresh process for `backend` on `device` before Keras is imported."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN reorders float sums: results would vary by run
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    import keras  # noqa: F401  (import now so the first run does not pay for it in its timings)

    if backend == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notices for each new model are expected here
        tf.config.experimental.enable_op_determinism()
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)


def gpu_names(backend: str) -> list[str]:
    """The GPUs this process's backend can use."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform == "gpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a backend without GPU support raises many kinds of errors; all mean "none"
        log.debug("GPU query failed", exc_info=True)
    return []


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def execute(spec: RunSpec, concurrency: int = 1) -> RunResult:
    """Run one spec in this process and return its result; never raises for a failed run."""
    import keras

    started = _now()
    env = environment.capture(keras.backend.backend())
    stamp = dict(started_at=started, concurrency=concurrency, environment=env)
    if keras.backend.backend() != spec.backend:
        return RunResult(spec, "failed", error=f"worker runs backend {keras.backend.backend()}, spec asks for {spec.backend}", finished_at=_now(), **stamp)
    if spec.device == "gpu" and not gpu_names(spec.backend):
        return RunResult(
            spec, "unsupported",
            error=f"device: gpu asked for, but the {spec.backend} backend sees no GPU on {env['hostname']}; use device: cpu or auto",
            finished_at=_now(), **stamp,
        )
    try:
        from bench.engines import get_engine

        engine = get_engine(spec.engine)
        reason = engine.unsupported_reason(spec)
        if reason:
            return RunResult(spec, "unsupported", error=reason, finished_at=_now(), **stamp)
        prep = prepare(load_series(spec.dataset).values, spec.test_fraction, spec.difference, spec.scale)  # type: ignore[arg-type]
        windows = make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout)  # type: ignore[arg-type]
        result = engine.run(spec, prep, windows)
    except Exception as exc:
        log.debug("run %s failed", spec.run_id, exc_info=True)
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {os.path.basename(last.filename)}:{last.lineno}" if last else ""
        message = " ".join(str(exc).split())[:500]
        return RunResult(spec, "failed", error=f"{type(exc).__name__}: {message}{where}", finished_at=_now(), **stamp)
    return _replace(result, finished_at=_now(), **stamp)


def _replace(result: RunResult, **changes: object) -> RunResult:
    import dataclasses

    return dataclasses.replace(result, **changes)
