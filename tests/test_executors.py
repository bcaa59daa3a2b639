"""Executors through the real command line: local, local --workers 2 and Ray give the same runs;
a Ray worker killed mid-run fails (or, with --retries, reruns) only its run."""

from __future__ import annotations

import importlib.util
import socket
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from bench.scenario import load_scenario
from bench.specs import expand
from clitools import run_cli, write

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'lstm-bench[ray]')")

# two scan configurations x 2 repeats: two groups (each trained as one vmapped program, under every executor)
SWEEP = "name: x\ndataset: {name: sine, length: 120, period: 12}\nlook_back: 2\nbatch_size: [1, 4]\nbackend: jax\nengine: scan\nepochs: 3\nrepeats: 2\n"
METRICS = ["run_id", "status", "train_rmse", "test_rmse", "test_mae", "persistence_rmse", "skill"]


def runs(folder: Path) -> pd.DataFrame:
    with sqlite3.connect(folder / "results.db") as db:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", db)


@needs_ray
@pytest.mark.slow
def test_local_workers_and_ray_give_the_same_runs_and_metrics(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", SWEEP)
    variants = {"serial": (), "workers2": ("--workers", "2"), "ray": ("--executor", "ray")}
    frames = {}
    for name, extra in variants.items():
        result = cli("run", "s.yaml", "--no-report", "--out", name, *extra)
        assert result.returncode == 0, result.stderr
        frames[name] = runs(tmp_path / name)
    assert len(frames["serial"]) == 4
    for name in ("workers2", "ray"):
        # same seeds, same grouping, same backend: bit-identical metrics across processes and executors
        pd.testing.assert_frame_equal(frames[name][METRICS], frames["serial"][METRICS], check_exact=True)
    assert set(frames["serial"].concurrency) == {1}
    assert set(frames["workers2"].concurrency) == {2} and set(frames["ray"].concurrency) == {2}
    assert set(frames["ray"].hostname) == {socket.gethostname()}


@needs_ray
def test_ray_worker_killed_mid_run_is_replaced_and_the_run_retried(tmp_path: Path, monkeypatch):
    path = write(tmp_path / "s.yaml", SWEEP.replace("repeats: 2", "repeats: 1").replace("[1, 4]", "[1, 2, 4]"))
    ids = [s.run_id for s in expand(load_scenario(path))]
    # test hook: the actor process running ids[1] SIGKILLs itself once (as an OOM kill would)
    monkeypatch.setenv("LSTM_BENCH_TEST_CRASH", f"{ids[1]}:{tmp_path / 'crashed-once'}")
    result = run_cli("run", "s.yaml", "--no-report", "--executor", "ray", "--retries", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "crashed-once").exists() and "retrying" in result.stderr
    folder = tmp_path / "results" / "x"
    frame = runs(folder)
    assert sorted(frame.run_id) == sorted(ids) and set(frame.status) == {"ok"}
    assert set(frame.hostname) == {socket.gethostname()}  # captured in the process that ran it
    with sqlite3.connect(folder / "results.db") as db:
        attempts = db.execute("SELECT run_id, attempt, status, error FROM attempts ORDER BY run_id, attempt").fetchall()
    crashed = [a for a in attempts if a[0] == ids[1]]
    assert [a[2] for a in crashed] == ["failed", "ok"] and "worker process died" in crashed[0][3]
    assert len(attempts) == 4


@needs_ray
@pytest.mark.slow
def test_ray_worker_killed_without_retries_fails_only_its_run(tmp_path: Path, monkeypatch):
    path = write(tmp_path / "s.yaml", SWEEP.replace("repeats: 2", "repeats: 1").replace("[1, 4]", "[1, 2, 4]"))
    ids = [s.run_id for s in expand(load_scenario(path))]
    monkeypatch.setenv("LSTM_BENCH_TEST_CRASH", ids[0])
    result = run_cli("run", "s.yaml", "--no-report", "--executor", "ray", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    frame = runs(tmp_path / "results" / "x").set_index("run_id")
    assert frame.status.to_dict() == {ids[0]: "failed", ids[1]: "ok", ids[2]: "ok"}
    assert "worker process died" in frame.error[ids[0]]


def test_ray_executor_without_ray_is_a_one_line_error(tmp_path: Path, monkeypatch):
    write(tmp_path / "s.yaml", SWEEP)
    fake = write(tmp_path / "noray" / "ray" / "__init__.py", "raise ImportError('No module named ray')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent.parent))
    result = run_cli("run", "s.yaml", "--executor", "ray", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --executor ray needs Ray, which is not installed: pip install 'lstm-bench[ray]'"]
    assert not (tmp_path / "results").exists()
