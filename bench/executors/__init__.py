"""Executors: where work groups run. One dispatch loop (`SlotExecutor`), several places to run.

- `local` (`bench.executors.local.LocalExecutor`): spawned worker processes on this machine.
- `ray` (`bench.executors.raycluster.RayExecutor`): one Ray actor per worker slot, on a local
  Ray instance or an existing cluster (`--ray-address`).

An executor yields `RunResult`s as they finish; the driver (`bench.runner.drive`) alone writes
them. Before a group is dispatched the executor asks the driver's `claim` callback which of its
specs it may run (another process may hold them); it must never raise for a failed run.
"""

from __future__ import annotations

import logging
import os
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from collections.abc import Callable, Iterator

from bench import registry
from bench.errors import UserError
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.vocabulary import FAILED

log = logging.getLogger(__name__)

#: Given a group about to be dispatched, the specs of it this executor may run now.
Claim = Callable[[list[RunSpec]], list[RunSpec]]

EXECUTORS = ("local", "ray")

#: Test hooks (tests only), read in the worker process just before it runs a group:
#: `LSTM_BENCH_TEST_CRASH=<run_id>[,<run_id>...][:<marker file>]` makes the worker that starts one of
#: these runs kill itself with SIGKILL, as an OOM kill would. With a marker file it crashes only while
#: the file does not exist (it creates it first), so a retry succeeds.
#: `LSTM_BENCH_TEST_PAUSE=<folder>:<seconds>` makes every worker write a file named after its pid
#: into the folder and sleep before each group, so a test can act while runs are in flight.
CRASH_HOOK_ENV = "LSTM_BENCH_TEST_CRASH"
PAUSE_HOOK_ENV = "LSTM_BENCH_TEST_PAUSE"
TEST_HOOKS = (CRASH_HOOK_ENV, PAUSE_HOOK_ENV)


class Executor(Protocol):
    def results(self, specs: list[RunSpec], claim: Claim | None = None) -> Iterator[RunResult]:
        """Run `specs`, yielding each result as it finishes (order not guaranteed)."""
        ...

    def shutdown(self, kill: bool = False) -> None:
        """Stop the workers (`kill`: at once, abandoning runs in flight)."""
        ...


@dataclass(eq=False)
class Slot:
    """One worker: it serves one (backend, device) pair at a time and runs one group at a time."""

    key: tuple[str, str] | None = None
    group: list[RunSpec] | None = None

    @property
    def busy(self) -> bool:
        return self.group is not None


class SlotExecutor(ABC):
    """The dispatch loop shared by every executor; an implementation supplies how to start a group
    on a slot, wait for slots to finish, and collect a finished slot's results.

    A slot is reused for consecutive groups of its (backend, device) pair. `capacity()` may shrink
    (a Ray cluster that lost a node): idle slots beyond it are retired, and when none is left the
    groups still queued fail with the reason.
    """

    slots: list[Slot]  # set by the implementation's __init__ (empty) and by `results`
    concurrency: int = 1

    @abstractmethod
    def slot_count(self, groups: int) -> int:
        """How many slots `groups` groups of work get: min(workers, groups), at least 1."""

    @abstractmethod
    def new_slots(self, n: int) -> list[Slot]:
        """`n` idle slots, each with its share of the resources."""

    def open(self, groups: int) -> list[Slot]:
        """The slots for `groups` groups of work: those of the previous call when there are as many
        (their workers are warm), else new ones (a slot's share of the cores or CPUs depends on the count)."""
        n = self.slot_count(groups)
        if len(self.slots) != n:
            self._stop_slots(kill=True)
            self.slots = self.new_slots(n)
        return self.slots

    @abstractmethod
    def start(self, slot: Slot, group: list[RunSpec]) -> list[RunResult] | None:
        """Dispatch `group` on `slot` (set `slot.group`), or return its results at once when it cannot run."""

    @abstractmethod
    def wait(self, busy: list[Slot]) -> tuple[list[Slot], list[Slot]]:
        """Block until slots finish; returns (finished, stalled): a stalled slot's group could not start
        and goes back to the queue."""

    @abstractmethod
    def collect(self, slot: Slot) -> list[RunResult]:
        """The results of a finished slot's group (`worker_died`'s when its worker died)."""

    def worker_died(self, slot: Slot, group: list[RunSpec], exc: BaseException) -> list[RunResult]:
        """Failed results for the group of a slot whose worker went away; the slot's next group gets a fresh one."""
        self.stop(slot, kill=True)
        cause = exit_cause(exc)
        log.warning("worker died during runs %s: %s", [s.run_id for s in group], cause)
        return [failed_result(s, f"worker process died during the run ({cause})", self.concurrency) for s in group]

    @abstractmethod
    def stop(self, slot: Slot, kill: bool = False) -> None:
        """Stop a slot's worker."""

    def capacity(self) -> int | None:
        """How many slots the resources can hold now (None: no limit)."""
        return None

    def results(self, specs: list[RunSpec], claim: Claim | None = None) -> Iterator[RunResult]:
        """Run `specs`, yielding each result as it finishes. Workers stay up for the next call (a retry
        round, the next scenario) until `shutdown`; a call abandoned midway stops them."""
        queue = execution_groups(specs)
        self.slots = self.open(len(queue))
        self.concurrency = len(self.slots)
        finished = False
        try:
            while True:
                for slot in list(self.slots):
                    while not slot.busy and queue:
                        # prefer a group this slot's worker can serve without a restart
                        group = queue.pop(next((i for i, g in enumerate(queue) if _key(g) == slot.key), 0))
                        group = claim(group) if claim else group
                        if group:
                            yield from self.start(slot, group) or ()
                busy = [s for s in self.slots if s.busy]
                if not busy:
                    if queue:  # no slot left to run them
                        reason = "no worker left to run it: the cluster lost the resources of every slot"
                        yield from (failed_result(s, reason, self.concurrency) for g in queue for s in g)
                    finished = True
                    return
                finished_slots, stalled = self.wait(busy)
                for slot in stalled:
                    queue.insert(0, slot.group or [])
                    slot.group = None
                    self._retire(slot)
                for slot in finished_slots:
                    results = self.collect(slot)
                    slot.group = None
                    yield from results
                self._shrink()
        finally:
            if not finished:  # interrupted or abandoned: runs in flight have no one to report to
                for slot in self.slots:
                    self.stop(slot, kill=True)
                    slot.group = None

    def _shrink(self) -> None:
        cap = self.capacity()
        if cap is None:
            return
        for slot in [s for s in self.slots if not s.busy][: max(0, len(self.slots) - cap)]:
            log.warning("the cluster has room for %d worker(s) now; retiring one of %d", cap, len(self.slots))
            self._retire(slot)

    def _retire(self, slot: Slot) -> None:
        self.stop(slot, kill=True)
        self.slots.remove(slot)

    def _stop_slots(self, kill: bool) -> None:
        for slot in self.slots:
            self.stop(slot, kill=kill)
        self.slots = []

    def shutdown(self, kill: bool = False) -> None:
        self._stop_slots(kill)


