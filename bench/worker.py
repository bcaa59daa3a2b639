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
from datetime import datetime, timezone

from bench import environment
from bench.datasets import load_series
from bench.engines.loop import reset_peak_rss
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

    if backend != "tensorflow":
        # keras.utils.set_random_seed also seeds TensorFlow whenever it is installed, importing it
        # (about 6 s here) into a JAX or PyTorch worker that never uses it: tell Keras it is absent.
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False

    if backend == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notices for each new model are expected here
        tf.config.experimental.enable_op_determinism()
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)


def worker_pool(backend: str, device: str = "cpu") -> ProcessPoolExecutor:
    """A fresh one-process pool configured for `backend` on `device` (spawned: Keras not yet imported)."""
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker, initargs=(backend, device))


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


def _refusal(spec: RunSpec, hostname: str) -> tuple[str, str] | None:
    """(status, reason) when this process must not run `spec`, else None."""
    import keras

    if keras.backend.backend() != spec.backend:
        return "failed", f"worker runs backend {keras.backend.backend()}, spec asks for {spec.backend}"
    if spec.device == "gpu" and not gpu_names(spec.backend):
        return "unsupported", f"device: gpu asked for, but the {spec.backend} backend sees no GPU on {hostname}; use device: cpu or auto"
    from bench.engines import get_engine

    reason = get_engine(spec.engine).unsupported_reason(spec)
    return ("unsupported", reason) if reason else None


def execute(spec: RunSpec, concurrency: int = 1) -> RunResult:
    """Run one spec in this process and return its result; never raises for a failed run."""
    return execute_group([spec], concurrency)[0]


def execute_group(specs: list[RunSpec], concurrency: int = 1) -> list[RunResult]:
    """Run specs in this process; repeats of one configuration train together where the engine can (scan)."""
    import keras

    first = specs[0]
    reset_peak_rss()
    started = _now()
    env = environment.capture(keras.backend.backend(), first.device)
    stamp = dict(started_at=started, concurrency=concurrency, environment=env)
    try:
        refused = _refusal(first, env["hostname"])
        if refused:
            return [RunResult(s, refused[0], error=refused[1], finished_at=_now(), **stamp) for s in specs]  # type: ignore[arg-type]
        from bench.engines import get_engine

        engine = get_engine(first.engine)
        prep = prepare(load_series(first.dataset).values, first.test_fraction, first.difference, first.scale)  # type: ignore[arg-type]
        windows = make_windows(prep, first.look_back, first.batch_size, first.stateful, first.layout)  # type: ignore[arg-type]
        if len(specs) > 1 and hasattr(engine, "run_many"):
            results = engine.run_many(specs, prep, windows)
        else:
            results = [engine.run(s, prep, windows) for s in specs]
    except Exception as exc:
        log.debug("runs %s failed", [s.run_id for s in specs], exc_info=True)
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {os.path.basename(last.filename)}:{last.lineno}" if last else ""
        message = " ".join(str(exc).split())[:500]
        return [RunResult(s, "failed", error=f"{type(exc).__name__}: {message}{where}", finished_at=_now(), **stamp) for s in specs]
    return [dataclasses.replace(r, finished_at=_now(), **stamp) for r in results]
