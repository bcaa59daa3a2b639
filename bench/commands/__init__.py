"""The `lstm-bench` commands, one module each: its arguments beside its handler.

A command module defines `COMMAND = Command(name, help, arguments, handle)`; `parser()` finds every
module of this package that does, so adding a command is adding one module.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand: `arguments` declares its options on its parser, `handle` runs it (exit status)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handle: Callable[[argparse.Namespace], int]


def commands() -> dict[str, Command]:
    """Every command of this package, by name, in alphabetical order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "COMMAND", None), Command):
            found.append(module.COMMAND)
    return {c.name: c for c in sorted(found, key=lambda c: c.name)}


def parser(known: dict[str, Command]) -> argparse.ArgumentParser:
    """The command line: one subparser per command, each handled by its own module."""
    p = argparse.ArgumentParser(
        prog="lstm-bench", description="Benchmark stateful LSTMs in Keras: batch size vs accuracy and speed."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in known.values():
        command.arguments(sub.add_parser(command.name, help=command.help))
    return p
