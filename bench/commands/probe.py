"""`lstm-bench probe`: does stateful training carry state on a backend and engine?"""

from __future__ import annotations

import argparse

from bench.commands import Command
from bench.commands.console import EXIT_FAILED_RUNS, EXIT_OK, out


def arguments(p: argparse.ArgumentParser) -> None:
    from bench import registry

    p.add_argument("--backend", choices=registry.backend_registry.choices(), metavar="BACKEND", default="tensorflow")
    p.add_argument("--engine", choices=registry.engine_registry.choices(), metavar="ENGINE", default="fit")


def handle(args: argparse.Namespace) -> int:
    from bench.probe import probe
    from bench.worker import worker_pool

    with worker_pool(args.backend) as pool:
        result = pool.submit(probe, args.backend, args.engine).result()
    verdict = "[green]carries state[/]" if result.carries_state else "[red]does NOT carry state[/]"
    out.print(f"{args.backend}/{args.engine}: {verdict}: {result.detail}")
    if result.advice:
        out.print(f"advice: {result.advice}")
    return EXIT_OK if result.carries_state else EXIT_FAILED_RUNS


COMMAND = Command("probe", "check that stateful training really carries state on a backend/engine", arguments, handle)
