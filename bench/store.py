"""The results database: the only writer of results.

SQLite in WAL mode. Each finished run is committed with its epochs in one transaction, so a
killed suite loses at most the runs in flight; a run id is a content hash of its spec, so a
rerun knows what is done. The tables are defined in `bench.tables`, their columns in `bench.schema`.

The database carries its schema version. Opening it for writing migrates an older one in place
(after a backup copy `results.db.bak-<version>`); reading it never writes, and fills the columns
an older version lacks with their defaults. A newer database, or a file that is not an intact
lstm-bench database, is refused with a `UserError` and left as it is.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

import bench
from bench.claims import Claims, Owner, release_in_transaction
from bench.errors import UserError
from bench.results import RunResult
from bench.schema import Column, flat_values, schema
from bench.tables import ATTEMPTS_COLUMNS, SCHEMA_VERSION, added_column, ddl, meta_sql, transaction
from bench.vocabulary import DONE

log = logging.getLogger(__name__)

DB_NAME = "results.db"
SQLITE_HEADER = b"SQLite format 3\x00"
INVOCATION_KEY = "invocation"


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


def _insert(table: str, names: tuple[str, ...], verb: str = "INSERT") -> str:
    """An INSERT of the columns `names` into `table`, one placeholder each."""
    return f"{verb} INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def run_row(result: RunResult) -> dict[str, Any]:
    """A `RunResult` flattened into one runs-table row."""
    row = {"run_id": result.spec.run_id, **result.spec.as_flat(), **flat_values(result)}
    return {k: _finite(v) for k, v in row.items()}


class Store:
    """A results folder's database. Open it with `Store.open(dir)`; use as a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection, version: int):
        self.path = path
        self.version = version  # the schema version of the file (older than SCHEMA_VERSION only when read-only)
        self._conn = conn
        self.claims = Claims(conn, path, DONE)

    @classmethod
    def open(cls, folder: str | Path, create: bool = True) -> Store:
        """Open (with `create`: create, or migrate to this version) the database of a results folder.

        Without `create` the file must exist and is only read. Raises `UserError` for a file that is
        damaged, not an lstm-bench database, or written by a newer lstm-bench, leaving it as it is."""
        folder = Path(folder)
        db = folder / DB_NAME
        if not create and not db.is_file():
            raise UserError(f"{folder}: no {DB_NAME} here; point at a folder written by 'lstm-bench run'")
        version = _version(db)  # read-only: a file refused here is never touched
        if not create:
            if version is None:
                raise UserError(
                    f"{db}: an empty database, not lstm-bench results; point at a folder written by 'lstm-bench run'"
                )
            return cls(db, _reader(db), version)
        folder.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
        conn = sqlite3.connect(db, timeout=60.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            if version is None:  # in one transaction: a second process sees no tables or all of them
                conn.executescript(f"BEGIN IMMEDIATE; {ddl()} {meta_sql()}; COMMIT;")
            elif version < SCHEMA_VERSION:
                _migrate(db, conn)
        except BaseException:
            conn.close()
            raise
        return cls(db, conn, SCHEMA_VERSION)

    @staticmethod
    def check(folder: str | Path) -> int | None:
        """Refuse (`UserError`) a database in `folder` this version cannot write to: damaged, not
        lstm-bench's, or newer. Writes nothing; returns its schema version, None when there is no
        database yet (or one another process is creating)."""
        return _version(Path(folder) / DB_NAME)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def done_ids(self) -> set[str]:
        """Ids of runs that need no rerun (ok, diverged, unsupported); failed runs are retried."""
        q = f"SELECT run_id FROM runs WHERE status IN ({','.join('?' * len(DONE))})"
        return {r[0] for r in self._conn.execute(q, DONE)}

    def save(
        self, result: RunResult, *, owner: Owner | None = None, attempt: int | None = None, keep_claim: bool = False
    ) -> None:
        """Commit one finished run, its epochs and its environment in a single transaction.

        The run's claim is released in the same transaction (unless `keep_claim`: a retry follows);
        with `attempt`, the execution is also logged in the attempts table."""
        row = run_row(result)
        sc = schema()
        epoch_names = sc.epoch_names
        epochs = [
            {"run_id": row["run_id"], **{k: _finite(v) for k, v in flat_values(e).items()}} for e in result.epochs
        ]
        with transaction(self._conn) as c:
            if result.environment:
                c.execute(
                    "INSERT OR IGNORE INTO environments VALUES (?, ?)",
                    (row["env_id"], json.dumps(result.environment, sort_keys=True)),
                )
            c.execute("DELETE FROM epochs WHERE run_id = ?", (row["run_id"],))
            c.execute(_insert("runs", sc.run_names, "INSERT OR REPLACE"), [row[k] for k in sc.run_names])
            c.executemany(_insert("epochs", epoch_names), [[e[k] for k in epoch_names] for e in epochs])
            if attempt is not None:
                logged = _attempt_row(result, row, attempt, owner)
                c.execute(_insert("attempts", tuple(ATTEMPTS_COLUMNS)), [logged[k] for k in ATTEMPTS_COLUMNS])
            if not keep_claim:
                release_in_transaction(c, row["run_id"])

    def set_invocation(self, record: dict[str, Any]) -> None:
        """Remember how this folder's suite was started (JSON in the meta table), replacing what was there."""
        value = json.dumps(record, sort_keys=True)  # outside the transaction: hold the write lock only to write
        with transaction(self._conn) as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (INVOCATION_KEY, value))

    def invocation(self) -> dict[str, Any] | None:
        """The record `set_invocation` last wrote, or None when there is none (a folder an older
        lstm-bench wrote has none)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (INVOCATION_KEY,)).fetchone()
        return json.loads(row[0]) if row else None

    def attempts(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM attempts ORDER BY run_id, attempt", self._conn)

    def runs(self) -> pd.DataFrame:
        """Every run as one row, columns as the schema's run columns (defaults where the file predates one)."""
        return self._read("runs", schema().run_columns, "started_at, run_id")

    def epochs(self) -> pd.DataFrame:
        return self._read("epochs", schema().epoch_columns, "run_id, epoch")

    def _read(self, table: str, cols: tuple[Column, ...], order: str) -> pd.DataFrame:
        have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
        names = [c.name for c in cols if c.name in have]
        frame = pd.read_sql_query(f"SELECT {', '.join(names)} FROM {table} ORDER BY {order}", self._conn)
        for c in cols:
            if c.name not in have:
                # as SQLite hands them back: booleans are integers
                default = int(c.default) if isinstance(c.default, bool) else c.default
                frame[c.name] = frame[c.backfill] if c.backfill else default
        return frame[[c.name for c in cols]]

    def environments(self) -> pd.DataFrame:
        rows = [{"env_id": i, **json.loads(j)} for i, j in self._conn.execute("SELECT env_id, json FROM environments")]
        return pd.DataFrame(rows)


