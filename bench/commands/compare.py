"""`lstm-bench compare`: two results folders side by side (e.g. CPU vs GPU)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.commands import Command
from bench.commands.console import EXIT_OK, out


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder_a", type=Path, metavar="DIR_A")
    p.add_argument("folder_b", type=Path, metavar="DIR_B")
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    p.add_argument("--out", type=Path, help="output folder (default DIR_B/compare)")


def handle(args: argparse.Namespace) -> int:
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
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(comparison_table(c))
    verdicts = [f"{x.series}: {x.verdict}" for x in c.crossovers] or ["no paired runs: nothing to compare"]
    tail = f"{len(c.unpaired)} unpaired runs (see {c.out / 'summary.md'})" if len(c.unpaired) else "every run paired"
    basis = [f"speed-up on {c.basis}" + (f": {c.basis_note}" if c.basis_note else "")] if len(c.table) else []
    warnings = [f"warning: {w}" for w in c.warnings]
    return "\n".join([console.export_text().rstrip(), *basis, *verdicts, *warnings, tail])


COMMAND = Command("compare", "compare two results folders (e.g. CPU vs GPU)", arguments, handle)
