"""Route run specs to worker processes and stream their results back, one at a time.

Each worker slot is a single-process pool serving one (backend, device) pair and reused for
consecutive runs of that pair. A slot whose process dies fails only its own in-flight run and
is replaced; the driver alone writes results.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator

from bench.results import RunResult
from bench.specs import RunSpec
from bench.worker import execute_group, init_worker

log = logging.getLogger(__name__)


def pending(specs: Iterable[RunSpec], done_ids: set[str], force: bool = False) -> list[RunSpec]:
    """The specs still to run, grouped by backend and device so workers are reused."""
    todo = [s for s in specs if force or s.run_id not in done_ids]
    return sorted(todo, key=lambda s: (s.backend, s.device))


def execution_groups(specs: list[RunSpec], max_group: int = 64) -> list[list[RunSpec]]:
    """Units of work for the workers: repeats of one configuration go together on the scan engine
    (trained as one vmapped program), every other spec alone."""
    groups: dict[object, list[RunSpec]] = {}
    for spec in specs:
        key = spec.config_key if spec.engine == "scan" else spec.run_id
        groups.setdefault(key, []).append(spec)
    return [g[i : i + max_group] for g in groups.values() for i in range(0, len(g), max_group)]


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
        self.future = self.pool.submit(execute_group, group, concurrency)

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
    if cores:
        os.sched_setaffinity(0, cores)
    init_worker(backend, device, threads)


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

    def results(self, specs: list[RunSpec]) -> Iterator[RunResult]:
        """Yield each spec's result as it finishes (order not guaranteed when workers > 1)."""
        queue = execution_groups(specs)
        concurrency = max(1, min(self.workers, len(queue)))
        self._slots = [_Slot(i, cores) for i, cores in enumerate(_core_sets(concurrency))]
        try:
            while queue or any(s.future for s in self._slots):
                for slot in self._slots:
                    if slot.future is None and queue:
                        # prefer a spec this slot's process can serve without a restart
                        pick = next((i for i, g in enumerate(queue) if (g[0].backend, g[0].device) == slot.key), 0)
                        slot.start(queue.pop(pick), concurrency)
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
            cause = _exit_cause(exc)
            log.warning("worker died during runs %s: %s", [s.run_id for s in group], cause)
            return [_failed(s, f"worker process died during the run ({cause})", concurrency) for s in group]
        except Exception as exc:  # an unpicklable result or similar: the run failed, the suite goes on
            return [_failed(s, f"{type(exc).__name__}: {exc}", concurrency) for s in group]

    def shutdown(self, kill: bool = False) -> None:
        for slot in self._slots:
            slot.stop(kill=kill)


def _exit_cause(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def _failed(spec: RunSpec, error: str, concurrency: int) -> RunResult:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return RunResult(spec, "failed", error=error, started_at=now, finished_at=now, concurrency=concurrency)
