"""`lstm-bench validate`: check scenarios and their data without running anything."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from bench.commands import Command
from bench.commands.console import EXIT_OK, err, out, print_data_checks


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO.yaml")
    p.add_argument("--expand", action="store_true", help="print the run matrix")


def handle(args: argparse.Namespace) -> int:
    from bench.runner import plan_suite
    from bench.schema import schema

    plans, notes = plan_suite(args.scenarios)
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    print_data_checks(plans)
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


COMMAND = Command("validate", "check scenarios without running them", arguments, handle)
