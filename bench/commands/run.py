"""`lstm-bench run`: run scenarios, store their results, write runs.csv and the report.

The terminal shows a progress bar per scenario, problems as they happen, a summary table and the
Recommendation. After Ctrl-C (or SIGTERM) it prints the command that resumes exactly this invocation.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.commands import Command
from bench.commands.console import (
    print_data_checks,
    EXIT_FAILED_RUNS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    check_margin,
    err,
    margin_argument,
    out,
    print_answer,
    print_suite,
)
from bench.errors import UserError
from bench.vocabulary import OK, mode_label

#: Options the resume command leaves out: --force would rerun what this invocation finished, and --add
#: is not needed once the folder has recorded this plan (before the first run).
NOT_RESUMED = ("--force", "--add")


def arguments(p: argparse.ArgumentParser) -> None:
    from bench import registry
    from bench.executors import EXECUTORS

    p.add_argument(
        "scenarios",
        nargs="+",
        type=Path,
        metavar="SCENARIO.yaml",
        help="scenario files, or suite files (a suite: key and workloads; docs/suites.md)",
    )
    p.add_argument(
        "--workload",
        action="append",
        metavar="NAME",
        help="run only this workload of the suite file (repeat it for several)",
    )
    p.add_argument("--out", type=Path, help="results folder (default results/<scenario name>/)")
    p.add_argument("--force", action="store_true", help="rerun runs that are already in the results")
    p.add_argument(
        "--add",
        action="store_true",
        help="add this plan's runs to a results folder that holds the runs of another plan",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument(
        "--backend",
        action="append",
        choices=registry.backend_registry.choices(),
        metavar="BACKEND",
        help="override the scenario's backend (repeat it for several)",
    )
    p.add_argument(
        "--engine", choices=registry.engine_registry.choices(), metavar="ENGINE", help="override the scenario's engine"
    )
    p.add_argument(
        "--skip-missing-backends",
        action="store_true",
        help="leave out runs on backends not installed here (with a note) instead of stopping",
    )
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), help="override the scenario's device")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel workers (local default 1, ray default the cluster's CPUs); "
        "throughput under concurrency is not comparable with serial runs",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where runs execute: local worker processes (default) or a Ray cluster",
    )
    p.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="join this Ray cluster (default: start a local Ray instance for this suite)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="run a failed run again up to N times within this invocation",
    )
    p.add_argument(
        "--require-gpu",
        action="store_true",
        help="exit with status 2 unless this machine has an NVIDIA GPU (instead of recording GPU runs unsupported)",
    )
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="also log each run to MLflow as it finishes (URI: the tracking URI; default MLflow's)",
    )
    p.add_argument("--mlflow-experiment", default="lstm-bench", help="the MLflow experiment for --mlflow")
    margin_argument(p)


def resume_command(argv: Sequence[str]) -> str:
    """The command line that resumes an invocation: the same arguments, overrides and all, but `NOT_RESUMED`."""
    return shlex.join(["lstm-bench", *(a for a in argv if a not in NOT_RESUMED)])


def handle(args: argparse.Namespace) -> int:
    from bench.executors import make_executor
    from bench.invocations import Invocation
    from bench.report.suite import write_suite_report
    from bench.runner import Terminated, check_installed, plan_suite, run_suite, save_interrupted
    from bench.runner import second_interrupt_exits
    from bench.suite import write_marker

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.retries < 0:
        raise UserError("--retries must be 0 or more")
    check_margin(args.margin)
    if args.ray_address and args.executor != "ray":
        raise UserError("--ray-address needs --executor ray")
    backend = args.backend[0] if args.backend and len(args.backend) == 1 else args.backend
    overrides = {k: v for k, v in (("backend", backend), ("engine", args.engine), ("device", args.device)) if v}
    plans, notes = plan_suite(args.scenarios, args.out, overrides, args.require_gpu, tuple(args.workload or ()))
    if args.executor == "local":  # Ray's nodes have installs of their own
        plans, left_out = check_installed(plans, args.skip_missing_backends)
        notes += left_out
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    print_data_checks(plans)
    resume = resume_command(args.argv)
    invocation = Invocation(resume, overrides, args.add)
    executor = make_executor(args.executor, args.workers, args.ray_address)  # a missing Ray is a user error now
    terminal: Any = _Terminal(args.quiet, (args.workers or 1) > 1 or args.executor == "ray")
    events = terminal
    if args.mlflow is not None:  # checked before any run: a missing MLflow or a bad store is a user error now
        from bench.mlflow_export import LiveLogger, MlflowSink

        events = LiveLogger(terminal, MlflowSink(args.mlflow or None, args.mlflow_experiment))
    suites = {p.folder.parent: p.suite for p in plans if p.suite is not None}  # suite folder -> its suite
    for folder, suite in suites.items():
        write_marker(suite, folder)
    # SIGTERM stops like Ctrl-C; a second one stops at once; the database stays consistent (every
    # save is one transaction)
    with second_interrupt_exits(EXIT_INTERRUPTED, EXIT_TERMINATED):
        try:
            outcomes = run_suite(
                plans,
                executor,
                events,
                invocation,
                force=args.force,
                retries=args.retries,
                report=not args.no_report,
                margin=args.margin,
            )
        except KeyboardInterrupt as stop:
            terminal.close()
            executor.shutdown(kill=True)
            save_interrupted(plans)
            where = ", ".join(str(p.folder) for p in plans)
            how = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
            err.print(
                f"{how}: {terminal.finished} finished runs are saved in {where}; resume with: {resume}",
                markup=False,
                soft_wrap=True,
            )
            return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
        finally:
            terminal.close()
            executor.shutdown()
    if not args.no_report:
        for folder in suites:
            print_suite(write_suite_report(folder, args.margin, terminal.analysed))
    return EXIT_FAILED_RUNS if any(o.failed for o in outcomes) else EXIT_OK


class _Terminal:
    """Renders a suite's events (`bench.runner.SuiteEvents`): progress bars, problems, summary tables."""

    def __init__(self, quiet: bool, concurrent: bool) -> None:
        self.quiet = quiet
        self.concurrent = concurrent
        self.finished = 0
        self._progress: Progress | None = None
        self._task = None
        self.analysed: dict[Path, Any] = {}  # results folder -> the analysis its report was written from

    def scenario_started(self, plan, done: int, todo: int) -> None:  # noqa: ANN001 (Plan; imported lazily)
        if not self.quiet:
            forced = " (--force)" if todo > len(plan.specs) - done else ""
            err.print(
                f"[bold]{plan.scenario}[/]: {len(plan.specs)} runs, {done} already done, {todo} to run{forced}"
                f" -> {plan.folder}"
            )
            if self.concurrent and todo > 1:
                err.print(
                    "[yellow]note:[/] runs share the machine; "
                    "throughput measured under concurrency is not comparable with serial runs"
                )
        self._progress = _progress(self.quiet)
        self._progress.start()
        self._task = self._progress.add_task("runs", total=todo)

    def result(self, result, attempt: int, retry: bool) -> None:  # noqa: ANN001
        assert self._progress is not None
        if retry:
            self._progress.console.print(
                f"  failed (attempt {attempt}, retrying): {_describe(result.spec)}: {result.error}", markup=False
            )
            return
        self.finished += 1
        self._progress.advance(self._task)
        if result.status != OK and not self.quiet:
            self._progress.console.print(f"  {result.status}: {_describe(result.spec)}: {result.error}", markup=False)

    def skipped(self, specs) -> None:  # noqa: ANN001
        assert self._progress is not None
        self._progress.advance(self._task, len(specs))
        if not self.quiet:
            self._progress.console.print(
                f"  skipped {len(specs)} run(s) another lstm-bench process is running or has finished", markup=False
            )

    def scenario_finished(self, plan, store) -> None:  # noqa: ANN001
        self.close()
        if not self.quiet:
            _summary(store)

    def report_written(self, written) -> None:  # noqa: ANN001 (bench.report.build.Written)
        # by results folder (each report is written into its folder's report/), for the suite's report
        self.analysed[written.index.parent.parent.resolve()] = written.analysis
        if not self.quiet:
            print_answer(written)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )


