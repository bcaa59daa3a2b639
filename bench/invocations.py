"""What a results folder remembers of the `run` invocations that wrote into it.

Each invocation's plan is recorded in the folder before its first run: the command that resumes it
(every override included), the overrides, the scenario files' content, the data checks, and a
digest of the planned run ids. A later `run` into the folder must plan the same runs as one of
them, so following a printed resume command finishes that matrix and nothing else; another plan
(another engine, backend, device, dataset file or scenario content) is refused in one line unless
`--add` (keep both) or `--force` (rerun) says it is meant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from bench.datasets.checks import DataCheck
from bench.errors import UserError
from bench.runspec import RunSpec


@dataclass(frozen=True)
class Invocation:
    """How `run` was called: the command that resumes it, the scenario keys it overrode, and whether
    it may add its runs to a folder that holds another plan's."""

    command: str
    overrides: dict[str, Any] = field(default_factory=dict)
    add: bool = False


def runs_digest(run_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(run_ids))).encode()).hexdigest()[:16]


def plan_record(
    invocation: Invocation, scenarios: Iterable[Path], specs: list[RunSpec], checks: list[DataCheck]
) -> dict[str, Any]:
    """The record of one invocation's plan for one results folder."""
    return {
        "command": invocation.command,
        "overrides": invocation.overrides,
        "scenarios": {str(Path(p).resolve()): hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for p in scenarios},
        "datasets": sorted({s.dataset.label + " " + s.dataset.identity_json for s in specs}),
        "runs": runs_digest(s.run_id for s in specs),
        "n_runs": len({s.run_id for s in specs}),
        "data_checks": [asdict(c) for c in checks],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def check_continues(
    folder: Path,
    new: dict[str, Any],
    planned: set[str],
    held: list[dict[str, Any]],
    done_ids: set[str],
    invocation: Invocation,
    force: bool,
) -> None:
    """Refuse a plan that continues none of the plans the folder holds (see the module docstring).

    A folder written before plans were recorded holds only its runs: a plan continues it when one of
    the two run sets contains the other."""
    if invocation.add or force or not done_ids and not held:
        return
    if any(h.get("runs") == new["runs"] for h in held):
        return
    if not held:
        if planned <= done_ids or done_ids <= planned:
            return
        differs = f"its {len(done_ids)} runs are not the {len(planned)} this plan names"
        resume = ""
    else:
        last = held[-1]
        differs = describe_difference(last, new)
        resume = f"resume that one with: {last['command']}; "
    raise UserError(
        f"{folder}: holds the runs of another plan ({differs}); {resume}add this plan's runs to it with --add, "
        "rerun with --force, or choose another folder with --out"
    )


def describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What separates two plans, in words: the overrides, the scenario content, the data, or else the runs."""
    parts = []
    for key in sorted({*old["overrides"], *new["overrides"]}):
        a, b = old["overrides"].get(key), new["overrides"].get(key)
        if a != b:
            parts.append(f"{key} {_shown(a)} there, {_shown(b)} here")
    for path in sorted({*old["scenarios"], *new["scenarios"]}):
        if path in old["scenarios"] and path in new["scenarios"] and old["scenarios"][path] != new["scenarios"][path]:
            parts.append(f"{Path(path).name} has changed since")
    if old["datasets"] != new["datasets"] and not parts:
        parts.append("other data (a dataset file changed?)")
    return "; ".join(parts) or f"{old['n_runs']} runs there, {new['n_runs']} here"


def _shown(value: Any) -> str:
    if value is None:
        return "from the scenario"
    return ",".join(value) if isinstance(value, list) else str(value)


def merged(held: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The folder's plans after this invocation: this one last, replacing an earlier record of the same plan."""
    return [*(h for h in held if h.get("runs") != new["runs"]), new]


def data_checks(held: list[dict[str, Any]]) -> list[DataCheck]:
    """The data checks of every plan the folder holds, each once."""
    seen: dict[tuple[str, str, str], DataCheck] = {}
    for h in held:
        for c in h.get("data_checks", []):
            check = DataCheck(**c)
            seen.setdefault((check.dataset, check.code, check.message), check)
    return list(seen.values())
