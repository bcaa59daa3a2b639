"""The results database: the only writer of results.

SQLite in WAL mode. Each finished run is committed with its epochs in one transaction, so a
killed suite loses at most the runs in flight; a run id is a content hash of its spec, so a
rerun knows what is done.
"""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from bench.environment import env_id
from bench.errors import UserError
from bench.results import RunResult

DB_NAME = "results.db"
SCHEMA_VERSION = 1

#: Columns of the runs table (and of runs.csv), in order.
RUN_COLUMNS: tuple[str, ...] = (
    "run_id", "scenario", "dataset", "dataset_name", "dataset_params", "test_fraction", "difference", "scale",
    "look_back", "batch_size", "stateful", "layout", "units", "layers", "epochs", "learning_rate", "optimizer",
    "shuffle", "steps_per_execution", "repeat", "base_seed", "seed", "backend", "engine", "device",
    "eval_every", "target_metric", "target_value",
    "status", "error", "train_rmse", "test_rmse", "test_mae", "persistence_rmse", "skill",
    "samples_per_sec", "steps_per_sec", "compile_seconds", "train_seconds", "predict_samples_per_sec", "peak_rss_mb",
    "n_train_windows", "n_dropped", "epochs_to_target", "seconds_to_target", "diverged_epoch", "epochs_run",
    "notes", "concurrency", "started_at", "finished_at", "env_id", "hostname", "backend_version", "gpus",
)
EPOCH_COLUMNS: tuple[str, ...] = ("run_id", "epoch", "loss", "seconds", "test_rmse", "test_mae", "train_rmse")
DONE_STATUSES = ("ok", "diverged", "unsupported")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS environments (env_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs ({", ".join(c + (" TEXT PRIMARY KEY" if c == "run_id" else "") for c in RUN_COLUMNS)});
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL, loss REAL, seconds REAL, test_rmse REAL, test_mae REAL, train_rmse REAL,
    PRIMARY KEY (run_id, epoch)
);
"""


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def run_row(result: RunResult) -> dict[str, Any]:
    """A `RunResult` flattened into one runs-table row."""
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row.update(result.spec.as_flat())
    row["run_id"] = result.spec.run_id
    for k in ("status", "error", "n_train_windows", "n_dropped", "epochs_to_target", "seconds_to_target",
              "diverged_epoch", "notes", "concurrency", "started_at", "finished_at"):
        row[k] = getattr(result, k)
    if result.metrics is not None:
        row.update(asdict(result.metrics))
        row["skill"] = result.metrics.skill
    if result.throughput is not None:
        row.update(asdict(result.throughput))
    row["epochs_run"] = len(result.epochs)
    env = result.environment
    row["env_id"] = env_id(env) if env else None
    for k in ("hostname", "backend_version", "gpus"):
        row[k] = env.get(k)
    return {k: _finite(v) if isinstance(v, float) else v for k, v in row.items()}


class Store:
    """A results folder's database. Open it with `Store.open(dir)`; use as a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn

    @classmethod
    def open(cls, folder: str | Path, create: bool = True) -> Store:
        folder = Path(folder)
        db = folder / DB_NAME
        if not create and not db.is_file():
            raise UserError(f"{folder}: no {DB_NAME} here; point at a folder written by 'lstm-bench run'")
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
        conn = sqlite3.connect(db, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if create:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return cls(db, conn)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def done_ids(self) -> set[str]:
        """Ids of runs that need no rerun (ok, diverged, unsupported); failed runs are retried."""
        q = f"SELECT run_id FROM runs WHERE status IN ({','.join('?' * len(DONE_STATUSES))})"
        return {r[0] for r in self._conn.execute(q, DONE_STATUSES)}

    def save(self, result: RunResult) -> None:
        """Commit one finished run, its epochs and its environment in a single transaction."""
        row = run_row(result)
        cols = ", ".join(RUN_COLUMNS)
        marks = ", ".join("?" * len(RUN_COLUMNS))
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if result.environment:
                c.execute("INSERT OR IGNORE INTO environments VALUES (?, ?)", (row["env_id"], json.dumps(result.environment, sort_keys=True)))
            c.execute("DELETE FROM epochs WHERE run_id = ?", (row["run_id"],))
            c.execute(f"INSERT OR REPLACE INTO runs ({cols}) VALUES ({marks})", [row[k] for k in RUN_COLUMNS])
            c.executemany(
                "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(row["run_id"], e.epoch, _finite(e.loss), e.seconds, e.test_rmse, e.test_mae, e.train_rmse) for e in result.epochs],
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def runs(self) -> pd.DataFrame:
        """Every run as one row, columns as `RUN_COLUMNS`."""
        return pd.read_sql_query(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY started_at, run_id", self._conn)

    def epochs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM epochs ORDER BY run_id, epoch", self._conn)

    def environments(self) -> pd.DataFrame:
        rows = [{"env_id": i, **json.loads(j)} for i, j in self._conn.execute("SELECT env_id, json FROM environments")]
        return pd.DataFrame(rows)


def export_runs(folder: str | Path, fmt: str = "csv", out: str | Path | None = None) -> Path:
    """Write the runs table of a results folder as runs.csv or runs.parquet; returns the path written."""
    folder = Path(folder)
    with closing(Store.open(folder, create=False)) as store:
        frame = store.runs()
    target = Path(out) if out else folder / f"runs.{ 'parquet' if fmt == 'parquet' else 'csv'}"
    tmp = target.with_name(target.name + ".tmp")
    if fmt == "parquet":
        frame.to_parquet(tmp, index=False)
    elif fmt == "csv":
        frame.to_csv(tmp, index=False)
    else:
        raise UserError(f"export: unknown format '{fmt}'; use csv or parquet")
    tmp.replace(target)  # never leave a half-written file behind
    return target

