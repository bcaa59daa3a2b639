"""The `scan` engine's choices on this machine's default JAX device, for tuning it per device (issue 12):
unrolling the LSTM over a window or not, and how many runs train together under `jax.vmap`.

On a GPU, a layer that is not unrolled asks Keras's JAX backend for cuDNN (`jax.experimental.rnn`);
each measurement records the kernel its program traced. Ratios print at the end (tests/perf/conftest.py).
Run: pytest tests/perf/test_scan_variants.py --benchmark-only -s
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.datasets import resolve_dataset
from test_throughput import record, scan_epoch, seed_spec

ROUNDS = 15
BATCH_SIZES = (1, 32, 256)
TOGETHER = (1, 8, 64)
# long enough that a GPU's per-step cost, not the fixed per-epoch cost, is what is measured
SERIES = resolve_dataset({"name": "sine", "length": 20000, "period": 50, "noise": 0.05}, Path("."))


def unroll_name(batch_size: int, unrolled: bool) -> str:
    return f"scan, sine 20k, batch {batch_size}, {'unrolled' if unrolled else 'not unrolled'}"


def together_name(runs: int) -> str:
    return f"scan, sine 20k, batch 32, {runs} run(s) together, machine samples/s"


def note_kernel(benchmark: Any, name: str, kernel: str | None) -> None:
    """Keep the LSTM kernel the measured program traced with the benchmark's record, and print it."""
    benchmark.extra_info["kernel"] = kernel
    print(f"\n{name}: LSTM kernel {kernel}")


@pytest.mark.parametrize("unrolled", [True, False])
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_unrolled_or_not(
    batch_size: int, unrolled: bool, benchmark: Any, throughput: dict[str, float], jax_backend: None, monkeypatch
) -> None:
    from bench.engines import scan

    monkeypatch.setattr(scan, "UNROLL_MAX_LOOK_BACK", 16 if unrolled else 0)  # the model is built with the Program
    epoch, n, program = scan_epoch(batch_size, spec=seed_spec(batch_size, dataset=SERIES))
    benchmark.pedantic(epoch, rounds=ROUNDS, warmup_rounds=1)
    note_kernel(benchmark, unroll_name(batch_size, unrolled), program.kernel(False, False, True))
    record(benchmark, throughput, unroll_name(batch_size, unrolled), n)


@pytest.mark.parametrize("runs", TOGETHER)
def test_runs_trained_together(runs: int, benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    epoch, n, program = scan_epoch(32, repeats=runs if runs > 1 else 0, spec=seed_spec(32, dataset=SERIES))
    benchmark.pedantic(epoch, rounds=ROUNDS, warmup_rounds=1)
    note_kernel(benchmark, together_name(runs), program.kernel(runs > 1, False, True))
    record(benchmark, throughput, together_name(runs), runs * n)
