"""The results database: the only writer of results.

SQLite in WAL mode. Each finished run is committed with its epochs in one transaction, so a
killed suite loses at most the runs in flight; a run id is a content hash of its spec, so a
rerun knows what is done.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd
import psutil

from bench.environment import env_id
from bench.errors import UserError
from bench.results import RunResult

DB_NAME = "results.db"
SCHEMA_VERSION = 1

#: Columns of the runs table (and of runs.csv), in order.
RUN_COLUMNS: tuple[str, ...] = (
    "run_id", "scenario", "dataset", "dataset_name", "dataset_params", "dataset_source", "test_fraction", "difference", "scale",
    "look_back", "batch_size", "stateful", "layout", "units", "layers", "epochs", "learning_rate", "optimizer",
    "shuffle", "steps_per_execution", "repeat", "base_seed", "seed", "backend", "engine", "device",
    "eval_every", "target_metric", "target_value",
    "status", "error", "train_rmse", "test_rmse", "test_mae", "persistence_rmse", "skill",
    "samples_per_sec", "steps_per_sec", "compile_seconds", "train_seconds", "predict_samples_per_sec", "peak_rss_mb",
    "n_train_windows", "n_dropped", "epochs_to_target", "seconds_to_target", "diverged_epoch", "epochs_run",
    "notes", "concurrency", "trained_together", "started_at", "finished_at", "env_id", "hostname", "backend_version", "gpus",
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
-- runs being executed right now, one owner each (see Store.claim); a saved run loses its claim
CREATE TABLE IF NOT EXISTS claims (
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL
);
-- every execution of a run, failed ones and retries included (runs keeps only the last)
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, attempt INTEGER NOT NULL, owner TEXT, status TEXT, error TEXT,
    started_at TEXT, finished_at TEXT, hostname TEXT
);
"""

#: A claim whose owner has not refreshed it for this long is considered abandoned.
CLAIM_LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class Owner:
    """Who runs a suite: host, process id and the process's start time (so a reused pid is not mistaken)."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}:{self.started:.2f}"

    def alive(self) -> bool:
        """Whether this owner's process still runs (only answerable on its own host: elsewhere True)."""
        if self.host != socket.gethostname():
            return True
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return False

    @classmethod
    def parse(cls, name: str) -> Owner:
        host, pid, started = name.rsplit(":", 2)
        return cls(host, int(pid), float(started))


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def run_row(result: RunResult) -> dict[str, Any]:
    """A `RunResult` flattened into one runs-table row."""
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row.update(result.spec.as_flat())
    row["run_id"] = result.spec.run_id
    for k in ("status", "error", "n_train_windows", "n_dropped", "epochs_to_target", "seconds_to_target",
              "diverged_epoch", "notes", "concurrency", "trained_together", "started_at", "finished_at"):
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

    def save(self, result: RunResult, *, owner: Owner | None = None, attempt: int | None = None, keep_claim: bool = False) -> None:
        """Commit one finished run, its epochs and its environment in a single transaction.

        The run's claim is released in the same transaction (unless `keep_claim`: a retry follows);
        with `attempt`, the execution is also logged in the attempts table."""
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
            if attempt is not None:
                c.execute(
                    "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (row["run_id"], attempt, owner.name if owner else None, result.status, result.error,
                     result.started_at, result.finished_at, row["hostname"]),
                )
            if not keep_claim:
                c.execute("DELETE FROM claims WHERE run_id = ?", (row["run_id"],))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    # --- claims: two suites on one results folder never run the same configuration twice -----

    def claim(self, run_ids: Iterable[str], owner: Owner, force: bool = False, lease: float = CLAIM_LEASE_SECONDS) -> list[str]:
        """Claim runs for `owner` in one `BEGIN IMMEDIATE` transaction; returns the ids now held.

        Skipped: runs claimed by another live owner, and (unless `force`) runs another process
        finished since this one listed its work. Claims of owners that died (same host, process
        gone) or stopped refreshing them for `lease` seconds are taken over."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        c = self._conn
        now = time.time()
        c.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(ids))
            held = c.execute(f"SELECT run_id, owner, heartbeat FROM claims WHERE run_id IN ({marks})", ids).fetchall()
            taken = set()
            for run_id, other, beat in held:
                if other == owner.name:
                    continue
                if beat < now - lease or not Owner.parse(other).alive():
                    c.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))
                else:
                    taken.add(run_id)
            if not force:
                q = f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND status IN ({','.join('?' * len(DONE_STATUSES))})"
                taken |= {r[0] for r in c.execute(q, [*ids, *DONE_STATUSES])}
            mine = [i for i in ids if i not in taken]
            c.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)", [(i, owner.name, owner.host, owner.pid, now) for i in mine])
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return mine

    def release(self, owner: Owner, run_ids: Iterable[str] | None = None) -> None:
        """Drop `owner`'s claims (all of them, or those on `run_ids`)."""
        if run_ids is None:
            self._conn.execute("DELETE FROM claims WHERE owner = ?", (owner.name,))
        else:
            self._conn.executemany("DELETE FROM claims WHERE run_id = ? AND owner = ?", [(i, owner.name) for i in run_ids])

    def claims(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM claims ORDER BY run_id", self._conn)

    def attempts(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM attempts ORDER BY run_id, attempt", self._conn)

    @contextmanager
    def heartbeat(self, owner: Owner, every: float = CLAIM_LEASE_SECONDS / 4) -> Iterator[None]:
        """Refresh `owner`'s claims every `every` seconds from a thread with its own connection."""
        stop = threading.Event()

        def beat() -> None:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            try:
                while not stop.wait(every):
                    try:
                        conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), owner.name))
                    except sqlite3.Error:  # a busy database: try again at the next beat
                        pass
            finally:
                conn.close()

        thread = threading.Thread(target=beat, name="claims-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

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

