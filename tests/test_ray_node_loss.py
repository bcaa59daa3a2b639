"""A Ray cluster that loses a node mid-suite: the run on the lost node fails (and with --retries runs
again on the node that is left), the slots shrink to what the cluster still has, and the suite ends.
And a cluster that `ray start` recorded and that has stopped since is not joined."""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from clitools import run_in_process, write

# about 25 s (a two-node cluster): with -m slow, next to the Ray actor killed mid-run (test_executors.py)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'lstm-bench[ray]')"
    ),
]

# three groups of work for two one-CPU nodes
SCENARIO = (
    "name: n\ndataset: {name: sine, length: 60, period: 12}\nlook_back: 2\nbatch_size: [1, 2, 3]\n"
    "backend: jax\nengine: scan\nepochs: 2\n"
)


@pytest.fixture
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 96 * 2**20}
    # notice a lost node within a second or two (the default health check takes about half a minute)
    fast = {"health_check_period_ms": 500, "health_check_failure_threshold": 2, "health_check_initial_delay_ms": 0}
    made = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False, "_system_config": fast})
    worker = made.add_node(**node)
    made.wait_for_nodes()
    yield made, worker
    ray.shutdown()
    made.shutdown()


def test_losing_a_node_mid_suite_fails_or_reruns_its_run_and_never_hangs(cluster, tmp_path: Path, monkeypatch):
    made, worker = cluster
    write(tmp_path / "s.yaml", SCENARIO)
    paused = tmp_path / "paused"
    paused.mkdir()
    # test hook: each worker marks the group it starts and pauses 2 s, so both nodes have a run in flight
    monkeypatch.setenv("LSTM_BENCH_TEST_PAUSE", f"{paused}:2")

    ran = []
    suite = threading.Thread(
        target=lambda: ran.append(
            run_in_process(
                "run",
                "s.yaml",
                "--no-report",
                "--executor",
                "ray",
                "--ray-address",
                made.address,
                "--retries",
                "1",
                cwd=tmp_path,
            )
        )
    )
    suite.start()
    deadline = time.time() + 120
    while len(list(paused.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    made.remove_node(worker, allow_graceful=False)  # as a crashed or preempted machine
    suite.join(timeout=240)
    assert not suite.is_alive(), "the suite hung after losing a node"
    result = ran[0]
    assert result.returncode == 0, result.stderr
    with closing(sqlite3.connect(tmp_path / "results" / "n" / "results.db")) as db:
        assert db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall() == [("ok", 3)]
        attempts = db.execute("SELECT run_id, attempt, status, error FROM attempts ORDER BY run_id, attempt").fetchall()
    lost = [a for a in attempts if a[2] == "failed"]
    # the run on the lost node failed with the cause, then ran again on the node that is left
    assert len(lost) == 1 and "worker process died" in lost[0][3], attempts
    assert [a[1:3] for a in attempts if a[0] == lost[0][0]] == [(1, "failed"), (2, "ok")]
    assert len(attempts) == 4 and "retrying" in result.stderr


def test_a_stopped_cluster_recorded_by_ray_start_is_not_joined(tmp_path: Path, monkeypatch):
    """Ray alone would try to join the cluster an earlier `ray start` recorded, and refuse our CPU count."""
    import ray

    assert not ray.is_initialized()
    short = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    (short / "ray").mkdir()
    (short / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")
    monkeypatch.setenv("RAY_TMPDIR", str(short))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    write(tmp_path / "s.yaml", SCENARIO)
    try:
        result = run_in_process("run", "s.yaml", "--executor", "ray", "--no-report", cwd=tmp_path)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert not ray.is_initialized()  # the instance it started, it stopped
