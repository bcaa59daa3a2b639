"""The results database: one transaction per run, done ids, export."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import UserError
from bench.results import EpochRow, Metrics, RunResult, Throughput
from bench.scenario import parse_scenario_text
from bench.specs import RunSpec, expand
from bench.store import RUN_COLUMNS, Store, export_runs


@pytest.fixture
def specs() -> list[RunSpec]:
    return expand(parse_scenario_text("name: s\ndataset: airline\nbatch_size: [1, 2, 4]\nepochs: 2\n", Path("s.yaml")))


def ok(spec: RunSpec, rmse: float = 50.0) -> RunResult:
    return RunResult(
        spec, "ok", metrics=Metrics(20.0, rmse, rmse * 0.8, 48.04),
        throughput=Throughput(1000.0, 1000.0 / spec.batch_size, 1.5, 3.0, 5000.0, 300.0),
        epochs=(EpochRow(1, 0.5, 2.0), EpochRow(2, 0.25, 1.0, test_rmse=rmse)), n_train_windows=92, n_dropped=0,
        environment={"hostname": "h", "backend_version": "2.21"}, started_at="2026-11-28T00:00:00",
    )


def test_saved_run_reads_back_with_its_epochs_and_environment(tmp_path: Path, specs):
    with Store.open(tmp_path) as store:
        store.save(ok(specs[0]))
        runs, epochs, envs = store.runs(), store.epochs(), store.environments()
    assert list(runs.columns) == list(RUN_COLUMNS)
    row = runs.iloc[0]
    assert row.run_id == specs[0].run_id and row.status == "ok" and row.skill == pytest.approx(1 - 50 / 48.04)
    assert row.batch_size == specs[0].batch_size and row.epochs_run == 2 and row.hostname == "h"
    assert epochs.loss.tolist() == [0.5, 0.25] and pd.isna(epochs.test_rmse[0]) and epochs.test_rmse[1] == 50.0
    assert envs.iloc[0].env_id == row.env_id
    stored = row.to_dict()
    assert {k: stored[k] for k in specs[0].as_flat()} == {k: (int(v) if isinstance(v, bool) else v) for k, v in specs[0].as_flat().items()}


def test_failed_runs_are_not_done_and_a_rerun_replaces_them(tmp_path: Path, specs):
    with Store.open(tmp_path) as store:
        store.save(RunResult(specs[0], "failed", error="boom"))
        store.save(dataclasses.replace(ok(specs[1]), status="diverged", metrics=None, diverged_epoch=2))
        store.save(RunResult(specs[2], "unsupported", error="no GPU"))
        assert store.done_ids() == {specs[1].run_id, specs[2].run_id}
        store.save(ok(specs[0], 42.0))
        assert store.done_ids() == {s.run_id for s in specs}
        runs = store.runs()
    assert len(runs) == 3 and runs.set_index("run_id").loc[specs[0].run_id, "test_rmse"] == 42.0


def test_a_failing_save_leaves_nothing_half_written(tmp_path: Path, specs):
    bad = dataclasses.replace(ok(specs[0]), epochs=(EpochRow(1, 0.5, 1.0), EpochRow(1, 0.4, 1.0)))  # duplicate epoch key
    with Store.open(tmp_path) as store:
        with pytest.raises(sqlite3.IntegrityError):
            store.save(bad)
        assert store.runs().empty and store.epochs().empty


def test_export_writes_csv_and_parquet_atomically(tmp_path: Path, specs):
    with Store.open(tmp_path) as store:
        for s in specs:
            store.save(ok(s))
    csv = export_runs(tmp_path)
    pq = export_runs(tmp_path, "parquet")
    assert (csv.name, pq.name) == ("runs.csv", "runs.parquet")
    assert len(pd.read_csv(csv)) == len(pd.read_parquet(pq)) == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_opening_a_folder_without_a_database_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="no results.db"):
        Store.open(tmp_path / "nothing", create=False)
