"""`lstm-bench models`: the registered models and their parameters."""

from __future__ import annotations

import argparse

from rich.table import Table

from bench.commands import Command
from bench.commands.console import EXIT_OK, out


def arguments(p: argparse.ArgumentParser) -> None:
    pass


def handle(args: argparse.Namespace) -> int:
    from bench import registry

    table = Table(title="models (model: NAME, or model: {name: NAME, PARAMETER: VALUE, ...})")
    for col in ("name", "parameters (defaults)", "description"):
        table.add_column(col)
    for entry in registry.model_registry:
        params = ", ".join(
            ["units=4 (or a list per layer)", "layers=1", *(f"{k}={v!r}" for k, v in entry.defaults.items())]
        )
        table.add_row(entry.name, params, entry.description)
    out.print(table)
    return EXIT_OK


COMMAND = Command("models", "list the models and their parameters", arguments, handle)
