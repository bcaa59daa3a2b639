"""The terminal: consoles for results (stdout) and messages (stderr), and the exit statuses."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from bench.errors import UserError

# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def margin_argument(p: argparse.ArgumentParser) -> None:
    """`--margin`, shared by `run` and `report`."""
    from bench.vocabulary import MARGIN

    p.add_argument(
        "--margin",
        type=float,
        default=MARGIN,
        metavar="FRACTION",
        help=f"the recommendation's accuracy margin, a fraction of the best RMSE (default {MARGIN:g}: 2%%)",
    )


def check_margin(margin: float) -> None:
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


def print_suite(written) -> None:  # noqa: ANN001 (bench.report.suite.SuiteWritten; imported lazily)
    """Each workload's recommendation headlines, the suite's scores, then where the suite report is."""
    s = written.analysis
    out.print(f"[bold]Suite {s.name}[/]: {len(s.workloads)} workloads")
    for line in s.answers:
        out.print(f"  {line}", markup=False, soft_wrap=True)
    if s.not_run:
        out.print(f"  not run yet: {', '.join(s.not_run)}", markup=False, soft_wrap=True)
    for name, a in s.workloads.items():
        for rec in a.answer.recommendations:
            out.print(f"  {name}: {rec.headline()}", markup=False, soft_wrap=True)
    if not s.scores.empty:
        out.print(s.scores.round(3).to_string(), markup=False, soft_wrap=True)
    err.print(f"suite report: {written.index}")


def print_data_checks(plans) -> None:  # noqa: ANN001 (bench.runner.Plan; imported lazily)
    """Each warning about the plans' data, once however many scenarios share the dataset."""
    from rich.markup import escape

    for line in dict.fromkeys(c.line() for plan in plans for c in plan.checks):
        err.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
