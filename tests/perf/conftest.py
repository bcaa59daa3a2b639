"""Throughput benchmarks: run with `pytest tests/perf --benchmark-only` (never part of the default run).

The JAX measurements run in this process (a per-call round trip to a worker would cost as much as
a whole scan epoch), so Keras must get the jax backend here, before anything imports it; the
TensorFlow loop runs in a spawned worker.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Any

import pytest

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "jax"

THROUGHPUT = pytest.StashKey[dict[str, float]]()
SECONDS = pytest.StashKey[dict[str, float]]()

SEED_LOOP = "(a) seed loop, TF fit per epoch, batch 1"
SCAN = "(b) scan engine, batch 1"
HAND = "(c) hand-written JAX LSTM, batch 1"
VMAP10 = "scan engine, 10 vmapped repeats, batch 1"
HAND_VMAP10 = "hand-written JAX LSTM, 10 vmapped repeats, batch 1"
# name -> (numerator, denominator, factor) over samples/s; the vmapped rate counts all 10 repeats'
# samples, so 10 * scan / vmapped is the wall time of 10 vmapped repeats over that of one repeat
RATIOS = {
    "ratio scan / seed loop (target >= 100)": (SCAN, SEED_LOOP, 1.0),
    "ratio hand-written / scan (target <= 1.5)": (HAND, SCAN, 1.0),
    "ratio 10 vmapped / 1 repeat wall (target <= 2)": (SCAN, VMAP10, 10.0),
    "ratio same, hand-written JAX LSTM (reference)": (HAND, HAND_VMAP10, 10.0),
    "ratio scan / TF fit engine, batch 1": (SCAN, "TF fit engine, batch 1", 1.0),
    "ratio scan / TF fit engine, batch 32": ("scan engine, batch 32", "TF fit engine, batch 32", 1.0),
    # tests/perf/test_scan_generic.py: the generic model path's epoch time over the hand-built one's
    "ratio generic / hand-built scan epoch time, batch 1 (target <= 1.1)": (
        "scan, hand-built explicit-state LSTM (0.5.0), seed configuration, batch 1",
        "scan, generic model path, seed configuration, batch 1",
        1.0,
    ),
    "ratio scan / TF fit, example factory model, batch 1 (target >= 50)": (
        "scan, example factory model, batch 1",
        "TF fit engine, example factory model, batch 1",
        1.0,
    ),
    "ratio 10 vmapped / 1 repeat wall, example factory model": (
        "scan, example factory model, batch 1",
        "scan, example factory model, 10 vmapped repeats, batch 1",
        10.0,
    ),
    # tests/perf/test_speed.py: the peer, the floor and the arithmetic rate (> 1: scan is ahead)
    **{
        f"ratio scan / PyTorch nn.LSTM loop, {size} size (target >= 1.0)": (
            f"peer {size}: scan",
            f"peer {size}: PyTorch nn.LSTM loop",
            1.0,
        )
        for size in ("seed", "middle", "large")
    },
    **{
        f"ratio small products fused / every product a dot, batch {b}": (
            f"seed size, batch {b}, small products fused",
            f"seed size, batch {b}, every product a dot",
            1.0,
        )
        for b in (1, 2, 4, 8, 16, 32)
    },
    "ratio C floor / scan, batch 1 (target <= 2, goal 1.5)": (
        "floor: plain C, LSTM(4), look_back 3, batch 1, one core",
        "floor: scan, same series",
        1.0,
    ),
    "ratio scan training / BLAS gate product, GFLOP/s (target >= 0.4)": (
        "arithmetic: scan, 64 units, look_back 24, batch 1024, training GFLOP/s",
        "arithmetic: NumPy BLAS, gate-sized product 1024 x 65 @ 65 x 256, GFLOP/s",
        1.0,
    ),
    # tests/perf/test_scan_variants.py: > 1 means the variant is faster
    **{
        f"ratio not unrolled / unrolled, scan, batch {b}": (
            f"scan, sine 20k, batch {b}, not unrolled",
            f"scan, sine 20k, batch {b}, unrolled",
            1.0,
        )
        for b in (1, 32, 256)
    },
    **{
        f"ratio {k} / 1 runs together, machine samples/s": (
            f"scan, sine 20k, batch 32, {k} run(s) together, machine samples/s",
            "scan, sine 20k, batch 32, 1 run(s) together, machine samples/s",
            1.0,
        )
        for k in (8, 64)
    },
}
FIT_ENGINE = "fit engine run (train + eval), TF, batch 1"
BARE_KERAS = "bare Keras script, same work, TF, batch 1"
SWEEP_SCAN = "airline sweep, scan engine, runs + report"
SWEEP_SEED_LOOP = "airline sweep, seed-style TF loop, PROJECTED from measured epochs"
# name -> (numerator, denominator) over seconds (wall times: a ratio > 1 means the numerator is slower)
SECONDS_RATIOS = {
    "ratio fit engine / bare Keras (target <= 1.05)": (FIT_ENGINE, BARE_KERAS),
    "ratio PROJECTED seed-loop sweep / scan sweep": (SWEEP_SEED_LOOP, SWEEP_SCAN),
    # whole runs (tests/perf/test_throughput.py): 10 vmapped repeats over 1, with and without compiling
    "ratio 10 / 1 repeat, whole run, compiled": (
        "whole run of 10 repeat(s), compiled",
        "whole run of 1 repeat(s), compiled",
    ),
    "ratio 10 / 1 repeat, whole run, cold": ("whole run of 10 repeat(s), cold", "whole run of 1 repeat(s), cold"),
    # tests/perf/test_tuning_perf.py
    "ratio 5 learning rates / 1, whole sweep, cold cache (target <= 1.5)": (
        "airline sweep, 5 learning rates, cold cache",
        "airline sweep, 1 learning rate, cold cache",
    ),
    "ratio warm / cold compilation cache, whole sweep": (
        "airline sweep, 1 learning rate, warm cache",
        "airline sweep, 1 learning rate, cold cache",
    ),
    "ratio noise scale on / off, whole runs": ("whole runs, noise scale on", "whole runs, noise scale off"),
    "ratio 16-trial search / 1 trial, whole sweep, cold cache (target <= 3)": (
        "airline search, 16 trials x 4 hyperparameters, cold cache",
        "airline search, 1 trial, cold cache",
    ),
}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[THROUGHPUT] = {}
    config.stash[SECONDS] = {}


@pytest.fixture(scope="session")
def throughput(pytestconfig: pytest.Config) -> dict[str, float]:
    """Samples/s by measurement name, for the ratios printed at the end of the session."""
    return pytestconfig.stash[THROUGHPUT]


@pytest.fixture(scope="session")
def seconds(pytestconfig: pytest.Config) -> dict[str, float]:
    """Wall times in seconds by measurement name, for the ratios printed at the end of the session."""
    return pytestconfig.stash[SECONDS]


@pytest.fixture(scope="session")
def jax_backend() -> None:
    """Skips a benchmark that runs JAX in this process when Keras was imported with another backend."""
    import keras

    if keras.backend.backend() != "jax":
        pytest.skip(
            f"Keras was imported with backend {keras.backend.backend()} before tests/perf/conftest.py could pick jax"
        )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add Keras and backend versions and the devices each backend sees to the benchmark record."""
    machine_info["keras"] = _version("keras")
    machine_info["keras_backend"] = os.environ.get("KERAS_BACKEND", "")
    for dist in ("jax", "jaxlib", "tensorflow", "tensorflow-cpu"):
        machine_info[dist] = _version(dist)
    try:
        import jax

        machine_info["jax_devices"] = [str(d) for d in jax.devices()]
    except ImportError:
        machine_info["jax_devices"] = []
    machine_info["torch"] = _version("torch")
    machine_info["cpu_count"] = os.cpu_count()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the measured samples/s, wall times and the ratios the project targets."""
    tp = dict(config.stash.get(THROUGHPUT, {}))
    secs = dict(config.stash.get(SECONDS, {}))
    write = terminalreporter.write_line
    if tp:
        for name, (num, den, scale) in RATIOS.items():
            if num in tp and den in tp:
                tp[name] = scale * tp[num] / tp[den]
        terminalreporter.section("lstm-bench throughput (samples/s, median epoch)")
        for name, value in tp.items():
            # ratios are stored under names starting "ratio"; everything else is samples/s
            write(f"{name:>48}: {value:>12.2f}" if name.startswith("ratio") else f"{name:>48}: {value:>12,.0f}")
    if secs:
        for name, (num, den) in SECONDS_RATIOS.items():
            if num in secs and den in secs:
                secs[name] = secs[num] / secs[den]
        terminalreporter.section("lstm-bench wall times (seconds, median round)")
        for name, value in secs.items():
            write(f"{name:>66}: {value:>10.3f}" if name.startswith("ratio") else f"{name:>66}: {value:>10.2f} s")
