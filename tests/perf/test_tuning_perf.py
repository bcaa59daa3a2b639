"""What a fair batch-size sweep costs (issue 10), measured side by side:

1. A learning-rate grid: `scenarios/airline_batch_sweep.yaml` with 5 learning rates against the same
   sweep with 1, each in a fresh `lstm-bench run` with a cold (empty) compilation cache, rounds
   interleaved. The scan engine trains a batch size's rates and repeats as one vmapped program, so
   the grid compiles no more programs than one rate does. Bar: at most 1.5x.
2. JAX's persistent compilation cache: the 1-rate sweep again with the cache the previous run left.
3. The gradient noise scale's overhead: whole scan-engine runs (airline, batch 1 and 32, 10 repeats)
   with `noise_scale` on against off, compiled, rounds interleaved in this process.
4. `scenarios/airline_tuned.yaml` end to end (runs and report, cold cache). Bar: under 2 minutes.
6. A 16-trial quasi-random search over 4 hyperparameters (learning rate, 1 - beta_1, beta_2's half-life,
   warm-up: `examples/tuning/airline_search.yaml` without its decay dimension) against the same sweep
   with one trial, each a fresh `lstm-bench run` with a cold cache, rounds interleaved. Bar (issue 21):
   at most 3x.
5. The report against the sweep it reports on (`airline_tuned.yaml`): `lstm-bench run --no-report` and
   `lstm-bench report`, each a fresh process, rounds interleaved. Bar (issue 18): at most 0.15x.

Measurements, not timed assertions: the ratios print at the end (tests/perf/conftest.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "scenarios" / "airline_batch_sweep.yaml"
TUNED = ROOT / "scenarios" / "airline_tuned.yaml"
RATES = [0.001, 0.003, 0.01, 0.03, 0.1]
GRID_ROUNDS = 2
NOISE_ROUNDS = 3


def lstm_bench(*args: str | Path, cache: Path) -> float:
    """Wall seconds of one `lstm-bench` command in a fresh process, with `cache` as its compilation cache."""
    exe = Path(sys.executable).with_name("lstm-bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # as from a user's shell
    env["LSTM_BENCH_CACHE_DIR"] = str(cache)
    t0 = time.perf_counter()
    quiet = ["--quiet"] if args[0] == "run" else []
    subprocess.run([*cmd, *map(str, args), *quiet], cwd=ROOT, env=env, check=True, timeout=1800, capture_output=True)
    return time.perf_counter() - t0


def sweep_with_rates(tmp_path: Path, rates: list[float]) -> Path:
    scenario = yaml.safe_load(SWEEP.read_text())
    scenario.update(name=f"airline_{len(rates)}_rates", learning_rate=rates if len(rates) > 1 else rates[0])
    path = tmp_path / f"rates_{len(rates)}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_learning_rate_grid_against_one_rate_cold_and_warm(
    benchmark: Any, seconds: dict[str, float], tmp_path: Path
) -> None:
    grid, one = sweep_with_rates(tmp_path, RATES), sweep_with_rates(tmp_path, [0.01])
    walls: dict[str, list[float]] = {"grid": [], "one": [], "warm": []}

    def rounds() -> None:
        for r in range(GRID_ROUNDS):
            for name, scenario in (("grid", grid), ("one", one)) if r % 2 == 0 else (("one", one), ("grid", grid)):
                cache, out = tmp_path / f"cache-{name}-{r}", tmp_path / f"out-{name}-{r}"
                walls[name].append(lstm_bench("run", scenario, "--out", out, "--no-report", cache=cache))
                if name == "one":  # the same sweep again, on the cache it just filled
                    shutil.rmtree(out)
                    walls["warm"].append(lstm_bench("run", scenario, "--out", out, "--no-report", cache=cache))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    median = {k: statistics.median(v) for k, v in walls.items()}
    benchmark.extra_info.update(walls=walls, rates=RATES)
    seconds["airline sweep, 5 learning rates, cold cache"] = median["grid"]
    seconds["airline sweep, 1 learning rate, cold cache"] = median["one"]
    seconds["airline sweep, 1 learning rate, warm cache"] = median["warm"]


def test_noise_scale_overhead(benchmark: Any, seconds: dict[str, float], jax_backend: None) -> None:
    from bench.datasets import DatasetSpec, load_series
    from bench.engines import scan
    from bench.specs import derive_seed
    from bench.windows import make_windows, prepare
    from runspecs import make_spec

    cases = []
    for batch_size in (1, 32):
        base = make_spec(
            dataset=DatasetSpec("airline"),
            look_back=3,
            batch_size=batch_size,
            epochs=100,
            learning_rate=0.01,
            backend="jax",
            engine="scan",
            validation_fraction=0.2,
        )
        prep = prepare(load_series(base.dataset).values, 0.33, False, "minmax", 0.2)
        windows = make_windows(prep, 3, batch_size, True, "streams")
        specs = [dataclasses.replace(base, repeat=r, seed=derive_seed(0, r)) for r in range(10)]
        cases.append((specs, prep, windows))
    walls: dict[bool, list[float]] = {False: [], True: []}

    def run_all(noise: bool) -> float:
        t0 = time.perf_counter()
        for specs, prep, windows in cases:
            scan.run_many([dataclasses.replace(s, noise_scale=noise) for s in specs], prep, windows)
        return time.perf_counter() - t0

    run_all(False), run_all(True)  # compile both programs first

    def rounds() -> None:
        for r in range(NOISE_ROUNDS):
            for noise in (False, True) if r % 2 == 0 else (True, False):
                walls[noise].append(run_all(noise))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    benchmark.extra_info.update(off=walls[False], on=walls[True])
    seconds["whole runs, noise scale off"] = statistics.median(walls[False])
    seconds["whole runs, noise scale on"] = statistics.median(walls[True])


def test_tuned_airline_sweep_end_to_end(benchmark: Any, seconds: dict[str, float], tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    walls: list[float] = []
    benchmark.pedantic(lambda: walls.append(lstm_bench("run", TUNED, "--out", out, cache=tmp_path / "cache")), rounds=1)
    assert (out / "report" / "index.html").is_file()
    benchmark.extra_info.update(wall_seconds=walls[0])
    seconds["airline_tuned.yaml, runs + report, cold cache"] = walls[0]


REPORT_ROUNDS = 2


def test_report_against_its_sweep(benchmark: Any, seconds: dict[str, float], tmp_path: Path) -> None:
    out, cache = tmp_path / "tuned", tmp_path / "cache"
    lstm_bench("run", TUNED, "--out", out, "--no-report", cache=cache)  # the compilation cache warm for every round
    walls: dict[str, list[float]] = {"sweep": [], "report": []}

    def rounds() -> None:
        for _ in range(REPORT_ROUNDS):
            walls["sweep"].append(lstm_bench("run", TUNED, "--out", out, "--no-report", "--force", cache=cache))
            walls["report"].append(lstm_bench("report", out, cache=cache))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    ratios = [r / s for r, s in zip(walls["report"], walls["sweep"])]
    benchmark.extra_info.update(**walls, ratios=ratios)
    print(f"\nreport / sweep (airline_tuned): {', '.join(f'{x:.2f}' for x in ratios)} (bar 0.15)")
    seconds["airline_tuned.yaml, sweep alone (warm cache)"] = statistics.median(walls["sweep"])
    seconds["airline_tuned.yaml, its report"] = statistics.median(walls["report"])


SEARCH = ROOT / "examples" / "tuning" / "airline_search.yaml"
SEARCH_ROUNDS = 2


def test_a_16_trial_search_against_one_trial_cold(benchmark: Any, seconds: dict[str, float], tmp_path: Path) -> None:
    searched = yaml.safe_load(SEARCH.read_text())
    del searched["search"]["space"]["decay"]  # 4 dimensions
    one = {k: v for k, v in searched.items() if k != "search"} | {"name": "one_trial", "learning_rate": 0.01}
    paths = {}
    for name, scenario in (("search", searched), ("one", one)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(scenario))
    walls: dict[str, list[float]] = {"search": [], "one": []}

    def rounds() -> None:
        for r in range(SEARCH_ROUNDS):
            for name in ("search", "one") if r % 2 == 0 else ("one", "search"):
                out = tmp_path / f"out-{name}-{r}"
                walls[name].append(
                    lstm_bench("run", paths[name], "--out", out, "--no-report", cache=tmp_path / f"c-{name}-{r}")
                )

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    benchmark.extra_info.update(walls=walls)
    seconds["airline search, 16 trials x 4 hyperparameters, cold cache"] = statistics.median(walls["search"])
    seconds["airline search, 1 trial, cold cache"] = statistics.median(walls["one"])
