"""A long multivariate series (issue 11): 1,000,000 rows x 8 features, look_back 64, batch 256, one epoch.

Each engine runs in a fresh `lstm-bench run` (its worker's peak resident memory is the run's
`peak_rss_mb`), side by side on the same Parquet file:
- `scan` (JAX), stateful and stateless: windows gathered by index inside the compiled loop, so
  memory is O(rows x features);
- `fit` (TensorFlow), stateless: these windows exceed `fit`'s materialising limit, so Keras gets
  batches gathered by a PyDataset. (A stateful `fit` walk-forward of a million batch-1 predictions
  through Keras `predict` would take hours, so it is left out.)
- the materialised path lstm-bench 0.2.0 took on every engine, measured alone: a fresh process that
  builds the training and walk-forward windows as arrays (rows x look_back x features), and nothing else.
Goal: peak RSS under 1.5 GB. Figures print at the end; nothing is asserted on time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROWS, FEATURES, LOOK_BACK, BATCH = 1_000_000, 8, 64, 256


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    shocks = rng.standard_normal((ROWS, FEATURES)).astype(np.float32)
    data = np.cumsum(shocks, axis=0) * 0.01 + np.sin(np.arange(ROWS) / 50.0)[:, None]
    frame = pd.DataFrame(data, columns=["target", *(f"f{i}" for i in range(1, FEATURES))])
    frame.insert(0, "time", pd.date_range("2000-01-01", periods=ROWS, freq="min"))
    path = tmp_path_factory.mktemp("long") / "long.parquet"
    frame.to_parquet(path)
    return path


def run(folder: Path, data: Path, engine: str, backend: str, stateful: bool) -> dict[str, Any]:
    features = ", ".join(["target", *(f"f{i}" for i in range(1, FEATURES))])
    scenario = folder / f"{engine}_{stateful}.yaml"
    scenario.write_text(
        f"name: long_{engine}_{stateful}\n"
        f"dataset: {{parquet: {data}, target: target, features: [{features}], time: time}}\n"
        f"look_back: {LOOK_BACK}\nbatch_size: {BATCH}\nstateful: {str(stateful).lower()}\nepochs: 1\n"
        f"test_fraction: 0.1\nunits: 8\nbackend: {backend}\nengine: {engine}\n"
    )
    exe = Path(sys.executable).with_name("lstm-bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = folder / f"out_{engine}_{stateful}"
    t0 = time.perf_counter()
    subprocess.run([*cmd, "run", str(scenario), "--out", str(out), "--no-report", "--quiet"], env=env, check=True)
    wall = time.perf_counter() - t0
    (row,) = pd.read_csv(out / "runs.csv").to_dict("records")
    assert row["status"] == "ok", row["error"]
    return {
        "wall_s": wall,
        "epoch_s": row["train_seconds"],
        "peak_rss_mb": row["peak_rss_mb"],
        "walk_windows_per_s": row["predict_samples_per_sec"],
        "test_rmse": row["test_rmse"],
    }


MATERIALISE = """
import resource, sys
from bench.datasets import load_series, resolve_dataset
from bench.windows import make_windows, prepare
from pathlib import Path
features = ["target", *(f"f{i}" for i in range(1, 8))]
series = load_series(resolve_dataset({"parquet": sys.argv[1], "target": "target", "features": features}, Path(".")))
prep = prepare(series.values, 0.1, False, "minmax", 0.0, series.inputs)
w = make_windows(prep, 64, 256, True, "streams")
arrays = w.train_x, w.walk_x
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, sum(a.nbytes for a in arrays) / 2**20)
"""


def materialised(data: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MATERIALISE, str(data)], check=True, capture_output=True, text=True)
    peak, array_mb = map(float, done.stdout.split())
    return {"wall_s": time.perf_counter() - t0, "peak_rss_mb": peak, "array_mb": array_mb}


def test_a_million_rows_of_eight_features(
    benchmark: Any, seconds: dict[str, float], long_file: Path, tmp_path: Path
) -> None:
    results: dict[str, dict[str, Any]] = {}

    def all_runs() -> None:
        results["scan, stateful (gathered)"] = run(tmp_path, long_file, "scan", "jax", True)
        results["scan, stateless (gathered)"] = run(tmp_path, long_file, "scan", "jax", False)
        results["fit on TF, stateless (gathered)"] = run(tmp_path, long_file, "fit", "tensorflow", False)
        results["materialising the windows alone (0.2.0's path)"] = materialised(long_file)

    benchmark.pedantic(all_runs, rounds=1, iterations=1)
    benchmark.extra_info.update(results)
    print()
    for name, r in results.items():
        if "array_mb" in r:
            print(f"  {name}: windows {r['array_mb']:,.0f} MB as arrays, peak RSS {r['peak_rss_mb']:,.0f} MB")
            continue
        print(
            f"  {name}: epoch {r['epoch_s']:.1f} s (compilation included), walk-forward "
            f"{r['walk_windows_per_s']:,.0f} windows/s, worker peak RSS {r['peak_rss_mb']:,.0f} MB, "
            f"whole command {r['wall_s']:.1f} s"
        )
        seconds[f"1M x 8 series, {name}, one epoch"] = r["epoch_s"]
