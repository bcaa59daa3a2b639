"""The real `lstm-bench` command: end to end, resume after a kill, determinism, user errors."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from clitools import run_cli, write
from bench.schema import schema

TINY = """
name: tiny
dataset: {name: sine, length: 120, period: 12, noise: 0.05}
look_back: 2
batch_size: [1, 4]
stateful: [true, false]
epochs: 2
repeats: 2
"""

REQUIRED_CSV = (
    "run_id scenario dataset look_back batch_size stateful layout units epochs learning_rate repeat seed backend engine device "
    "status train_rmse test_rmse test_mae persistence_rmse skill samples_per_sec steps_per_sec compile_seconds train_seconds "
    "n_train_windows n_dropped epochs_to_target seconds_to_target error"
).split()


def test_run_end_to_end_writes_database_csv_and_resumes(tmp_path: Path, cli):
    write(tmp_path / "tiny.yaml", TINY)
    first = cli("run", "tiny.yaml", "--no-report")
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "results" / "tiny"
    runs = pd.read_csv(folder / "runs.csv")
    assert set(REQUIRED_CSV) <= set(runs.columns)
    assert len(runs) == 8 and set(runs.status) == {"ok"}  # 2 batch sizes x 2 stateful flags x 2 repeats
    assert runs.test_rmse.gt(0).all() and runs.samples_per_sec.gt(0).all()
    assert runs.persistence_rmse.nunique() == 1
    with sqlite3.connect(folder / "results.db") as db:
        assert db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 8 * 2
        env = db.execute("SELECT json FROM environments").fetchone()[0]
    for key in ("python", "keras", "backend_version", "numpy", "cpu", "cpu_cores", "os", "hostname", "harness_version"):
        assert f'"{key}"' in env
    assert "8 ok of 8 runs" in first.stdout  # the summary table

    again = cli("run", "tiny.yaml", "--no-report")
    assert again.returncode == 0 and "8 already done, 0 to run" in again.stderr
    assert pd.read_csv(folder / "runs.csv").equals(runs)


def test_same_seed_same_machine_gives_identical_metrics(tmp_path: Path, cli):
    write(tmp_path / "tiny.yaml", TINY.replace("repeats: 2", "repeats: 1").replace("batch_size: [1, 4]", "batch_size: 4"))
    assert cli("run", "tiny.yaml", "--no-report", "--out", "a").returncode == 0
    assert cli("run", "tiny.yaml", "--no-report", "--out", "b").returncode == 0
    cols = ["run_id", "train_rmse", "test_rmse", "test_mae", "skill"]
    a, b = (pd.read_csv(tmp_path / d / "runs.csv")[cols].sort_values("run_id").reset_index(drop=True) for d in "ab")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_killed_suite_resumes_without_repeating_or_losing_runs(tmp_path: Path):
    # the fast engine, one repeat per configuration: 16 small units of work to kill in the middle of
    write(tmp_path / "s.yaml", TINY.replace("repeats: 2", "look_back: [1, 2, 3, 4]\nbackend: jax\nengine: scan").replace("look_back: 2\n", ""))
    db = tmp_path / "results" / "tiny" / "results.db"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "s.yaml", "--no-report", "--quiet"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    done_before = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(db) as c:
                try:
                    done_before = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.OperationalError:
                    done_before = 0
            if done_before >= 2:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the suite finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker, as a crash would
    proc.wait()
    with sqlite3.connect(db) as c:
        before = dict(c.execute("SELECT run_id, test_rmse FROM runs").fetchall())
    assert 2 <= len(before) < 16, "the suite finished before it could be killed"

    resumed = run_cli("run", "s.yaml", "--no-report", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already done, {16 - len(before)} to run" in resumed.stderr
    with sqlite3.connect(db) as c:
        after = dict(c.execute("SELECT run_id, test_rmse FROM runs").fetchall())
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 16
    assert {k: after[k] for k in before} == before


def test_force_reruns_everything(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", "name: f\ndataset: shampoo\nlook_back: 1\nbatch_size: 4\nepochs: 2\nbackend: jax\nengine: scan\n")
    assert cli("run", "s.yaml", "--no-report", "--quiet").returncode == 0
    before = pd.read_csv(tmp_path / "results/f/runs.csv")
    forced = cli("run", "s.yaml", "--no-report", "--force")
    assert forced.returncode == 0 and "1 already done, 1 to run (--force)" in forced.stderr
    after = pd.read_csv(tmp_path / "results/f/runs.csv")
    assert after.run_id.tolist() == before.run_id.tolist() and after.finished_at[0] > before.finished_at[0]


BAD_CASES = {
    "typo": ("name: x\ndataset: airline\nbach_size: 2\n", "s.yaml:3: key 'bach_size': unknown key; did you mean 'batch_size'?"),
    "yaml": ("name: x\ndataset: [airline\n", "invalid YAML"),
    "range": ("name: x\ndataset: airline\nepochs: 0\n", "key 'epochs'"),
    "csv": ("name: x\ndataset: {csv: missing.csv, column: v}\n", "CSV file not found"),
    "short": ("name: x\ndataset: shampoo\nlook_back: 30\n", "look_back 30 leaves no training windows"),
    "dataset": ("name: x\ndataset: shampo\n", "did you mean 'shampoo'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_user_mistakes_exit_2_with_one_line_and_write_nothing(case: str, tmp_path: Path, cli):
    text, message = BAD_CASES[case]
    write(tmp_path / "s.yaml", text)
    result = cli("run", "s.yaml")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_user_mistake_leaves_existing_results_untouched(tmp_path: Path, cli):
    folder = tmp_path / "results" / "x"
    folder.mkdir(parents=True)
    (folder / "results.db").write_bytes(b"keep")
    write(tmp_path / "s.yaml", "name: x\ndataset: airline\nunits: -1\n")
    assert cli("run", "s.yaml").returncode == 2
    assert (folder / "results.db").read_bytes() == b"keep" and len(list(folder.iterdir())) == 1


def test_require_gpu_without_a_gpu_exits_2(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", "name: g\ndataset: airline\ndevice: gpu\n")
    r = cli("run", "s.yaml", "--require-gpu")
    assert r.returncode == 2 and "--require-gpu: nvidia-smi finds no NVIDIA GPU" in r.stderr
    assert not (tmp_path / "results").exists()


def test_device_auto_uses_the_cpu_for_a_backend_that_sees_no_gpu_on_a_gpu_machine(tmp_path: Path):
    """A GPU machine (a stand-in nvidia-smi) with this CPU-only JAX: auto must not ask for the GPU."""
    fake = write(tmp_path / "bin" / "nvidia-smi", "#!/bin/sh\necho 'NVIDIA H200, 143771 MiB, 565.57.01'\n")
    fake.chmod(0o755)
    write(tmp_path / "s.yaml", "name: g\ndataset: airline\nbackend: jax\nengine: scan\ndevice: [auto, gpu]\n")
    r = run_cli("validate", "--expand", "s.yaml", cwd=tmp_path, extra_env={"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    assert "device: auto runs on the CPU for jax" in r.stderr
    assert sorted(re.findall(r"│ (cpu|gpu) +│", r.stdout)) == ["cpu", "gpu"], r.stdout  # auto -> cpu; gpu stays gpu


def test_missing_scenario_file_and_results_folder(tmp_path: Path, cli):
    r = cli("run", "nope.yaml")
    assert r.returncode == 2 and "scenario file not found" in r.stderr
    for args in (("export", "nowhere"), ("report", "nowhere"), ("compare", "nowhere", "elsewhere")):
        r = cli(*args)
        assert r.returncode == 2 and "nowhere: no results.db" in r.stderr, args
    assert not (tmp_path / "nowhere").exists()


def test_validate_expand_and_datasets(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", "name: v\ndataset: airline\nbatch_size: [1, 2]\nstateful: [true, false]\n")
    r = cli("validate", "s.yaml", "--expand")
    assert r.returncode == 0 and "ok, 4 runs" in r.stdout and r.stdout.count("airline") >= 4
    r = cli("datasets")
    assert r.returncode == 0
    for name in ("airline", "shampoo", "sunspots", "sine", "mackey_glass", "ar"):
        assert name in r.stdout


def test_export_parquet_matches_csv(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", "name: e\ndataset: shampoo\nlook_back: 1\nbatch_size: [2, 4]\nepochs: 2\nbackend: jax\nengine: scan\n")
    assert cli("run", "s.yaml", "--no-report", "--quiet").returncode == 0
    r = cli("export", "results/e", "--format", "parquet")
    assert r.returncode == 0
    pq = pd.read_parquet(tmp_path / "results/e/runs.parquet")
    csv = pd.read_csv(tmp_path / "results/e/runs.csv")
    assert list(pq.columns) == list(schema().run_names) == list(csv.columns)
    assert sorted(pq.run_id) == sorted(csv.run_id)
