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


def test_the_crossover_scenario_sweeps_batch_sizes_1_to_1024_on_every_engine() -> None:
    specs = expand(load_scenario(ROOT / "scenarios" / "crossover.yaml"))
    assert sorted({s.batch_size for s in specs}) == [2**k for k in range(11)]
    assert {(s.backend, s.engine) for s in specs} == {
        ("jax", "scan"),
        ("jax", "fit"),
        ("tensorflow", "fit"),
        ("torch", "fit"),
    }


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
        ["bash", str(ROOT / "benchmarks" / "crossover.sh"), str(tmp_path / "tiny.yaml"), str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2, done.stderr
    assert "nvidia-smi: no NVIDIA GPU found" in done.stdout  # lstm-bench doctor ran first
    assert "no usable GPU here, so only the CPU half was measured" in done.stderr
    runs = pd.read_csv(tmp_path / "out" / "cpu" / "runs.csv")
    assert set(runs.device) == {"cpu"} and set(runs.status) == {"ok"} and len(runs) == 2
    assert not (tmp_path / "out" / "gpu").exists()
