"""One contract for every executor (local worker processes, Ray actors), in the style of optuna's
StorageTestCase: each test runs against each executor, on real JAX workers."""

from __future__ import annotations

import importlib.util
import socket
import sys
import sqlite3
from pathlib import Path
from collections.abc import Iterator

import pandas as pd
import pytest

from bench.executors import SlotExecutor
from bench.executors.local import LocalExecutor
from bench.runspec import RunSpec
from bench.scenario import parse_scenario_text
from bench.specs import expand
from clitools import write

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'lstm-bench[ray]')"
)

# two scan configurations x 2 repeats: two groups, each trained as one vmapped program under every
# executor (stateful and stateless runs of a batch size share one compiled epoch: one compilation)
SWEEP = (
    "name: x\ndataset: {name: sine, length: 60, period: 12}\nlook_back: 2\nbatch_size: 2\nstateful: [true, false]\n"
    "backend: jax\nengine: scan\nepochs: 2\nrepeats: 2\n"
)


def specs_of(text: str) -> list[RunSpec]:
    return expand(parse_scenario_text(text, Path("s.yaml")))


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


def make_executor(kind: str, request: pytest.FixtureRequest, workers: int = 1) -> SlotExecutor:
    if kind == "ray":
        request.getfixturevalue("ray_instance")
        from bench.executors.raycluster import RayExecutor

        return RayExecutor(workers=workers)
    return LocalExecutor(workers=workers)


@pytest.fixture(scope="module")
def shared() -> Iterator[dict[str, SlotExecutor]]:
    """One executor of each kind for this module's tests: its worker stays up between calls, as
    between a suite's scenarios."""
    made: dict[str, SlotExecutor] = {}
    yield made
    for e in made.values():
        e.shutdown(kill=True)


# Ray's start costs seconds: its variants run with the slow checks
@pytest.fixture(params=["local", pytest.param("ray", marks=[needs_ray, pytest.mark.slow])])
def executor(request: pytest.FixtureRequest, shared: dict[str, SlotExecutor]) -> SlotExecutor:
    if request.param not in shared:
        shared[request.param] = make_executor(request.param, request)
    return shared[request.param]


# the Ray variant under -m slow: test_ray_node_loss.py loses actors (with their node) in the default run
@pytest.fixture(params=["local", pytest.param("ray", marks=[needs_ray, pytest.mark.slow])])
def fresh_executor(request: pytest.FixtureRequest, shared: dict[str, SlotExecutor]) -> Iterator[SlotExecutor]:
    """An executor whose workers start in this test (they read the test hooks from the environment)."""
    if request.param in shared:
        shared[request.param].shutdown(
            kill=True
        )  # its worker holds the Ray instance's CPUs; it restarts when next used
    made = make_executor(request.param, request)
    yield made
    made.shutdown(kill=True)


@pytest.mark.parametrize("kind", ["local", pytest.param("ray", marks=[needs_ray, pytest.mark.slow])])
def test_slots_follow_the_work_and_stay_warm_between_calls(kind: str, request: pytest.FixtureRequest):
    """min(workers, groups) slots; the same slots (and their workers) again when that count repeats.
    A new count replaces the slots only: a Ray instance the executor started stays up."""
    made = make_executor(kind, request, workers=2)
    if kind == "ray":
        import ray

        made._started_here = True  # as when it started a local instance itself (here the module's)
    try:
        made.slots = made.open(1)
        assert len(made.slots) == 1
        made.slots = two = made.open(5)
        assert len(two) == 2 and made.open(3) is two
        if kind == "ray":
            assert ray.is_initialized()
    finally:
        if kind == "ray":
            made._started_here = False  # the module's instance is not ours to stop
        made.shutdown(kill=True)


