"""Shared fixtures: worker processes per Keras backend, tiny scenarios, the CLI."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from collections.abc import Iterator

import pytest

from bench.testing import workers as shared
from clitools import run_in_process

ROOT = Path(__file__).resolve().parent.parent

# compiled JAX programs go to a cache of this session's own (shared by its workers), not the user's
os.environ.setdefault("LSTM_BENCH_CACHE_DIR", tempfile.mkdtemp(prefix="lstm-bench-test-cache-"))

# Keras fixes its backend at import; engines run in spawned workers, one per backend.
BACKENDS_AVAILABLE = {
    "tensorflow": importlib.util.find_spec("tensorflow") is not None,
    "jax": importlib.util.find_spec("jax") is not None,
    "torch": importlib.util.find_spec("torch") is not None,
}


def pytest_configure(config: pytest.Config) -> None:
    """Benchmarks run in this one process: pytest-benchmark times nothing under pytest-xdist's workers, and
    two sessions side by side would time each other (the default run's `-n 2` is for tests)."""
    if config.getoption("benchmark_only", default=False) and getattr(config.option, "numprocesses", None):
        config.option.numprocesses = 0
        config.option.dist = "no"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Benchmarks in tests/perf run only when asked for: `pytest tests/perf --benchmark-only`."""
    if collection_path.name == "perf" and not any("perf" in str(a) for a in config.args):
        return True
    return None


@pytest.fixture(scope="session")
def workers() -> Iterator[dict[str, ProcessPoolExecutor]]:
    """Lazily started worker pools keyed by backend, shared by the whole session and with the shipped
    conformance suites (`bench.testing.workers`)."""

    class _Pools(dict):
        def __missing__(self, backend: str) -> ProcessPoolExecutor:
            if not BACKENDS_AVAILABLE[backend]:
                pytest.skip(f"{backend} is not installed")
            self[backend] = shared.pool(backend)
            return self[backend]

    yield _Pools()
    shared.shutdown()


@pytest.fixture
def cli(tmp_path: Path):
    """`cli(*args)` runs lstm-bench in this process, from folder `tmp_path`."""
    return lambda *args: run_in_process(*args, cwd=tmp_path)
