"""`lstm-bench compare`: two results folders side by side (e.g. CPU vs GPU), or the levels of one axis
inside one folder (`--by backend`)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.commands import Command
from bench.commands.console import EXIT_OK, check_margin, margin_argument, out
from bench.errors import UserError

#: How many unpaired runs the terminal lists one by one (summary.md lists them all).
UNPAIRED_SHOWN = 10


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder_a", type=Path, metavar="DIR_A")
    p.add_argument("folder_b", type=Path, metavar="DIR_B", nargs="?")
    p.add_argument(
        "--by",
        metavar="AXIS",
        help="compare every pair of levels of one axis inside DIR_A: backend, engine, device, model or dataset",
    )
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    p.add_argument("--out", type=Path, help="output folder (default DIR_B/compare, or DIR_A/compare/by-AXIS)")
    margin_argument(p)


def handle(args: argparse.Namespace) -> int:
    from bench.report.compare import compare_by, write_comparison

    check_margin(args.margin)
    if args.by is not None:
        if args.folder_b is not None:
            raise UserError(f"--by {args.by} compares inside one folder: give DIR_A alone, or drop --by")
        comparisons = compare_by(args.folder_a, args.by, args.out, args.margin)
    elif args.folder_b is None:
        raise UserError("compare needs two results folders (DIR_A DIR_B), or one with --by AXIS (e.g. --by backend)")
    else:
        comparisons = [
            write_comparison(args.folder_a, args.folder_b, args.label_a, args.label_b, args.out, args.margin)
        ]
    for comparison in comparisons:
        out.print(comparison_text(comparison), markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


def comparison_table(c) -> Table:  # noqa: ANN001 (bench.report.pairing.Comparison; imported lazily)
    """The comparison for the terminal: each batch size's median speeds, speed-up with its interval and verdict,
    and the RMSE difference with its interval and verdict."""
    from bench.report.pairing import PER_RUN
    from bench.report.render import fmt

    unit = "samples/s" if c.basis == PER_RUN else "machine samples/s"
    t = Table(title=f"{c.label_b} vs {c.label_a}: speed-up = median {unit} {c.label_b} / {c.label_a}")
    names = ["series", "batch size", "pairs", f"{unit} {c.label_a}", f"{unit} {c.label_b}", "speed-up (interval)"]
    for n in [*names, "speed", f"RMSE {c.label_b} - {c.label_a} (interval)", "accuracy"]:
        t.add_column(n, justify="left" if n in ("series", "speed", "accuracy") else "right")
    for r in c.table.itertuples(index=False):
        speedup = f"{fmt(r.speedup)} ({fmt(r.speedup_low)} to {fmt(r.speedup_high)})"
        diff = f"{fmt(r.rmse_diff)} ({fmt(r.rmse_diff_low)} to {fmt(r.rmse_diff_high)})"
        t.add_row(r.series, fmt(r.batch_size), fmt(r.pairs), fmt(r.sps_a), fmt(r.sps_b), speedup, r.speed_verdict,
                  diff, r.accuracy_verdict)  # fmt: skip
    return t


def comparison_text(c, width: int = 160) -> str:  # noqa: ANN001 (Comparison)
    """The table as plain text, then each series' answer and crossover, the warnings and the unpaired runs
    counted per reason."""
    from bench.report.compare import unpaired_counts

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(comparison_table(c))
    verdicts = [f"{x.series}: {x.verdict}" for x in c.crossovers] or ["no paired runs: nothing to compare"]
    basis = [f"speed-up on {c.basis}" + (f": {c.basis_note}" if c.basis_note else "")] if len(c.table) else []
    warnings = [f"warning: {w}" for w in c.warnings]
    lines = [console.export_text().rstrip(), *c.pairing.sentences, *basis, *verdicts, *warnings]
    if c.unpaired.empty:
        return "\n".join([*lines, "every run paired"])
    lines.append(f"{len(c.unpaired)} unpaired runs (all in {c.out / 'summary.md'}):")
    lines += [f"  {n} of {side}: {reason}" for (side, reason), n in unpaired_counts(c.unpaired).items()]
    for r in c.unpaired.head(UNPAIRED_SHOWN).itertuples(index=False):
        lines.append(f"    {r.side} {r.run_id} {r.mode} batch {r.batch_size} repeat {r.repeat}: {r.reason}")
    if len(c.unpaired) > UNPAIRED_SHOWN:
        lines.append(f"    ... and {len(c.unpaired) - UNPAIRED_SHOWN} more")
    return "\n".join(lines)


COMMAND = Command(
    "compare", "compare two results folders (e.g. CPU vs GPU), or one folder --by an axis", arguments, handle
)