@pytest.mark.slow
def test_every_spec_gives_one_result_and_repeats_train_together(executor: SlotExecutor):
    specs = specs_of(SWEEP)
    results = list(executor.results(specs))
    assert sorted(r.spec.run_id for r in results) == sorted(s.run_id for s in specs)
    assert {r.status for r in results} == {"ok"}, [r.error for r in results]
    assert {r.trained_together for r in results} == {2} and {r.concurrency for r in results} == {1}
    assert {r.environment["hostname"] for r in results} == {socket.gethostname()}  # captured where it ran


def test_claim_decides_what_runs(executor: SlotExecutor):
    specs = specs_of(SWEEP)
    offered: list[list[str]] = []

    def first_only(group: list[RunSpec]) -> list[RunSpec]:
        offered.append([s.run_id for s in group])
        return group[:1]

    results = list(executor.results(specs, first_only))
    assert len(offered) == 2 and all(len(g) == 2 for g in offered)  # each group is offered before it runs
    assert sorted(r.spec.run_id for r in results) == sorted(g[0] for g in offered)
    assert {r.trained_together for r in results} == {1}


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_group_and_is_replaced(fresh_executor: SlotExecutor, monkeypatch):
    specs = specs_of(SWEEP)
    monkeypatch.setenv(
        "LSTM_BENCH_TEST_CRASH", specs[0].run_id
    )  # the worker SIGKILLs itself on this group, as an OOM kill would
    results = {r.spec.run_id: r for r in fresh_executor.results(specs)}
    crashed = {s.run_id for s in specs if s.config_key == specs[0].config_key}
    assert {i for i, r in results.items() if r.status == "failed"} == crashed
    assert all("worker process died" in results[i].error for i in crashed)
    assert {r.status for i, r in results.items() if i not in crashed} == {"ok"}  # on a fresh worker


def test_gpu_runs_without_a_gpu_are_unsupported(executor: SlotExecutor):
    specs = specs_of(SWEEP.replace("repeats: 2", "repeats: 1") + "device: gpu\n")
    results = list(executor.results(specs))
    assert {r.status for r in results} == {"unsupported"} and all("no GPU" in r.error for r in results)


@needs_ray
@pytest.mark.slow
def test_local_workers_and_ray_give_the_same_runs_and_metrics(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", SWEEP)
    metrics = ["run_id", "status", "train_rmse", "test_rmse", "test_mae", "persistence_rmse", "skill"]
    frames = {}
    for name, extra in {"serial": (), "workers2": ("--workers", "2"), "ray": ("--executor", "ray")}.items():
        result = cli("run", "s.yaml", "--no-report", "--out", name, *extra)
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(tmp_path / name / "results.db") as db:
            frames[name] = pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", db)
    assert len(frames["serial"]) == 4
    for name in ("workers2", "ray"):
        # same seeds, same grouping, same backend: bit-identical metrics across processes and executors
        pd.testing.assert_frame_equal(frames[name][metrics], frames["serial"][metrics], check_exact=True)
    assert set(frames["serial"].concurrency) == {1}
    assert set(frames["workers2"].concurrency) == {2} and set(frames["ray"].concurrency) == {2}


def test_ray_executor_without_ray_is_a_one_line_error(tmp_path: Path, monkeypatch, cli):
    write(tmp_path / "s.yaml", SWEEP)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as without Ray installed
    result = cli("run", "s.yaml", "--executor", "ray")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --executor ray needs Ray, which is not installed: pip install 'lstm-bench[ray]'"
    ]
    assert not (tmp_path / "results").exists()


@needs_ray
@pytest.mark.parametrize("given", ["--ray-address 127.0.0.1:1", "RAY_ADDRESS=127.0.0.1:1"])
def test_a_ray_address_nobody_answers_at_is_a_one_line_error(given: str, tmp_path: Path, cli, monkeypatch):
    write(tmp_path / "s.yaml", SWEEP)
    option = given.split() if given.startswith("--") else []
    if not option:
        monkeypatch.setenv("RAY_ADDRESS", given.split("=")[1])
    result = cli("run", "s.yaml", "--executor", "ray", *option)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {given}: nothing answers there"), lines
    assert not (tmp_path / "results").exists()
