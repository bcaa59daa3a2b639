"""One worker process per backend for the whole test session, shared by the conformance suites and any
fixture that asks (spawned and configured as a run's worker is: `bench.worker.worker_pool`)."""

from __future__ import annotations

import atexit
from concurrent.futures import ProcessPoolExecutor

_pools: dict[str, ProcessPoolExecutor] = {}


def pool(backend: str) -> ProcessPoolExecutor:
    """The session's worker for `backend`, started on first use."""
    from bench.worker import worker_pool

    if backend not in _pools:
        _pools[backend] = worker_pool(backend)
    return _pools[backend]


@atexit.register
def shutdown() -> None:
    """Stop every worker; killed rather than waited for (each framework's exit is slow)."""
    for p in _pools.values():
        for proc in list(getattr(p, "_processes", {}).values()):
            proc.kill()
        p.shutdown(wait=False, cancel_futures=True)
    _pools.clear()
