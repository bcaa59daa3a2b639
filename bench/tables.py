"""The results database's tables, each defined here and nowhere else, and the transaction writes use.

- meta: key/value rows: the schema version, the release that wrote the file and the one a reader
  needs (`meta_sql`), and the invocation that started the folder's suite (`Store.set_invocation`);
- environments: the machine and software each run ran on, as JSON by env_id;
- runs and epochs: their columns come from `bench.schema` (`Column.added` says which schema
  version introduced each one, and `bench.store` migrates an older file with them);
- attempts: every execution of a run (`ATTEMPTS_COLUMNS`);
- claims: runs being executed right now, one owner each; a saved run loses its claim (`bench.claims`).

`SCHEMA_VERSION` is the version of these definitions. Writes of more than one statement go
through `transaction`, except the script that creates the tables (`executescript` runs its own
BEGIN ... COMMIT).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterator

import bench
from bench.schema import Column, schema

SCHEMA_VERSION = 9
#: The lstm-bench release that introduced each schema version (what a reader of that version needs).
INTRODUCED_BY = {
    1: "0.1.0",
    2: "0.2.0",
    3: "0.3.0",
    4: "0.4.0",
    5: "0.5.0",
    6: "0.6.0",
    7: "0.7.0",
    8: "0.8.0",
    9: "0.10.0",
}

#: Every execution of a run, failed ones and retries included (runs keeps only the last): name -> SQL type.
ATTEMPTS_COLUMNS = {
    "run_id": "TEXT NOT NULL",
    "attempt": "INTEGER NOT NULL",
    "owner": "TEXT",
    "status": "TEXT",
    "error": "TEXT",
    "started_at": "TEXT",
    "finished_at": "TEXT",
    "hostname": "TEXT",
}


def _literal(value: Any) -> str:
    """`value` as an SQL literal (column defaults, and the meta rows of a script)."""
    if value is None:
        return "NULL"
    if isinstance(value, (bool, int, float)):
        return str(int(value) if isinstance(value, bool) else value)
    return "'" + str(value).replace("'", "''") + "'"


def added_column(c: Column) -> str:
    """The definition of a column added after version 1: older rows read its default."""
    return f"{c.name} {c.sql_type} DEFAULT {_literal(c.default)}"


def ddl() -> str:
    """CREATE TABLE statements for every table, as this version lays them out."""
    sc = schema()
    # columns added after version 1 are declared as a migration adds them, with their default
    run_cols = ", ".join(
        "run_id TEXT PRIMARY KEY" if c.name == "run_id" else added_column(c) if c.added > 1 else c.name
        for c in sc.run_columns
    )
    epoch_cols = ", ".join(
        "run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE"
        if c.name == "run_id"
        else f"{c.name} {c.sql_type}" + (" NOT NULL" if c.name == "epoch" else "")
        for c in sc.epoch_columns
    )
    attempt_cols = ", ".join(f"{name} {sql}" for name, sql in ATTEMPTS_COLUMNS.items())
    return f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS environments (env_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs ({run_cols});
CREATE TABLE IF NOT EXISTS epochs ({epoch_cols}, PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS attempts ({attempt_cols});
CREATE TABLE IF NOT EXISTS claims (
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL
);
"""


def meta_sql() -> str:
    """The meta rows this version writes: its schema version, its own version, and what a reader needs."""
    rows = {"schema_version": SCHEMA_VERSION, "written_by": bench.__version__, "needs": INTRODUCED_BY[SCHEMA_VERSION]}
    return "INSERT OR REPLACE INTO meta VALUES " + ", ".join(f"('{k}', {_literal(str(v))})" for k, v in rows.items())


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction on `conn` (opened with isolation_level=None): BEGIN IMMEDIATE, so it waits
    for other writers up front rather than failing midway; COMMIT when the block ends; ROLLBACK when
    anything escapes it, a failed COMMIT or a KeyboardInterrupt included, which is then re-raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