def _attempt_row(result: RunResult, row: dict[str, Any], attempt: int, owner: Owner | None) -> dict[str, Any]:
    """The attempts-table row that logs this execution (`attempt`) of the run `row` holds."""
    return {
        "run_id": row["run_id"],
        "attempt": attempt,
        "owner": owner.name if owner else None,
        "status": result.status,
        "error": result.error,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "hostname": row["hostname"],
    }


def _reader(db: Path) -> sqlite3.Connection:
    """A read-only connection: it never changes `db`. With no WAL file beside it no writer is
    connected, so it reads the file as immutable and leaves no SQLite side files behind either."""
    immutable = "" if db.with_name(db.name + "-wal").exists() else "&immutable=1"
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro{immutable}", uri=True, timeout=60.0, isolation_level=None)


#: Databases this process checked, by path: the files' stamps (`_stamp`) then, and the version found.
_CHECKED: dict[Path, tuple[tuple, int]] = {}
#: A check is reused only for files last written this long before it: file times are coarse (a write in the
#: same tick as the check could leave the same time; some file systems count in 2 s).
QUIET_NS = 2_000_000_000


def _stamp(db: Path) -> tuple:
    """What changes when anything writes to `db`: the file's and its write-ahead log's identity, size and time."""
    stats = [p.stat() if p.exists() else None for p in (db, db.with_name(db.name + "-wal"))]
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns) if s else None for s in stats)


def _quiet(stamp: tuple) -> bool:
    """Whether the files of `stamp` were last written QUIET_NS or more before now."""
    return all(s is None or time.time_ns() - s[2] >= QUIET_NS for s in stamp)


def _version(db: Path) -> int | None:
    """The schema version of the database at `db`, read without writing, or None when there is none yet
    (no file, an empty one, or one without tables: another process is creating it). Refuses (`UserError`)
    a file that is damaged, not lstm-bench's, or written by a newer lstm-bench. A file checked before and not
    written since is not read again (a run opens its folder's database several times)."""
    if not db.exists() or db.stat().st_size == 0:
        return None
    stamp, checked = _stamp(db), _CHECKED.get(db.resolve())
    if checked is not None and checked[0] == stamp:
        return checked[1]
    version = _read_version(db)
    if version is not None and _quiet(stamp):
        _CHECKED[db.resolve()] = (stamp, version)
    return version


