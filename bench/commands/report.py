"""`lstm-bench report`: the report (HTML, Markdown, figures) of results folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands import Command
from bench.commands.console import EXIT_OK, check_margin, margin_argument, print_answer, print_suite
from bench.errors import UserError


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folders", nargs="+", type=Path, metavar="RESULTS_DIR")
    p.add_argument("--out", type=Path, help="report folder (default FIRST_RESULTS_DIR/report)")
    margin_argument(p)


def handle(args: argparse.Namespace) -> int:
    from bench.report import write_report
    from bench.report.suite import write_suite_report
    from bench.suite import read_marker

    check_margin(args.margin)
    if len(args.folders) == 1 and read_marker(args.folders[0]) is not None:  # a suite folder: its suite report
        if args.out:
            raise UserError("--out does not apply to a suite folder: its report goes to SUITE_DIR/report")
        print_suite(write_suite_report(args.folders[0], args.margin))
        return EXIT_OK
    # a folder without an intact results.db is refused by Store.open before anything is written
    print_answer(write_report(args.folders, args.out or args.folders[0] / "report", args.margin))
    return EXIT_OK


COMMAND = Command("report", "write the report (HTML, Markdown, figures) for results folders", arguments, handle)
