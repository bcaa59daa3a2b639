"""Executors: where work groups run. One small interface, several implementations.

- `local` (`bench.executors.local.LocalExecutor`): spawned worker processes on this machine.
- `ray` (`bench.executors.raycluster.RayExecutor`): one Ray actor per worker slot, on a local
  Ray instance or an existing cluster (`--ray-address`).

An executor yields `RunResult`s as they finish; the driver (`bench.runner.drive`) alone writes
them. Before a group is dispatched the executor asks the driver's `claim` callback which of its
specs it may run (another process may hold them); it must never raise for a failed run.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Protocol

from bench.errors import UserError
from bench.results import RunResult
from bench.specs import RunSpec

#: Given a group about to be dispatched, the specs of it this executor may run now.
Claim = Callable[[list[RunSpec]], list[RunSpec]]

EXECUTORS = ("local", "ray")

#: Test hook (tests only): `LSTM_BENCH_TEST_CRASH=<run_id>[,<run_id>...][:<marker file>]` makes the worker
#: process that starts one of these runs kill itself with SIGKILL, as an OOM kill would. With a marker
#: file it crashes only while the file does not exist (it creates it first), so a retry succeeds.
CRASH_HOOK_ENV = "LSTM_BENCH_TEST_CRASH"


class Executor(Protocol):
    def results(self, specs: list[RunSpec], claim: Claim | None = None) -> Iterator[RunResult]:
        """Run `specs`, yielding each result as it finishes (order not guaranteed)."""
        ...

    def shutdown(self, kill: bool = False) -> None:
        """Stop the workers (`kill`: at once, abandoning runs in flight)."""
        ...


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

        return RayExecutor(address=ray_address, workers=workers)
    raise UserError(f"unknown executor '{name}'; use one of: {', '.join(EXECUTORS)}")


def crash_hook(specs: list[RunSpec]) -> None:
    """The test hook above; called in the worker process just before it runs `specs`."""
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
    """Units of work for the workers: repeats of one configuration go together on the scan engine
    (trained as one vmapped program), every other spec alone."""
    groups: dict[object, list[RunSpec]] = {}
    for spec in specs:
        key = spec.config_key if spec.engine == "scan" else spec.run_id
        groups.setdefault(key, []).append(spec)
    return [g[i : i + max_group] for g in groups.values() for i in range(0, len(g), max_group)]


def exit_cause(exc: BaseException) -> str:
    """One line (at most 300 characters) saying why a worker went away."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def failed_result(spec: RunSpec, error: str, concurrency: int, status: str = "failed") -> RunResult:
    """The result of a run whose worker could not report one itself."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return RunResult(spec, status, error=error, started_at=now, finished_at=now, concurrency=concurrency)  # type: ignore[arg-type]
