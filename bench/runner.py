"""Running a suite: scenarios in, committed results and reports out.

`plan_suite` validates the scenarios and expands their runs (nothing is written); `run_suite` opens
every results database (checking or migrating it) before any training, then runs each scenario's
pending runs through `drive` and writes runs.csv and the report, telling an observer (`SuiteEvents`,
the CLI's terminal) what happens. `drive` claims runs in the store just before they are dispatched
(so two suites on one results folder never run a configuration twice), commits each result in one
transaction with Ctrl-C (and SIGTERM) deferred, and retries failed runs. Executors (`bench.executors`) only run
work and stream results.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Callable, Iterable, Iterator

from bench import registry
from bench.claims import Owner
from bench.datasets.checks import DataCheck
from bench.errors import UserError
from bench.executors import Executor
from bench.invocations import Invocation, check_continues, merged, plan_record
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.store import DB_NAME, Store, export_runs
from bench.vocabulary import FAILED

if TYPE_CHECKING:
    from bench.scenario import ScenarioFile
    from bench.suite import SuiteFile

log = logging.getLogger(__name__)


def pending(specs: Iterable[RunSpec], done_ids: set[str], force: bool = False) -> list[RunSpec]:
    """The specs still to run, grouped by backend and device so workers are reused."""
    todo = [s for s in specs if force or s.run_id not in done_ids]
    return sorted(todo, key=lambda s: (s.backend, s.device))


class Terminated(KeyboardInterrupt):
    """SIGTERM to the driver (`kill`, a scheduler's stop), raised where Ctrl-C raises KeyboardInterrupt,
    so it stops the suite the same way: finished runs kept, workers stopped, a resume command printed."""


def _held(signum: int) -> bool:
    """Whether `sigint_deferred` holds `signum` back: Ctrl-C always, SIGTERM where a Python handler
    (`second_interrupt_exits`'s) takes it (otherwise it ends the process at once, which a commit survives)."""
    return signum == signal.SIGINT or callable(signal.getsignal(signum))


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (and a handled SIGTERM) while the block runs (a store transaction); it is
    raised right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: caught.append(signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
        if _held(signum)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # delivered as if it arrived now: to the handler (`second_interrupt_exits` counts it)
            signum, handler = caught[0], previous[caught[0]]
            if callable(handler):
                handler(signum, None)
            elif signum == signal.SIGINT and handler == signal.SIG_DFL:
                raise KeyboardInterrupt


@contextmanager
def second_interrupt_exits(code: int, term_code: int = 128 + signal.SIGTERM) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt once and SIGTERM `Terminated` (a KeyboardInterrupt) once; a
    second of either ends the process at once with `code` (Ctrl-C) or `term_code` (SIGTERM), whenever
    it comes. Raising it again while the first still unwinds can land inside a lock's release and
    surface as an unrelated error with a traceback. An ignored Ctrl-C (a job a script started in the
    background) stays ignored, and so does a SIGTERM that is ignored or handled already."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    codes = {}
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        codes[signal.SIGINT] = code
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        codes[signal.SIGTERM] = term_code

    def first(signum: int, frame: object) -> None:
        for sig, exit_code in codes.items():
            signal.signal(sig, lambda *_, exit_code=exit_code: os._exit(exit_code))
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {sig: signal.signal(sig, first) for sig in codes}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Outcome:
    """What `drive` did: the final result of each run it executed, and what it left to others."""

    results: dict[str, RunResult] = field(default_factory=dict)
    skipped: list[RunSpec] = field(default_factory=list)  # claimed by another live process, or finished by it
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results.values() if r.status == FAILED]


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
        again = any(s.run_id in outcome.attempts for s in group)
        mine = set(store.claims.claim([s.run_id for s in group], owner, force=force or again))
        rest = [s for s in group if s.run_id not in mine]
        if rest:
            outcome.skipped.extend(rest)
            if on_skip:
                on_skip(rest)
        return [s for s in group if s.run_id in mine]

    todo = list(specs)
    try:
        with store.claims.heartbeat(owner):
            for round_ in range(retries + 1):
                again: list[RunSpec] = []
                for result in executor.results(todo, claim):
                    rid = result.spec.run_id
                    attempt = outcome.attempts[rid] = outcome.attempts.get(rid, 0) + 1
                    retry = result.status == FAILED and round_ < retries
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
                store.claims.release(owner)
        except Exception:  # the database is unusable: the claims expire with this process anyway
            log.debug("could not release claims", exc_info=True)
    return outcome


# --- a suite of scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One scenario's runs, the results folder they go to, and the warnings about its data."""

    scenario: Path
    folder: Path
    specs: list[RunSpec]
    checks: list[DataCheck] = field(default_factory=list)
    explicit_folder: bool = False  # named with --out (its parent must exist)
    suite: SuiteFile | None = None  # the suite file this scenario is a workload of (`bench.suite`)


def plan_suite(
    paths: list[Path],
    out_dir: Path | None = None,
    overrides: dict[str, str] | None = None,
    require_gpu: bool = False,
    workloads: tuple[str, ...] = (),
) -> tuple[list[Plan], list[str]]:
    """Validate every scenario and expand its runs, writing nothing; returns the plans and notes for the user.

    `overrides` replace scenario keys (the CLI's --backend and --engine); `workloads` picks workloads of the
    suite files by name (the CLI's --workload)."""
    from bench.environment import gpu_present
    from bench.models.check import check_models
    from bench.scenario import load_scenario
    from bench.specs import expand_checked
    from bench.suite import is_suite, load_suite
    from bench.worker import gpu_backends

    has_gpu = gpu_present()
    if require_gpu and not has_gpu:
        raise UserError(
            "--require-gpu: nvidia-smi finds no NVIDIA GPU on this machine; run on a GPU machine or drop --require-gpu"
        )
    files: list[tuple[ScenarioFile, Path | None, SuiteFile | None]] = []  # (scenario, its folder, its suite)
    suites = {p for p in paths if is_suite(p)}
    if workloads and len(suites) != 1:
        raise UserError(f"--workload {workloads[0]} picks workloads of one suite file; give one suite file with it")
    for path in paths:
        if path in suites:
            suite = load_suite(path, workloads)
            folder = suite.folder(out_dir)
            files += [(w.scenario, folder / w.name, suite) for w in suite.workloads]
        else:
            files.append((load_scenario(path), out_dir, None))
    if overrides:
        files = [(sf.model_copy(update={"scenario": sf.scenario.model_copy(update=overrides)}), f, s)
                 for sf, f, s in files]  # fmt: skip
    files_only = [sf for sf, _, _ in files]
    auto = {b for sf in files_only if "auto" in sf.scenario.axis("device") for b in sf.scenario.axis("backend")}
    on_gpu = gpu_backends(auto) if auto else frozenset()
    notes = []
    if auto - on_gpu and has_gpu:
        notes.append(
            f"device: auto runs on the CPU for {', '.join(sorted(auto - on_gpu))}: "
            "that backend sees no GPU here (a CPU-only build?)"
        )
    plans = [
        Plan(sf.path, folder or Path("results") / sf.scenario.name, *expand_checked(sf, on_gpu),
             folder is not None and suite is None, suite)
        for sf, folder, suite in files
    ]  # fmt: skip
    notes += check_models([s for plan in plans for s in plan.specs])
    return plans, notes


def check_installed(plans: list[Plan], leave_out: bool = False) -> tuple[list[Plan], list[str]]:
    """Refuse, before anything is written, runs on a backend this environment lacks (local workers
    would die importing it, run after run), or with `leave_out` drop them; returns the plans and a
    note per backend left out."""
    named = {s.backend for plan in plans for s in plan.specs}
    missing = sorted(b for b in named if not registry.backend(b).version())
    if not missing:
        return plans, []
    if not leave_out or set(missing) == named:
        fixes = "; ".join(registry.backend(b).how_to_install() for b in missing)
        others = " ".join(f"--backend {b}" for b in sorted(named - set(missing)))
        rest = f", or run the other backends alone ({others}) or with --skip-missing-backends" if others else ""
        raise UserError(f"backend {', '.join(missing)} is not installed here: {fixes}{rest}")
    notes = [
        f"left out the runs on {b}, which is not installed here ({registry.backend(b).how_to_install()})"
        for b in missing
    ]
    return [replace(plan, specs=[s for s in plan.specs if s.backend not in missing]) for plan in plans], notes


def check_writable(folder: Path, explicit: bool = False) -> None:
    """Fail before training, with the real cause, when the results folder cannot take the results.

    An `explicit` folder (`--out`) must have an existing parent: a missing one is more often a typo
    than a wish for new folders. The default `results/<name>/` is created with its parents."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder}: is a file, not a folder; name a folder (new or a results folder) with --out")
    probe_dir = folder
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise UserError(
            f"--out {folder}: {probe_dir} is a file, so no folder can be made under it; choose another --out"
        )
    if explicit and probe_dir != folder and probe_dir != folder.parent:
        raise UserError(
            f"--out {folder}: its parent folder {folder.parent} does not exist; create it (mkdir -p) or fix the path"
        )
    if _read_only_fs(probe_dir):
        raise UserError(f"{folder}: {probe_dir} is on a read-only file system; choose another folder with --out")
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise UserError(
            f"{folder}: results folder is not writable ({probe_dir} denies this user); fix its permissions "
            "or choose another folder with --out"
        )
    free = shutil.disk_usage(probe_dir).free
    if free < 20 * 2**20:
        raise UserError(
            f"{folder}: the disk is full ({free // 2**20} MiB free, 20 MiB needed); free some space or choose "
            "another folder with --out"
        )


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): permissions are checked next anyway
        return False


class SuiteEvents(Protocol):
    """What `run_suite` tells its observer (the CLI renders it)."""

    def scenario_started(self, plan: Plan, done: int, todo: int) -> None: ...
    def result(self, result: RunResult, attempt: int, retry: bool) -> None: ...
    def skipped(self, specs: list[RunSpec]) -> None: ...
    def scenario_finished(self, plan: Plan, store: Store) -> None: ...
    def report_written(self, written: Any) -> None: ...  # bench.report.build.Written


def run_suite(
    plans: list[Plan],
    executor: Executor,
    events: SuiteEvents,
    invocation: Invocation | None = None,
    *,
    force: bool = False,
    retries: int = 0,
    report: bool = True,
    margin: float | None = None,
) -> list[Outcome]:
    """Run every plan's pending runs (all with `force`), then write its runs.csv and (with `report`) its report.

    Every results database is opened first, so a damaged or newer one, or one holding another plan's
    runs (`bench.invocations`), stops the suite before any training, and an older one is migrated
    before anything else is written to it. Each folder then records this invocation's plan."""
    for plan in plans:  # refuse a damaged or newer database before writing anything anywhere
        check_writable(plan.folder, plan.explicit_folder)
        Store.check(plan.folder)
    records = folder_records(plans, invocation, force) if invocation is not None else {}
    outcomes = []
    with ExitStack() as stack:
        stores = [stack.enter_context(Store.open(plan.folder)) for plan in plans]
        for plan, store in zip(plans, stores):  # before any run, so an interrupted suite is remembered too
            if plan.folder.resolve() in records:
                store.set_invocation({"plans": records.pop(plan.folder.resolve())})
        for plan, store in zip(plans, stores):
            done = store.done_ids()
            todo = pending(plan.specs, done, force)
            events.scenario_started(plan, sum(s.run_id in done for s in plan.specs), len(todo))
            outcomes.append(
                drive(
                    executor, store, todo, retries=retries, force=force, on_result=events.result, on_skip=events.skipped
                )
            )
            export_runs(plan.folder)
            events.scenario_finished(plan, store)
            if report:
                from bench.report import write_report

                kw = {} if margin is None else {"margin": margin}
                events.report_written(write_report([plan.folder], plan.folder / "report", **kw))
    return outcomes


def folder_records(plans: list[Plan], invocation: Invocation, force: bool) -> dict[Path, list[dict[str, Any]]]:
    """Each results folder's recorded plans after this invocation (by resolved path); raises `UserError`
    when a folder holds another plan's runs and neither `--add` nor `--force` was given."""
    by_folder: dict[Path, list[Plan]] = {}
    for plan in plans:
        by_folder.setdefault(plan.folder.resolve(), []).append(plan)
    records = {}
    for folder, group in by_folder.items():
        specs = [s for p in group for s in p.specs]
        new = plan_record(invocation, [p.scenario for p in group], specs, [c for p in group for c in p.checks])
        held, done = folder_plans(group[0].folder)
        check_continues(group[0].folder, new, {s.run_id for s in specs}, held, done, invocation, force)
        records[folder] = merged(held, new)
    return records


def folder_plans(folder: Path) -> tuple[list[dict[str, Any]], set[str]]:
    """The plans a results folder has recorded and the runs it has done (none for a new folder)."""
    if Store.check(folder) is None:
        return [], set()
    with closing(Store.open(folder, create=False)) as store:
        return (store.invocation() or {}).get("plans", []), store.done_ids()


def save_interrupted(plans: list[Plan]) -> None:
    """After Ctrl-C: bring runs.csv up to date where the database changed since it was written
    (finished runs are committed; folders this invocation never reached are left alone)."""
    for plan in plans:
        db, csv = plan.folder / DB_NAME, plan.folder / "runs.csv"
        if db.is_file() and (not csv.is_file() or _changed_since(db, csv.stat().st_mtime)):
            export_runs(plan.folder)


def _changed_since(db: Path, when: float) -> bool:
    return any(p.stat().st_mtime > when for p in (db, db.with_name(db.name + "-wal")) if p.exists())
