"""The `lstm-bench` command line. It owns the terminal; everything else logs.

User mistakes raise `UserError` anywhere below; `main` turns them into one line on stderr and
exit status 2, before anything is written to the results.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from contextlib import closing
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.errors import UserError

# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lstm-bench", description="Benchmark stateful LSTMs in Keras: batch size vs accuracy and speed.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run scenarios, store results, write runs.csv and the report")
    r.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO.yaml")
    r.add_argument("--out", type=Path, help="results folder (default results/<scenario name>/)")
    r.add_argument("--force", action="store_true", help="rerun runs that are already in the results")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    r.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="override the scenario's backend")
    r.add_argument("--engine", choices=("fit", "scan"), help="override the scenario's engine")
    r.add_argument("--workers", type=int, default=None,
                   help="parallel workers (local default 1, ray default the cluster's CPUs); throughput under concurrency is not comparable with serial runs")
    r.add_argument("--executor", choices=("local", "ray"), default="local", help="where runs execute: local worker processes (default) or a Ray cluster")
    r.add_argument("--ray-address", metavar="HOST:PORT", help="join this Ray cluster (default: start a local Ray instance for this suite)")
    r.add_argument("--retries", type=int, default=0, metavar="N", help="run a failed run again up to N times within this invocation")
    r.add_argument("--require-gpu", action="store_true", help="exit with status 2 unless this machine has an NVIDIA GPU (instead of recording GPU runs unsupported)")

    v = sub.add_parser("validate", help="check scenarios without running them")
    v.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO.yaml")
    v.add_argument("--expand", action="store_true", help="print the run matrix")

    sub.add_parser("datasets", help="list the built-in datasets")

    e = sub.add_parser("export", help="write the runs table as CSV or Parquet")
    e.add_argument("folder", type=Path, metavar="RESULTS_DIR")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--out", type=Path, help="output file (default RESULTS_DIR/runs.csv or runs.parquet)")

    rep = sub.add_parser("report", help="write the report (HTML, Markdown, figures) for results folders")
    rep.add_argument("folders", nargs="+", type=Path, metavar="RESULTS_DIR")
    rep.add_argument("--out", type=Path, help="report folder (default FIRST_RESULTS_DIR/report)")

    c = sub.add_parser("compare", help="compare two results folders (e.g. CPU vs GPU)")
    c.add_argument("folder_a", type=Path, metavar="DIR_A")
    c.add_argument("folder_b", type=Path, metavar="DIR_B")
    c.add_argument("--label-a", default="A")
    c.add_argument("--label-b", default="B")
    c.add_argument("--out", type=Path, help="output folder (default DIR_B/compare)")

    pr = sub.add_parser("probe", help="check that stateful training really carries state on a backend/engine")
    pr.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default="tensorflow")
    pr.add_argument("--engine", choices=("fit", "scan"), default="fit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USER_ERROR


# --- run -------------------------------------------------------------------------------------


def _plan(paths: list[Path], out_dir: Path | None, backend: str | None, engine: str | None, require_gpu: bool = False) -> list[tuple[Path, list]]:
    """Validate every scenario and expand its runs; nothing is written."""
    from bench.environment import gpu_present
    from bench.scenario import load_scenario
    from bench.specs import expand
    from bench.worker import gpu_backends

    has_gpu = gpu_present()
    if require_gpu and not has_gpu:
        raise UserError("--require-gpu: nvidia-smi finds no NVIDIA GPU on this machine; run on a GPU machine or drop --require-gpu")
    overrides = {k: v for k, v in (("backend", backend), ("engine", engine)) if v}
    files = []
    for path in paths:
        sf = load_scenario(path)
        if overrides:
            sf = sf.model_copy(update={"scenario": sf.scenario.model_copy(update=overrides)})
        files.append(sf)
    auto = {b for sf in files if "auto" in sf.scenario.axis("device") for b in sf.scenario.axis("backend")}
    on_gpu = gpu_backends(auto) if auto else frozenset()
    if auto - on_gpu and has_gpu:
        err.print(f"[yellow]note:[/] device: auto runs on the CPU for {', '.join(sorted(auto - on_gpu))}: "
                  "that backend sees no GPU here (a CPU-only build?)")
    return [(out_dir if out_dir else Path("results") / sf.scenario.name, expand(sf, on_gpu)) for sf in files]


def _check_writable(folder: Path) -> None:
    """Fail before training when the results folder cannot take the results."""
    probe_dir = folder
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: results folder is not writable; choose another with --out or fix its permissions")
    free = shutil.disk_usage(probe_dir).free
    if free < 20 * 2**20:
        raise UserError(f"{folder}: only {free // 2**20} MiB free on its disk; free some space or choose another folder with --out")


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from bench.executors import make_executor
    from bench.runner import drive, pending
    from bench.store import Store, export_runs

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.retries < 0:
        raise UserError("--retries must be 0 or more")
    if args.ray_address and args.executor != "ray":
        raise UserError("--ray-address needs --executor ray")
    plans = _plan(args.scenarios, args.out, args.backend, args.engine, args.require_gpu)
    for folder, _ in plans:
        _check_writable(folder)
    executor = make_executor(args.executor, args.workers, args.ray_address)  # a missing Ray is a user error, before any write
    concurrent = (args.workers or 1) > 1 or args.executor == "ray"

    any_failed = False
    finished = 0
    try:
        for (folder, specs), path in zip(plans, args.scenarios):
            with closing(Store.open(folder)) as store:
                done = store.done_ids()
                todo = pending(specs, done, args.force)
                already = sum(s.run_id in done for s in specs)
                if not args.quiet:
                    forced = " (--force)" if args.force and already else ""
                    err.print(f"[bold]{path}[/]: {len(specs)} runs, {already} already done, {len(todo)} to run{forced} -> {folder}")
                    if concurrent and len(todo) > 1:
                        err.print("[yellow]note:[/] runs share the machine; throughput measured under concurrency is not comparable with serial runs")
                with _progress(args.quiet) as progress:
                    task = progress.add_task("runs", total=len(todo))

                    def on_result(result, attempt, retry, progress=progress, task=task):  # noqa: ANN001
                        nonlocal finished
                        if retry:
                            progress.console.print(f"  failed (attempt {attempt}, retrying): {_describe(result.spec)}: {result.error}", markup=False)
                            return
                        finished += 1
                        progress.advance(task)
                        if result.status != "ok" and not args.quiet:
                            progress.console.print(f"  {result.status}: {_describe(result.spec)}: {result.error}", markup=False)

                    def on_skip(skipped, progress=progress, task=task):  # noqa: ANN001
                        progress.advance(task, len(skipped))
                        if not args.quiet:
                            progress.console.print(f"  skipped {len(skipped)} run(s) another lstm-bench process is running or has finished", markup=False)

                    outcome = drive(executor, store, todo, retries=args.retries, force=args.force, on_result=on_result, on_skip=on_skip)
                any_failed |= bool(outcome.failed)
                export_runs(folder)
                if not args.quiet:
                    _summary(store)
            if not args.no_report:
                _write_report([folder], None, args.quiet)
    except KeyboardInterrupt:
        # a second Ctrl-C stops at once; the database stays consistent (every save is one transaction)
        signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))
        executor.shutdown(kill=True)
        for folder, _ in plans:
            if (folder / "results.db").is_file():
                export_runs(folder)
        resume = f"lstm-bench run {' '.join(map(str, args.scenarios))}" + (f" --out {args.out}" if args.out else "")
        if args.executor != "local":
            resume += f" --executor {args.executor}" + (f" --ray-address {args.ray_address}" if args.ray_address else "")
        where = ", ".join(str(f) for f, _ in plans)
        err.print(f"interrupted: {finished} finished runs are saved in {where}; resume with: {resume}", markup=False, soft_wrap=True)
        return EXIT_INTERRUPTED
    finally:
        executor.shutdown()
    return EXIT_FAILED_RUNS if any_failed else EXIT_OK


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=err, disable=quiet, transient=False,
    )


def _describe(spec) -> str:  # noqa: ANN001 (RunSpec; imported lazily)
    mode = f"stateful/{spec.layout}" if spec.stateful else "stateless"
    return f"{spec.dataset.label} look_back={spec.look_back} batch={spec.batch_size} {mode} {spec.backend}/{spec.engine}/{spec.device} repeat={spec.repeat}"


def _summary(store) -> None:  # noqa: ANN001
    runs = store.runs()
    if runs.empty:
        return
    keys = ["dataset", "look_back", "batch_size", "stateful", "layout", "backend", "engine", "device"]
    ok = runs[runs.status == "ok"]
    table = Table(title=f"{store.path.parent}: {len(ok)} ok of {len(runs)} runs")
    for col in ("dataset", "look_back", "batch", "mode", "backend/engine/device", "n", "test RMSE", "persistence", "skill", "samples/s"):
        table.add_column(col, justify="right" if col not in ("dataset", "mode", "backend/engine/device") else "left")
    for key, g in runs.groupby(keys, dropna=False, sort=True):
        d = dict(zip(keys, key))
        good = g[g.status == "ok"]
        mode = f"stateful/{d['layout']}" if d["stateful"] else "stateless"
        other = ", ".join(f"{n} {s}" for s, n in g.status.value_counts().items() if s != "ok")
        n = f"{len(good)}" + (f" (+{other})" if other else "")
        fmt = lambda x, p=2: "-" if x != x else f"{x:,.{p}f}"  # noqa: E731 (NaN-safe)
        table.add_row(
            str(d["dataset"]), str(d["look_back"]), str(d["batch_size"]), mode, f"{d['backend']}/{d['engine']}/{d['device']}", n,
            fmt(good.test_rmse.mean()), fmt(good.persistence_rmse.mean()), fmt(good.skill.mean(), 3), fmt(good.samples_per_sec.mean(), 0),
        )
    out.print(table)


def _write_report(folders: list[Path], dest: Path | None, quiet: bool) -> None:
    from bench.report import write_report

    index = write_report(folders, dest or folders[0] / "report")
    if not quiet:
        err.print(f"report: {index}")


# --- other commands --------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    plans = _plan(args.scenarios, None, None, None)
    for path, (folder, specs) in zip(args.scenarios, plans):
        out.print(f"{path}: ok, {len(specs)} runs -> {folder}")
        if args.expand:
            table = Table()
            for col in ("run_id", "dataset", "look_back", "batch_size", "stateful", "layout", "units", "epochs", "lr", "backend", "engine", "device", "repeat", "seed"):
                table.add_column(col)
            for s in specs:
                table.add_row(s.run_id, s.dataset.label, str(s.look_back), str(s.batch_size), str(s.stateful), s.layout, str(s.units),
                              str(s.epochs), f"{s.learning_rate:g}", s.backend, s.engine, s.device, str(s.repeat), str(s.seed))
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

    out.print(str(export_runs(args.folder, args.format, args.out)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    # a folder without results.db is refused by Store.open before anything is written
    _write_report(args.folders, args.out, quiet=False)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import write_comparison

    comparison = write_comparison(args.folder_a, args.folder_b, args.label_a, args.label_b, args.out)
    out.print(comparison.format_table())
    return EXIT_OK


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


COMMANDS = {
    "run": cmd_run, "validate": cmd_validate, "datasets": cmd_datasets, "export": cmd_export,
    "report": cmd_report, "compare": cmd_compare, "probe": cmd_probe,
}
