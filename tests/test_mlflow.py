"""Export to MLflow against a real local store: one MLflow run per lstm-bench run, twice over, and live logging."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from bench.vocabulary import MLFLOW_STATE
from clitools import run_in_process, write

mlflow = pytest.importorskip("mlflow")

SCENARIO = """
name: ml
dataset: {name: sine, length: 120, period: 12}
look_back: 2
batch_size: 4
stateful: true
engine: [scan, fit]
backend: jax
epochs: 3
eval_every: 1
validation_fraction: 0.2
repeats: 2
"""

# MLflow is an optional integration: its end-to-end checks run with the slow ones
pytestmark = pytest.mark.slow


def mlflow_runs(uri: str, experiment: str = "lstm-bench") -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment])


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 runs: 2 ok on scan, 2 unsupported (stateful fit on JAX drops the state)."""
    root = tmp_path_factory.mktemp("ml")
    write(root / "ml.yaml", SCENARIO)
    done = run_in_process("run", "ml.yaml", "--out", "out", cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "out"


def test_exporting_twice_gives_one_mlflow_run_per_run(results: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = run_in_process("export", str(results), "--format", "mlflow", "--tracking-uri", uri, cwd=tmp_path)
    assert first.returncode == 0, first.stderr and "4 created" in first.stdout
    second = run_in_process("export", str(results), "--format", "mlflow", "--tracking-uri", uri, cwd=tmp_path)
    assert second.returncode == 0 and "0 created, 0 replaced, 4 skipped" in second.stdout, second.stdout

    found = mlflow_runs(uri)
    children = found[found["tags.lstm_bench.run_id"].notna()]
    parents = found[found["tags.lstm_bench.scenario_parent"].notna()]
    runs = pd.read_csv(results / "runs.csv")
    assert len(parents) == 1 and sorted(children["tags.lstm_bench.run_id"]) == sorted(runs.run_id)
    assert set(children["tags.mlflow.parentRunId"]) == set(parents.run_id)
    merged = children.merge(runs, left_on="tags.lstm_bench.run_id", right_on="run_id")
    assert (merged["tags.status"] == merged["status_y"]).all() and set(merged["status_y"]) == {"ok", "unsupported"}
    assert (merged["status_x"] == merged["status_y"].map(MLFLOW_STATE)).all()  # MLflow's own terminal state
    assert (merged["params.batch_size"] == merged["batch_size"].astype(str)).all()
    assert (merged["params.learning_rate"] == merged["learning_rate"].astype(str)).all()
    ok = merged[merged["status_y"] == "ok"]
    assert (ok["metrics.test_rmse"] == ok["test_rmse"]).all() and (ok["metrics.val_rmse"] == ok["val_rmse"]).all()
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(ok.iloc[0]["run_id_x"], "epoch.val_rmse")
    assert [m.step for m in history] == [1, 2, 3]
    artifacts = [a.path for a in client.list_artifacts(parents.iloc[0]["run_id"], "report")]
    assert "report/index.html" in artifacts


def test_a_rerun_run_replaces_its_mlflow_run(results: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ("export", "--format", "mlflow", "--tracking-uri", uri)
    assert run_in_process(*export, str(results), cwd=tmp_path).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    with closing(sqlite3.connect(copy / "results.db")) as c:  # as if one run finished again later
        c.execute("UPDATE runs SET finished_at = '2099-01-01T00:00:00+00:00' WHERE rowid = 1")
        c.commit()
    again = run_in_process(*export, str(copy), cwd=tmp_path)
    assert "0 created, 1 replaced, 3 skipped" in again.stdout, again.stdout
    assert len(mlflow_runs(uri)) == 5  # 4 runs and the parent, the replaced one deleted


@pytest.mark.slow  # about 13 s; the export above runs by default
def test_run_logs_each_run_to_mlflow_as_it_finishes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write(tmp_path / "s.yaml", SCENARIO.replace("engine: [scan, fit]", "engine: scan"))
    done = run_in_process("run", "s.yaml", "--out", "out", "--no-report", "--mlflow", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = mlflow_runs(uri)
    assert found["tags.lstm_bench.run_id"].notna().sum() == 2
    again = run_in_process("export", "out", "--format", "mlflow", "--tracking-uri", uri, cwd=tmp_path)
    assert "0 created, 0 replaced, 2 skipped" in again.stdout, again.stdout


def test_without_mlflow_the_export_is_one_line_and_exit_2(results: Path, tmp_path: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    done = run_in_process("export", str(results), "--format", "mlflow", cwd=tmp_path)
    assert done.returncode == 2 and "pip install '.[mlflow]' in the lstm-bench checkout" in done.stderr
    assert done.stderr.count("\n") <= 1 and "Traceback" not in done.stderr


def test_a_tracking_uri_mlflow_cannot_use_is_one_line_and_exit_2(results: Path, tmp_path: Path) -> None:
    done = run_in_process("export", str(results), "--format", "mlflow", "--tracking-uri", "bogus://x", cwd=tmp_path)
    assert done.returncode == 2 and "mlflow: cannot use tracking URI bogus://x" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
