"""`lstm-bench doctor`: what each backend can do on this machine."""

from __future__ import annotations

import argparse

from rich.markup import escape

from bench.commands import Command
from bench.commands.console import EXIT_OK, out


def arguments(p: argparse.ArgumentParser) -> None:
    from bench import registry

    p.add_argument(
        "--backend",
        action="append",
        choices=registry.backend_registry.choices(),
        metavar="BACKEND",
        help="check only this backend (repeatable)",
    )


def handle(args: argparse.Namespace) -> int:
    from bench.doctor import diagnose

    gpu, checks = diagnose(args.backend)
    out.print(f"nvidia-smi: {gpu or 'no NVIDIA GPU found'}")
    for check in checks:
        if not check.version:
            out.print(f"[bold]{check.backend}[/]: not installed")
        else:
            seen = ", ".join(check.gpus) if check.gpus else "no GPU"
            out.print(f"[bold]{check.backend}[/] {check.version}: sees cpu and {seen}")
        for line in check.probes:
            verdict = {True: "[green]carries state[/]", False: "[red]does NOT carry state[/]", None: "[red]failed[/]"}
            out.print(f"  {line.engine} on {line.device}: {verdict[line.carries_state]} ({escape(line.detail)})")
        for advice in check.advice:
            out.print(f"  [yellow]advice:[/] {escape(advice)}")
    return EXIT_OK


COMMAND = Command(
    "doctor", "what each backend can do here: version, devices, state-carry probe, advice", arguments, handle
)
