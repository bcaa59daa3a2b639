"""The `lstm-bench` command line. It owns the terminal; everything else logs.

User mistakes raise `UserError` anywhere below; `main` turns them into one line on stderr and
exit status 2, before anything is written to the results.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.errors import UserError

# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    from bench import registry
    from bench.executors import EXECUTORS

    backends, engines = registry.backend_registry.names(), registry.engine_registry.names()
    p = argparse.ArgumentParser(
        prog="lstm-bench", description="Benchmark stateful LSTMs in Keras: batch size vs accuracy and speed."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run scenarios, store results, write runs.csv and the report")
    r.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO.yaml")
    r.add_argument("--out", type=Path, help="results folder (default results/<scenario name>/)")
    r.add_argument("--force", action="store_true", help="rerun runs that are already in the results")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    r.add_argument(
        "--backend", action="append", choices=backends, help="override the scenario's backend (repeat it for several)"
    )
    r.add_argument("--engine", choices=engines, help="override the scenario's engine")
    r.add_argument(
        "--skip-missing-backends",
        action="store_true",
        help="leave out runs on backends not installed here (with a note) instead of stopping",
    )
    r.add_argument("--device", choices=("cpu", "gpu", "auto"), help="override the scenario's device")
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel workers (local default 1, ray default the cluster's CPUs); "
        "throughput under concurrency is not comparable with serial runs",
    )
    r.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where runs execute: local worker processes (default) or a Ray cluster",
    )
    r.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="join this Ray cluster (default: start a local Ray instance for this suite)",
    )
    r.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="run a failed run again up to N times within this invocation",
    )
    r.add_argument(
        "--require-gpu",
        action="store_true",
        help="exit with status 2 unless this machine has an NVIDIA GPU (instead of recording GPU runs unsupported)",
    )
    r.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="also log each run to MLflow as it finishes (URI: the tracking URI; default MLflow's)",
    )
    r.add_argument("--mlflow-experiment", default="lstm-bench", help="the MLflow experiment for --mlflow")
    _margin_argument(r)

    v = sub.add_parser("validate", help="check scenarios without running them")
    v.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO.yaml")
    v.add_argument("--expand", action="store_true", help="print the run matrix")

    sub.add_parser("datasets", help="list the built-in datasets")

    d = sub.add_parser("doctor", help="what each backend can do here: version, devices, state-carry probe, advice")
    d.add_argument("--backend", action="append", choices=backends, help="check only this backend (repeatable)")

    e = sub.add_parser("export", help="write the runs table as CSV or Parquet")
    e.add_argument("folder", type=Path, metavar="RESULTS_DIR")
    e.add_argument("--format", choices=("csv", "parquet", "mlflow"), default="csv")
    e.add_argument("--out", type=Path, help="output file (default RESULTS_DIR/runs.csv or runs.parquet)")
    e.add_argument("--tracking-uri", help="mlflow: the tracking URI (default: MLflow's, e.g. $MLFLOW_TRACKING_URI)")
    e.add_argument("--experiment", default="lstm-bench", help="mlflow: the experiment name (default lstm-bench)")

    rep = sub.add_parser("report", help="write the report (HTML, Markdown, figures) for results folders")
    rep.add_argument("folders", nargs="+", type=Path, metavar="RESULTS_DIR")
    rep.add_argument("--out", type=Path, help="report folder (default FIRST_RESULTS_DIR/report)")
    _margin_argument(rep)

    c = sub.add_parser("compare", help="compare two results folders (e.g. CPU vs GPU)")
    c.add_argument("folder_a", type=Path, metavar="DIR_A")
    c.add_argument("folder_b", type=Path, metavar="DIR_B")
    c.add_argument("--label-a", default="A")
    c.add_argument("--label-b", default="B")
    c.add_argument("--out", type=Path, help="output folder (default DIR_B/compare)")

    pr = sub.add_parser("probe", help="check that stateful training really carries state on a backend/engine")
    pr.add_argument("--backend", choices=backends, default="tensorflow")
    pr.add_argument("--engine", choices=engines, default="fit")
    return p


def _margin_argument(p: argparse.ArgumentParser) -> None:
    from bench.report.answer import MARGIN

    p.add_argument(
        "--margin",
        type=float,
        default=MARGIN,
        metavar="FRACTION",
        help=f"the recommendation's accuracy margin, a fraction of the best RMSE (default {MARGIN:g}: 2%%)",
    )


def _check_margin(margin: float) -> None:
    if not 0.0 <= margin < 1.0:
        raise UserError(f"--margin {margin:g}: give a fraction of the best RMSE from 0 to below 1, e.g. 0.02 for 2%")


def print_answer(written) -> None:  # noqa: ANN001 (bench.report.build.Written; imported lazily)
    """The report's Recommendation block on the terminal, then where the report is."""
    ans = written.answer
    out.print("[bold]Recommendation[/]")
    for line in ans.lines():
        style = "yellow" if line.lstrip().startswith("warning:") else None
        out.print(line, style=style, markup=False, soft_wrap=True)
    out.print(ans.rule, style="dim", markup=False, soft_wrap=True)
    err.print(f"report: {written.index}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USER_ERROR


# --- run -------------------------------------------------------------------------------------


class _Terminal:
    """Renders a suite's events (`bench.runner.SuiteEvents`): progress bars, problems, summary tables."""

    def __init__(self, quiet: bool, concurrent: bool) -> None:
        self.quiet = quiet
        self.concurrent = concurrent
        self.finished = 0
        self._progress: Progress | None = None
        self._task = None

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
        if result.status != "ok" and not self.quiet:
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
        if not self.quiet:
            print_answer(written)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def cmd_run(args: argparse.Namespace) -> int:
    from bench.executors import make_executor
    from bench.runner import check_installed, plan_suite, run_suite, save_interrupted, second_interrupt_exits

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.retries < 0:
        raise UserError("--retries must be 0 or more")
    _check_margin(args.margin)
    if args.ray_address and args.executor != "ray":
        raise UserError("--ray-address needs --executor ray")
    backend = args.backend[0] if args.backend and len(args.backend) == 1 else args.backend
    overrides = {k: v for k, v in (("backend", backend), ("engine", args.engine), ("device", args.device)) if v}
    plans, notes = plan_suite(args.scenarios, args.out, overrides, args.require_gpu)
    if args.executor == "local":  # Ray's nodes have installs of their own
        plans, left_out = check_installed(plans, args.skip_missing_backends)
        notes += left_out
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    executor = make_executor(
        args.executor, args.workers, args.ray_address
    )  # a missing Ray is a user error, before any write
    terminal: Any = _Terminal(args.quiet, (args.workers or 1) > 1 or args.executor == "ray")
    events = terminal
    if args.mlflow is not None:  # checked before any run: a missing MLflow or a bad store is a user error now
        from bench.mlflow_export import LiveLogger, MlflowSink

        events = LiveLogger(terminal, MlflowSink(args.mlflow or None, args.mlflow_experiment))
    # a second Ctrl-C stops at once; the database stays consistent (every save is one transaction)
    with second_interrupt_exits(EXIT_INTERRUPTED):
        try:
            outcomes = run_suite(
                plans,
                executor,
                events,
                force=args.force,
                retries=args.retries,
                report=not args.no_report,
                margin=args.margin,
            )
        except KeyboardInterrupt:
            terminal.close()
            executor.shutdown(kill=True)
            save_interrupted(plans)
            resume = f"lstm-bench run {' '.join(map(str, args.scenarios))}" + (f" --out {args.out}" if args.out else "")
            if args.executor != "local":
                resume += f" --executor {args.executor}" + (
                    f" --ray-address {args.ray_address}" if args.ray_address else ""
                )
            where = ", ".join(str(p.folder) for p in plans)
            err.print(
                f"interrupted: {terminal.finished} finished runs are saved in {where}; resume with: {resume}",
                markup=False,
                soft_wrap=True,
            )
            return EXIT_INTERRUPTED
        finally:
            terminal.close()
            executor.shutdown()
    return EXIT_FAILED_RUNS if any(o.failed for o in outcomes) else EXIT_OK


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
    mode = f"stateful/{spec.layout}" if spec.stateful else "stateless"
    where = f"{spec.backend}/{spec.engine}/{spec.device}"
    return (
        f"{spec.dataset.label} look_back={spec.look_back} batch={spec.batch_size} {mode} {where} repeat={spec.repeat}"
    )


def _summary(store) -> None:  # noqa: ANN001
    from bench.schema import schema

    runs = store.runs()
    if runs.empty:
        return
    keys = list(schema().sweep)
    shown = ("dataset", "look_back", "batch_size", "stateful", "layout", "backend", "engine", "device")
    other = [k for k in keys if k not in shown and runs[k].astype("string").nunique(dropna=False) > 1]
    ok = runs[runs.status == "ok"]
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
        "samples/s",
    ):
        table.add_column(
            col, justify="left" if col in ("dataset", "mode", "backend/engine/device", "other") else "right"
        )
    for key, g in runs.groupby(keys, dropna=False, sort=True):
        d = dict(zip(keys, key))
        good = g[g.status == "ok"]
        mode = f"stateful/{d['layout']}" if d["stateful"] else "stateless"
        problems = ", ".join(f"{n} {s}" for s, n in g.status.value_counts().items() if s != "ok")
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
            fmt(good.samples_per_sec.mean(), 0),
        )
    out.print(table)


