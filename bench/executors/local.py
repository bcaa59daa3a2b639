"""The local executor: spawned worker processes on this machine.

Each worker slot is a single-process pool serving one (backend, device) pair, reused for
consecutive groups of that pair. A slot whose process dies fails only its own in-flight group and
gets a fresh process. With several workers each slot is pinned to its share of the cores and its
framework's thread pools are sized to them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Iterator

from bench.executors import Claim, crash_hook, execution_groups, exit_cause, failed_result
from bench.results import RunResult
from bench.specs import RunSpec
from bench.worker import execute_group, init_worker

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    index: int
    cores: tuple[int, ...] | None
    key: tuple[str, str] | None = None
    pool: ProcessPoolExecutor | None = None
    group: list[RunSpec] | None = None
    future: Future[list[RunResult]] | None = None

    def start(self, group: list[RunSpec], concurrency: int) -> None:
        spec = group[0]
        key = (spec.backend, spec.device)
        if self.pool is None or key != self.key:
            self.stop()
            threads = len(self.cores) if self.cores else None
            self.pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_slot,
                initargs=(spec.backend, spec.device, self.cores, threads),
            )
            self.key = key
        self.group = group
        self.future = self.pool.submit(_execute_in_slot, group, concurrency)

    def stop(self, kill: bool = False) -> None:
        if self.pool is None:
            return
        if kill:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.kill()
        self.pool.shutdown(wait=not kill, cancel_futures=True)
        self.pool = None
        self.key = None


def _init_slot(backend: str, device: str, cores: tuple[int, ...] | None, threads: int | None) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the driver handles it and stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cores:
        os.sched_setaffinity(0, cores)
    init_worker(backend, device, threads)


def _execute_in_slot(group: list[RunSpec], concurrency: int) -> list[RunResult]:
    crash_hook(group)
    return execute_group(group, concurrency)


def _core_sets(workers: int) -> list[tuple[int, ...] | None]:
    """Split this process's cores evenly between `workers` slots (no pinning for one worker)."""
    if workers <= 1:
        return [None]
    cores = sorted(os.sched_getaffinity(0))
    per = max(1, len(cores) // workers)
    return [tuple(cores[(i * per) % len(cores) : (i * per) % len(cores) + per]) for i in range(workers)]


@dataclass
class LocalExecutor:
    """Runs specs in `workers` local worker processes (1 = one after another)."""

    workers: int = 1
    _slots: list[_Slot] = field(default_factory=list)

    def results(self, specs: list[RunSpec], claim: Claim | None = None) -> Iterator[RunResult]:
        """Yield each spec's result as it finishes (order not guaranteed when workers > 1).

        `claim` (from the driver) filters each group just before it is dispatched."""
        queue = execution_groups(specs)
        concurrency = max(1, min(self.workers, len(queue)))
        self._slots = [_Slot(i, cores) for i, cores in enumerate(_core_sets(concurrency))]
        try:
            while queue or any(s.future for s in self._slots):
                for slot in self._slots:
                    while slot.future is None and queue:
                        # prefer a spec this slot's process can serve without a restart
                        pick = next((i for i, g in enumerate(queue) if (g[0].backend, g[0].device) == slot.key), 0)
                        group = queue.pop(pick)
                        group = claim(group) if claim else group
                        if group:
                            slot.start(group, concurrency)
                if not any(s.future for s in self._slots):
                    break
                futures = {s.future: s for s in self._slots if s.future is not None}
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    slot = futures[fut]
                    group = slot.group or []
                    slot.future = slot.group = None
                    yield from self._collect(fut, slot, group, concurrency)
        finally:
            self.shutdown(kill=True)

    def _collect(self, fut: Future[list[RunResult]], slot: _Slot, group: list[RunSpec], concurrency: int) -> list[RunResult]:
        try:
            return fut.result()
        except BrokenProcessPool as exc:
            slot.stop(kill=True)  # the process is gone: the next run gets a fresh one
            cause = exit_cause(exc)
            log.warning("worker died during runs %s: %s", [s.run_id for s in group], cause)
            return [failed_result(s, f"worker process died during the run ({cause})", concurrency) for s in group]
        except Exception as exc:  # an unpicklable result or similar: the run failed, the suite goes on
            return [failed_result(s, f"{type(exc).__name__}: {exc}", concurrency) for s in group]

    def shutdown(self, kill: bool = False) -> None:
        for slot in self._slots:
            slot.stop(kill=kill)
