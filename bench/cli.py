"""The `lstm-bench` command line. It owns the terminal; everything else logs.

Each command is a module of `bench.commands` (its arguments beside its handler). User mistakes
raise `UserError` anywhere below; `main` turns them into one line on stderr and exit status 2,
before anything is written to the results.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from bench.commands import commands, parser
from bench.commands.console import EXIT_USER_ERROR, err
from bench.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        known = commands()
        args = parser(known).parse_args(argv)
        args.argv = argv  # what `run` prints to resume this very invocation
        return known[args.command].handle(args)
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USER_ERROR
