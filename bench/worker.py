"""Code that runs inside a worker process: one Keras backend and device per process.

Keras fixes its backend when it is first imported, so the parent sets `KERAS_BACKEND` (and hides
GPUs for CPU runs) through `init_worker` before anything imports Keras here. `worker_pool` and
`gpu_backends` are the parent's side: they start such processes.

A worker ends with the process that started it (`exit_with_parent`): a driver killed with `kill -9`
leaves no worker computing on, whose load would skew the timings of the run that resumes it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, UTC

from bench import environment, registry
from bench.datasets import load_series
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.windows import make_windows, prepare_series
from bench.vocabulary import FAILED, UNSUPPORTED

log = logging.getLogger(__name__)


#: How often a worker's watching thread looks whether its parent is still there (on Linux the kernel acts at once).
PARENT_POLL_SECONDS = 1.0
#: The exit status of a worker that ends because its parent went away (nobody is left to read it).
ORPHANED_EXIT = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def spawning() -> tuple[int, bool]:
    """What a process about to be spawned from this thread gives `exit_with_parent`: this process's pid,
    and whether the kernel may watch for its end (PR_SET_PDEATHSIG follows the thread that spawns, so
    only the main thread, which lives as long as this process, will do)."""
    return os.getpid(), threading.current_thread() is threading.main_thread()


def exit_with_parent(parent: int, kernel: bool = True) -> None:
    """End this process as soon as `parent` (the pid of the process that started it) is gone, however
    it ended (`kill -9` included). Call it first thing in a spawned worker, with `spawning()` of the parent.

    On Linux (and with `kernel`) the kernel kills it with SIGKILL when the parent exits
    (`_death_signal`). Everywhere a daemon thread also looks every `PARENT_POLL_SECONDS` whether the
    parent changed, and ends the process when it did. A parent that died before this call is noticed
    at once."""
    if kernel:
        _death_signal()
    if os.getppid() != parent:  # gone already (adopted by init or a subreaper)
        os._exit(ORPHANED_EXIT)
    threading.Thread(target=_watch_parent, args=(parent,), name="lstm-bench-parent-watch", daemon=True).start()


def _death_signal() -> bool:
    """Linux: have the kernel send this process SIGKILL when its parent exits (PR_SET_PDEATHSIG, set in
    the child; strictly, when the parent's thread that spawned it ends: for `ProcessPoolExecutor` the
    one that submits). False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            return True
        log.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):  # no usable libc: the watching thread alone
        log.debug("prctl unavailable", exc_info=True)
    return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(ORPHANED_EXIT)


def init_worker(backend: str, device: str, threads: int | None = None) -> None:
    """Configure this fresh process for `backend` on `device` before Keras is imported."""
    entry = registry.backend(backend)
    os.environ.update(entry.environment(device, threads))
    import keras  # noqa: F401  (import now so the first run does not pay for it in its timings)

    entry.configure(threads)


def _init_pool_worker(parent: int, kernel: bool, backend: str, device: str) -> None:
    exit_with_parent(parent, kernel)
    init_worker(backend, device)


def worker_pool(backend: str, device: str = "cpu") -> ProcessPoolExecutor:
    """A fresh one-process pool configured for `backend` on `device` (spawned: Keras not yet imported);
    its process ends with this one."""
    return ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_pool_worker,
        initargs=(*spawning(), backend, device),
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
        prep = prepare_series(series, first)
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
