"""Helpers for tests that drive the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path, timeout: float = 600, extra_env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    """Run the real `lstm-bench` command line (as `python -m bench`) and capture its output."""
    env = {**os.environ, "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
