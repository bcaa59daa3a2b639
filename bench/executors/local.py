"""The local executor: spawned worker processes on this machine.

Each worker slot is a single-process pool serving one (backend, device) pair, reused for
consecutive groups of that pair. A slot whose process dies fails only its own in-flight group and
gets a fresh process. With several workers each slot is pinned to its share of the cores and its
framework's thread pools are sized to them. A worker process ends with the driver, however the
driver ends (`bench.worker.exit_with_parent`: `kill -9` included).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from bench.executors import Slot, SlotExecutor, apply_test_hooks, failed_result
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.worker import execute_group, exit_with_parent, init_worker, spawning


@dataclass(eq=False)
class _Slot(Slot):
    cores: tuple[int, ...] | None = None
    pool: ProcessPoolExecutor | None = None
    future: Future[list[RunResult]] | None = None


def _init_slot(
    parent: int, kernel: bool, backend: str, device: str, cores: tuple[int, ...] | None, threads: int | None
) -> None:
    exit_with_parent(parent, kernel)  # a driver killed with kill -9 leaves no worker computing on
    # Ctrl-C in a terminal reaches the whole process group: the driver handles it and stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cores:
        os.sched_setaffinity(0, cores)
    init_worker(backend, device, threads)


def _execute_in_slot(group: list[RunSpec], concurrency: int) -> list[RunResult]:
    apply_test_hooks(group)
    return execute_group(group, concurrency)


def _core_sets(workers: int) -> list[tuple[int, ...] | None]:
    """Split this process's cores evenly between `workers` slots (no pinning for one worker)."""
    if workers <= 1:
        return [None]
    cores = sorted(os.sched_getaffinity(0))
    per = max(1, len(cores) // workers)
    return [tuple(cores[(i * per) % len(cores) : (i * per) % len(cores) + per]) for i in range(workers)]


class LocalExecutor(SlotExecutor):
    """Runs groups in `workers` local worker processes (1 = one after another)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.slots: list[Slot] = []

    def slot_count(self, groups: int) -> int:
        return max(1, min(self.workers, groups))

    def new_slots(self, n: int) -> list[Slot]:
        return [_Slot(cores=cores) for cores in _core_sets(n)]

    def start(self, slot: Slot, group: list[RunSpec]) -> list[RunResult] | None:
        assert isinstance(slot, _Slot)
        spec = group[0]
        key = (spec.backend, spec.device)
        if slot.pool is None or key != slot.key:
            self.stop(slot)
            threads = len(slot.cores) if slot.cores else None
            # its process is spawned by the submit below, from this thread (`spawning`)
            slot.pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_slot,
                initargs=(*spawning(), spec.backend, spec.device, slot.cores, threads),
            )
            slot.key = key
        slot.group = group
        slot.future = slot.pool.submit(_execute_in_slot, group, self.concurrency)
        return None

    def wait(self, busy: list[Slot]) -> tuple[list[Slot], list[Slot]]:
        futures = {s.future: s for s in busy if isinstance(s, _Slot) and s.future is not None}
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        return [futures[f] for f in done], []

    def collect(self, slot: Slot) -> list[RunResult]:
        assert isinstance(slot, _Slot) and slot.future is not None
        group, fut = slot.group or [], slot.future
        slot.future = None
        try:
            return fut.result()
        except BrokenProcessPool as exc:
            return self.worker_died(slot, group, exc)
        except Exception as exc:  # an unpicklable result or similar: the run failed, the suite goes on
            return [failed_result(s, f"{type(exc).__name__}: {exc}", self.concurrency) for s in group]

    def stop(self, slot: Slot, kill: bool = False) -> None:
        assert isinstance(slot, _Slot)
        if slot.pool is None:
            return
        if kill:
            for proc in list(getattr(slot.pool, "_processes", {}).values()):
                proc.kill()
        slot.pool.shutdown(wait=not kill, cancel_futures=True)
        slot.pool = None
        slot.key = None
