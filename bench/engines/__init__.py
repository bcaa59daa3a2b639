"""Engines: given a RunSpec and its prepared windows, return a RunResult.

Each engine module exposes `run(spec, prep, windows) -> RunResult` and
`unsupported_reason(spec) -> str | None` (None when it can run the spec in this process).
"""

from __future__ import annotations

import importlib
from types import ModuleType

ENGINES = ("fit", "scan")


def get_engine(name: str) -> ModuleType:
    """The engine module for `name` (imported lazily: engines import Keras and their backend)."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return importlib.import_module(f"bench.engines.{name}")