def _read_version(db: Path) -> int | None:
    """`_version`, read from the file: its header, SQLite's quick check, its tables and its meta table."""
    try:
        with open(db, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise UserError(f"{db}: cannot read it ({exc.strerror}); check its permissions") from None
    if head != SQLITE_HEADER:
        raise UserError(
            f"{db}: not an SQLite database (a damaged file, or another program's); "
            "move it aside to start a new results database here, or point at another folder"
        )
    damaged = (
        f"{db}: the results database is damaged ({{}}); restore it from a copy "
        f"(results.db.bak-* if a migration made one), or move it aside to start afresh"
    )
    try:
        with closing(_reader(db)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise UserError(damaged.format(" ".join(check.split())[:200]))
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    except sqlite3.DatabaseError as exc:
        detail = " ".join(str(exc).split())[:200]
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            raise UserError(damaged.format(detail)) from None
        raise UserError(
            f"{db}: cannot read the results database ({detail}); check that it is readable and that no other "
            "program holds a lock on it"
        ) from None
    if not tables:
        return None
    if not {"meta", "runs", "epochs"} <= tables or "schema_version" not in meta:
        raise UserError(
            f"{db}: an SQLite database, but not lstm-bench results (no runs, epochs and meta tables); "
            "point at a folder written by 'lstm-bench run', or move the file aside"
        )
    version = int(meta["schema_version"]) if meta["schema_version"].isdigit() else 0
    if version < 1:
        raise UserError(damaged.format(f"unreadable schema version {meta['schema_version']!r}"))
    if version > SCHEMA_VERSION:
        needs = meta.get("needs", "a newer release")
        raise UserError(
            f"{db}: written by lstm-bench {meta.get('written_by', 'newer')} (results schema {version}); "
            f"this lstm-bench {bench.__version__} reads schema {SCHEMA_VERSION} and older: "
            f"upgrade with pip install -U 'lstm-bench>={needs}'"
        )
    return version


def _migrate(db: Path, conn: sqlite3.Connection) -> None:
    """Bring an older database to SCHEMA_VERSION in one transaction, after a backup copy of it.

    Each version's new columns are added with their declared defaults (`Column.added`, `default`).
    A migration that fails (a full disk, say) leaves the database as it was."""
    try:
        with transaction(conn):
            version = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if version < SCHEMA_VERSION:  # another process may have migrated it while this one waited
                backup = _backup(db, version)
                for n in range(version + 1, SCHEMA_VERSION + 1):
                    for table, cols in schema().added_in(n).items():
                        for c in cols:
                            conn.execute(f"ALTER TABLE {table} ADD COLUMN {added_column(c)}")
                            if c.backfill:
                                conn.execute(f"UPDATE {table} SET {c.name} = {c.backfill}")
                conn.execute(meta_sql())
                log.warning(
                    "%s: migrated results schema %d -> %d (backup: %s)", db, version, SCHEMA_VERSION, backup.name
                )
    except (sqlite3.Error, OSError) as exc:  # rolled back: the database is as it was
        detail = " ".join(str(exc).split())[:200]
        raise UserError(
            f"{db}: could not migrate it to results schema {SCHEMA_VERSION} ({detail}); it is unchanged: "
            "free some disk space or fix its permissions and rerun"
        ) from None


def _backup(db: Path, version: int) -> Path:
    """A consistent copy of `db` (WAL included) as results.db.bak-<version> (or -2, -3, ... when that
    name is taken), written whole or not at all; returns its path."""
    names = (f"{DB_NAME}.bak-{version}" + (f"-{k}" if k > 1 else "") for k in range(1, 1000))
    target = next(p for name in names if not (p := db.with_name(name)).exists())
    tmp = target.with_name(target.name + ".tmp")
    try:
        with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(tmp)) as dst:
            src.backup(dst)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def export_runs(folder: str | Path, fmt: str = "csv", out: str | Path | None = None) -> Path:
    """Write the runs table of a results folder as runs.csv or runs.parquet; returns the path written."""
    folder = Path(folder)
    with closing(Store.open(folder, create=False)) as store:
        frame = store.runs()
    target = Path(out) if out else folder / f"runs.{'parquet' if fmt == 'parquet' else 'csv'}"
    tmp = target.with_name(target.name + ".tmp")
    if fmt == "parquet":
        frame.to_parquet(tmp, index=False)
    elif fmt == "csv":
        frame.to_csv(tmp, index=False)
    else:
        raise UserError(f"export: unknown format '{fmt}'; use csv or parquet")
    tmp.replace(target)  # never leave a half-written file behind
    return target