# --- other commands --------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.runner import plan_suite
    from bench.schema import schema

    plans, notes = plan_suite(args.scenarios)
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    cols = ("run_id", *schema().sweep, "repeat", "seed")
    for plan in plans:
        out.print(f"{plan.scenario}: ok, {len(plan.specs)} runs -> {plan.folder}")
        if args.expand:
            table = Table()
            for col in cols:
                table.add_column(col)
            for spec in plan.specs:
                flat = {"run_id": spec.run_id, **spec.as_flat()}
                table.add_row(*(f"{flat[c]:g}" if isinstance(flat[c], float) else str(flat[c]) for c in cols))
            out.print(table)
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from bench.datasets import list_datasets

    table = Table(title="built-in datasets (or use dataset: {csv: FILE, column: NAME})")
    for col in ("name", "length", "parameters (defaults)", "description"):
        table.add_column(col)
    for info in list_datasets():
        params = ", ".join(f"{k}={v}" for k, v in info.defaults.items()) or "-"
        table.add_row(info.name, str(info.length) if info.length else "parameter", params, info.description)
    out.print(table)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from bench.store import export_runs

    if args.format == "mlflow":
        from bench.mlflow_export import export_to_mlflow

        counts = export_to_mlflow(args.folder, args.tracking_uri, args.experiment)
        out.print(f"mlflow experiment '{args.experiment}': " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        return EXIT_OK
    out.print(str(export_runs(args.folder, args.format, args.out)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    _check_margin(args.margin)
    # a folder without an intact results.db is refused by Store.open before anything is written
    print_answer(write_report(args.folders, args.out or args.folders[0] / "report", args.margin))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import write_comparison

    comparison = write_comparison(args.folder_a, args.folder_b, args.label_a, args.label_b, args.out)
    out.print(comparison_text(comparison), markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


def comparison_table(c) -> Table:  # noqa: ANN001 (bench.report.pairing.Comparison; imported lazily)
    """The comparison for the terminal: each batch size's median speeds, speed-up with its interval, verdict."""
    from bench.report.pairing import PER_RUN
    from bench.report.render import fmt

    unit = "samples/s" if c.basis == PER_RUN else "machine samples/s"
    t = Table(title=f"{c.label_b} vs {c.label_a}: speed-up = median {unit} {c.label_b} / {c.label_a}")
    names = ["series", "batch size", "pairs", f"{unit} {c.label_a}", f"{unit} {c.label_b}", "speed-up (interval)"]
    for n in [*names, "verdict", f"RMSE {c.label_b} - {c.label_a}"]:
        t.add_column(n, justify="left" if n in ("series", "verdict") else "right")
    for r in c.table.itertuples(index=False):
        speedup = f"{fmt(r.speedup)} ({fmt(r.speedup_low)} to {fmt(r.speedup_high)})"
        t.add_row(r.series, fmt(r.batch_size), fmt(r.pairs), fmt(r.sps_a), fmt(r.sps_b), speedup, r.verdict,
                  fmt(r.rmse_diff))  # fmt: skip
    return t


def comparison_text(c, width: int = 140) -> str:  # noqa: ANN001 (Comparison)
    """The table as plain text, then each series' crossover verdict, the warnings and the unpaired runs."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(comparison_table(c))
    verdicts = [f"{x.series}: {x.verdict}" for x in c.crossovers] or ["no paired runs: nothing to compare"]
    tail = f"{len(c.unpaired)} unpaired runs (see {c.out / 'summary.md'})" if len(c.unpaired) else "every run paired"
    basis = [f"speed-up on {c.basis}" + (f": {c.basis_note}" if c.basis_note else "")] if len(c.table) else []
    warnings = [f"warning: {w}" for w in c.warnings]
    return "\n".join([console.export_text().rstrip(), *basis, *verdicts, *warnings, tail])


def cmd_probe(args: argparse.Namespace) -> int:
    from bench.probe import probe
    from bench.worker import worker_pool

    with worker_pool(args.backend) as pool:
        result = pool.submit(probe, args.backend, args.engine).result()
    verdict = "[green]carries state[/]" if result.carries_state else "[red]does NOT carry state[/]"
    out.print(f"{args.backend}/{args.engine}: {verdict}: {result.detail}")
    if result.advice:
        out.print(f"advice: {result.advice}")
    return EXIT_OK if result.carries_state else EXIT_FAILED_RUNS


def cmd_doctor(args: argparse.Namespace) -> int:
    from bench.doctor import diagnose

    gpu, checks = diagnose(args.backend)
    out.print(f"nvidia-smi: {gpu or 'no NVIDIA GPU found'}")
    for check in checks:
        if not check.version:
            out.print(f"[bold]{check.backend}[/]: not installed")
        else:
            seen = ", ".join(check.gpus) if check.gpus else "no GPU"
            out.print(f"[bold]{check.backend}[/] {check.version}: sees cpu and {seen}")
        for line in check.probes:
            verdict = {True: "[green]carries state[/]", False: "[red]does NOT carry state[/]", None: "[red]failed[/]"}
            out.print(f"  {line.engine} on {line.device}: {verdict[line.carries_state]} ({escape(line.detail)})")
        for advice in check.advice:
            out.print(f"  [yellow]advice:[/] {escape(advice)}")
    return EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "datasets": cmd_datasets,
    "export": cmd_export,
    "report": cmd_report,
    "compare": cmd_compare,
    "probe": cmd_probe,
    "doctor": cmd_doctor,
}
