"""The driver loop shared by every executor.

`drive` claims runs in the store just before they are dispatched (so two suites on one results
folder never run a configuration twice), commits each result in one transaction with SIGINT
deferred, and retries failed runs. Executors (`bench.executors`) only run work and stream results.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from bench.executors import Executor
from bench.results import RunResult
from bench.specs import RunSpec
from bench.store import Owner, Store

log = logging.getLogger(__name__)


def pending(specs: Iterable[RunSpec], done_ids: set[str], force: bool = False) -> list[RunSpec]:
    """The specs still to run, grouped by backend and device so workers are reused."""
    todo = [s for s in specs if force or s.run_id not in done_ids]
    return sorted(todo, key=lambda s: (s.backend, s.device))


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C while the block runs (a store transaction); it is raised right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


@dataclass
class Outcome:
    """What `drive` did: the final result of each run it executed, and what it left to others."""

    results: dict[str, RunResult] = field(default_factory=dict)
    skipped: list[RunSpec] = field(default_factory=list)  # claimed by another live process, or finished by it
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results.values() if r.status == "failed"]


def drive(
    executor: Executor,
    store: Store,
    specs: list[RunSpec],
    *,
    retries: int = 0,
    force: bool = False,
    on_result: Callable[[RunResult, int, bool], None] | None = None,
    on_skip: Callable[[list[RunSpec]], None] | None = None,
) -> Outcome:
    """Run `specs` on `executor`, committing every result to `store` as it arrives.

    Each group is claimed in the store just before dispatch; specs another live process holds
    (or has finished meanwhile) are skipped and reported through `on_skip`. A failed run is run
    again up to `retries` times (its claim is kept in between); every execution is logged in the
    store's attempts table. `on_result(result, attempt, will_retry)` is called after each commit.
    On any exit this process's remaining claims are released.
    """
    owner = Owner.current()
    outcome = Outcome()

    def claim(group: list[RunSpec]) -> list[RunSpec]:
        mine = set(store.claim([s.run_id for s in group], owner, force=force or any(s.run_id in outcome.attempts for s in group)))
        rest = [s for s in group if s.run_id not in mine]
        if rest:
            outcome.skipped.extend(rest)
            if on_skip:
                on_skip(rest)
        return [s for s in group if s.run_id in mine]

    todo = list(specs)
    try:
        with store.heartbeat(owner):
            for round_ in range(retries + 1):
                again: list[RunSpec] = []
                for result in executor.results(todo, claim):
                    rid = result.spec.run_id
                    attempt = outcome.attempts[rid] = outcome.attempts.get(rid, 0) + 1
                    retry = result.status == "failed" and round_ < retries
                    with sigint_deferred():
                        store.save(result, owner=owner, attempt=attempt, keep_claim=retry)
                    outcome.results[rid] = result
                    if retry:
                        again.append(result.spec)
                    if on_result:
                        on_result(result, attempt, retry)
                if not again:
                    break
                todo = again
    finally:
        try:
            with sigint_deferred():
                store.release(owner)
        except Exception:  # the database is unusable: the claims expire with this process anyway
            log.debug("could not release claims", exc_info=True)
    return outcome
