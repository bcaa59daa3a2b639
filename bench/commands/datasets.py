"""`lstm-bench datasets`: the built-in series."""

from __future__ import annotations

import argparse

from rich.table import Table

from bench.commands import Command
from bench.commands.console import EXIT_OK, out


def arguments(p: argparse.ArgumentParser) -> None:
    pass


def handle(args: argparse.Namespace) -> int:
    from bench.datasets import list_datasets

    table = Table(title="built-in datasets (or use dataset: {csv: FILE, column: NAME})")
    for col in ("name", "length", "parameters (defaults)", "description"):
        table.add_column(col)
    for info in list_datasets():
        params = ", ".join(f"{k}={v}" for k, v in info.defaults.items()) or "-"
        table.add_row(info.name, str(info.length) if info.length else "parameter", params, info.description)
    out.print(table)
    return EXIT_OK


COMMAND = Command("datasets", "list the built-in datasets", arguments, handle)
