"""Helpers for tests that drive the command line: in this process, or as a real subprocess where
the process itself is the subject (kill -9, Ctrl-C, two suites at once, an environment of its own)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Ran:
    """What a command line call returned and printed."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(*args: str | Path, cwd: Path) -> Ran:
    """Call `lstm-bench ARGS` in this process from folder `cwd` (workers are still spawned processes)."""
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse's own errors
                code = int(exc.code or 0)
    finally:
        os.chdir(before)
    return Ran(code, out.getvalue(), err.getvalue())


def run_cli(
    *args: str, cwd: Path, timeout: float = 600, extra_env: dict[str, str] | None = None, **kw
) -> subprocess.CompletedProcess[str]:
    """Run the real `lstm-bench` command line (as `python -m bench`) in a subprocess and capture its output."""
    env = {**os.environ, "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
