"""The prepared CPU vs GPU benchmark (benchmarks/crossover.sh) on a machine without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.scenario import load_scenario
from bench.specs import expand
from clitools import write

ROOT = Path(__file__).resolve().parent.parent


def test_the_crossover_scenarios_sweep_batch_sizes_1_to_1024_on_every_engine() -> None:
    fit, scan = (expand(load_scenario(ROOT / "scenarios" / f"{name}.yaml")) for name in ("crossover", "crossover_scan"))
    for specs in (fit, scan):
        assert sorted({s.batch_size for s in specs}) == [2**k for k in range(11)]
        assert {s.stateful for s in specs} == {True, False}
    assert {(s.backend, s.engine) for s in fit + scan} == {
        ("jax", "scan"),
        ("jax", "fit"),
        ("tensorflow", "fit"),
        ("torch", "fit"),
    }
    assert {s.dataset.params["length"] for s in scan} == {100_000}  # long enough for large batches on scan


@pytest.mark.slow  # about 40 s: lstm-bench doctor starts a worker per backend, then a run
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_without_a_gpu_it_measures_the_cpu_half_and_says_why_it_stops(tmp_path: Path) -> None:
    write(
        tmp_path / "tiny.yaml",
        "name: tiny\ndataset: {name: sine, length: 200}\nbatch_size: [1, 8]\nepochs: 2\nbackend: jax\nengine: scan\n",
    )
    exe = Path(sys.executable).parent  # lstm-bench of this environment first on PATH
    env = {**os.environ, "PATH": f"{exe}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "crossover.sh"), str(tmp_path / "out"), str(tmp_path / "tiny.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2, done.stderr
    assert "nvidia-smi: no NVIDIA GPU found" in done.stdout  # lstm-bench doctor ran first
    assert "--require-gpu: nvidia-smi finds no NVIDIA GPU" in done.stderr
    assert "the GPU half did not run (the line above says why); only the CPU half was measured" in done.stderr
    runs = pd.read_csv(tmp_path / "out" / "cpu" / "runs.csv")
    assert set(runs.device) == {"cpu"} and set(runs.status) == {"ok"} and len(runs) == 2
    assert not (tmp_path / "out" / "gpu").exists()


def test_the_reference_cpu_half_is_a_readable_results_folder() -> None:
    """results/reference/crossover-cpu: the crossover's CPU half as measured, read as every command reads it."""
    from bench.report import load_results

    runs = load_results(ROOT / "results" / "reference" / "crossover-cpu").runs
    assert len(runs) == 88 and set(runs.device) == {"cpu"}
    ok = runs[runs.status == "ok"]
    assert len(ok) == 77 and set(ok.kernel) == {"generic"}
    assert set(runs[runs.status != "ok"].backend) == {"jax"}  # stateful fit on JAX: unsupported


def test_the_reference_cpu_half_compared_by_backend_pairs_every_backend_and_accounts_for_every_run() -> None:
    """Every pair of the three backends pairs its shared configurations (the fit runs), and each run of the two
    levels is either in a pair or unpaired with a reason: the counts add up."""
    from bench.report import load_results
    from bench.report.compare import axis_levels
    from bench.report.pairing import compare_runs

    runs = load_results(ROOT / "results" / "reference" / "crossover-cpu").runs
    levels = axis_levels(runs, "backend")
    assert levels == ["jax", "tensorflow", "torch"]
    for i, level_a in enumerate(levels):
        for level_b in levels[i + 1 :]:
            a, b = runs[runs.backend == level_a], runs[runs.backend == level_b]
            pairing = compare_runs(a, b, level_a, level_b, differing=("backend",))
            paired = int(pairing.table["pairs"].sum())
            assert paired > 0 and 2 * paired + len(pairing.unpaired) == len(a) + len(b), (level_a, level_b)
            assert set(pairing.unpaired["reason"]) <= {
                "status unsupported",
                f"no ok run in {level_a} with the same configuration and repeat",
                f"no ok run in {level_b} with the same configuration and repeat",
            }