def _key(group: list[RunSpec]) -> tuple[str, str]:
    return group[0].backend, group[0].device


def make_executor(name: str, workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor for `--executor name`; raises UserError when it cannot be used here."""
    if name == "local":
        from bench.executors.local import LocalExecutor

        return LocalExecutor(workers=workers or 1)
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray needs Ray, which is not installed: pip install 'lstm-bench[ray]'") from None
        from bench.executors.raycluster import RayExecutor

        executor = RayExecutor(address=ray_address, workers=workers)
        executor.connect()
        return executor
    raise UserError(f"unknown executor '{name}'; use one of: {', '.join(EXECUTORS)}")


def apply_test_hooks(specs: list[RunSpec]) -> None:
    """The test hooks above; called in the worker process just before it runs `specs`."""
    pause = os.environ.get(PAUSE_HOOK_ENV)
    if pause:
        folder, _, seconds = pause.rpartition(":")
        Path(folder, str(os.getpid())).write_text(",".join(s.run_id for s in specs))
        import time

        time.sleep(float(seconds))
    value = os.environ.get(CRASH_HOOK_ENV)
    if not value:
        return
    ids, _, marker = value.partition(":")
    if not {s.run_id for s in specs} & set(ids.split(",")):
        return
    if marker:
        path = Path(marker)
        if path.exists():
            return
        path.write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def execution_groups(specs: list[RunSpec], max_group: int = 64) -> list[list[RunSpec]]:
    """Units of work for the workers: repeats of one configuration (and, where the engine allows it,
    its other optimizer values: `Engine.trains_together_across`) go together on an engine that trains
    them together (`Engine.trains_together`), every other spec alone. A group larger than
    `max_group` is cut into equal parts, so the parts share one compiled shape."""
    groups: dict[object, list[RunSpec]] = {}
    for spec in specs:
        engine = registry.engine(spec.engine)
        key = spec.group_key(engine.trains_together_across) if engine.trains_together else spec.run_id
        groups.setdefault(key, []).append(spec)
    out = []
    for g in groups.values():
        size = -(-len(g) // -(-len(g) // max_group))
        out += [g[i : i + size] for i in range(0, len(g), size)]
    return out


def exit_cause(exc: BaseException) -> str:
    """One line (at most 300 characters) saying why a worker went away."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def failed_result(spec: RunSpec, error: str, concurrency: int, status: str = FAILED) -> RunResult:
    """The result of a run whose worker could not report one itself."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return RunResult(spec, status, error=error, started_at=now, finished_at=now, concurrency=concurrency)  # type: ignore[arg-type]
