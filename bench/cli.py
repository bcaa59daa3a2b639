"""The `lstm-bench` command line. It owns the terminal; everything else logs.

Each command is a module of `bench.commands` (its arguments beside its handler). User mistakes
raise `UserError` anywhere below; `main` turns them into one line on stderr and exit status 2,
before anything is written to the results.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence

from bench.commands import commands, parser
from bench.commands.console import EXIT_USER_ERROR, err
from bench.errors import UserError

#: Library warnings that say nothing about the user's run and cannot be fixed where they arise, as (category,
#: message regex, module regex) of the warning's `warnings.filterwarnings` filter. Every other library warning
#: is fixed at its cause in lstm-bench's own code (tests/report/test_quiet.py fails when one comes back).
LIBRARY_NOISE: tuple[tuple[type[Warning], str, str], ...] = (
    # seaborn 0.13.2 (installed) calls Axes.bxp(vert=...) in every sns.boxplot, which matplotlib 3.11
    # deprecated (MatplotlibDeprecationWarning, a DeprecationWarning); our own call passes no `vert`.
    (DeprecationWarning, r"vert: bool was deprecated", r"seaborn\.categorical"),
)


def quiet_library_noise() -> None:
    """Ignore the `LIBRARY_NOISE` warnings (and only those) in this process and the figure workers it forks."""
    for category, message, module in LIBRARY_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_library_noise()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        known = commands()
        args = parser(known).parse_args(argv)
        args.argv = argv  # what `run` prints to resume this very invocation
        return known[args.command].handle(args)
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USER_ERROR