def _describe(spec) -> str:  # noqa: ANN001 (RunSpec; imported lazily)
    mode = mode_label(spec.stateful, spec.layout)
    where = f"{spec.backend}/{spec.engine}/{spec.device}"
    return (
        f"{spec.dataset.label} look_back={spec.look_back} batch={spec.batch_size} {mode} {where} repeat={spec.repeat}"
    )


def _summary(store) -> None:  # noqa: ANN001
    from bench.report.stats import THROUGHPUT, speed_interval
    from bench.schema import schema

    runs = store.runs()
    if runs.empty:
        return
    keys = list(schema().sweep)
    shown = ("dataset", "look_back", "batch_size", "stateful", "layout", "backend", "engine", "device")
    other = [k for k in keys if k not in shown and runs[k].astype("string").nunique(dropna=False) > 1]
    ok = runs[runs.status == OK]
    table = Table(title=f"{store.path.parent}: {len(ok)} ok of {len(runs)} runs")
    for col in (
        "dataset",
        "look_back",
        "batch",
        "mode",
        "backend/engine/device",
        *(["other"] if other else []),
        "n",
        "test RMSE",
        "persistence",
        "skill",
        THROUGHPUT,
    ):
        table.add_column(
            col, justify="left" if col in ("dataset", "mode", "backend/engine/device", "other") else "right"
        )
    for key, g in runs.groupby(keys, dropna=False, sort=True):
        d = dict(zip(keys, key))
        good = g[g.status == OK]
        mode = mode_label(d["stateful"], d["layout"])
        problems = ", ".join(f"{n} {s}" for s, n in g.status.value_counts().items() if s != OK)
        n = f"{len(good)}" + (f" (+{problems})" if problems else "")
        fmt = lambda x, p=2: "-" if x != x else f"{x:,.{p}f}"  # noqa: E731 (NaN-safe)
        table.add_row(
            str(d["dataset"]),
            str(d["look_back"]),
            str(d["batch_size"]),
            mode,
            f"{d['backend']}/{d['engine']}/{d['device']}",
            *([", ".join(f"{k}={d[k]}" for k in other)] if other else []),
            n,
            fmt(good.test_rmse.mean()),
            fmt(good.persistence_rmse.mean()),
            fmt(good.skill.mean(), 3),
            fmt(speed_interval(good).value, 0),
        )
    out.print(table)


COMMAND = Command("run", "run scenarios, store results, write runs.csv and the report", arguments, handle)
