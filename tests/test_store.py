"""The results database: one transaction per run, done ids, export."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import UserError
from bench.results import EpochRow, Metrics, RunResult, Throughput
from bench.scenario import parse_scenario_text
from bench.runspec import RunSpec
from bench.specs import expand
from bench.schema import schema
from bench.store import SCHEMA_VERSION, Store, export_runs
from bench.tables import INTRODUCED_BY, transaction


@pytest.fixture
def specs() -> list[RunSpec]:
    return expand(parse_scenario_text("name: s\ndataset: airline\nbatch_size: [1, 2, 4]\nepochs: 2\n", Path("s.yaml")))


def ok(spec: RunSpec, rmse: float = 50.0) -> RunResult:
    return RunResult(
        spec,
        "ok",
        metrics=Metrics(20.0, rmse, rmse * 0.8, 48.04),
        throughput=Throughput(1000.0, 1000.0 / spec.batch_size, 1.5, 3.0, 5000.0, 300.0),
        epochs=(EpochRow(1, 0.5, 2.0), EpochRow(2, 0.25, 1.0, test_rmse=rmse)),
        n_train_windows=92,
        n_dropped=0,
        environment={"hostname": "h", "backend_version": "2.21"},
        started_at="2026-11-28T00:00:00",
    )


def test_saved_run_reads_back_with_its_epochs_and_environment(tmp_path: Path, specs):
    with Store.open(tmp_path) as store:
        store.save(ok(specs[0]))
        runs, epochs, envs = store.runs(), store.epochs(), store.environments()
    assert list(runs.columns) == list(schema().run_names)
    row = runs.iloc[0]
    assert row.run_id == specs[0].run_id and row.status == "ok" and row.skill == pytest.approx(1 - 50 / 48.04)
    assert row.batch_size == specs[0].batch_size and row.epochs_run == 2 and row.hostname == "h"
    assert epochs.loss.tolist() == [0.5, 0.25] and pd.isna(epochs.test_rmse[0]) and epochs.test_rmse[1] == 50.0
    assert envs.iloc[0].env_id == row.env_id
    stored = row.to_dict()
    assert {k: stored[k] for k in specs[0].as_flat()} == {
        k: (int(v) if isinstance(v, bool) else v) for k, v in specs[0].as_flat().items()
    }


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
    bad = dataclasses.replace(
        ok(specs[0]), epochs=(EpochRow(1, 0.5, 1.0), EpochRow(1, 0.4, 1.0))
    )  # duplicate epoch key
    with Store.open(tmp_path) as store:
        with pytest.raises(sqlite3.IntegrityError):
            store.save(bad)
        assert store.runs().empty and store.epochs().empty


@pytest.mark.parametrize("fault", [RuntimeError, KeyboardInterrupt])
def test_a_transaction_interrupted_midway_writes_nothing(fault: type[BaseException], tmp_path: Path):
    with closing(sqlite3.connect(tmp_path / "t.db", isolation_level=None)) as conn:
        conn.execute("CREATE TABLE t (x)")
        with pytest.raises(fault):
            with transaction(conn):
                conn.execute("INSERT INTO t VALUES (1)")
                raise fault
        assert not conn.in_transaction
        with transaction(conn):  # the connection is fit for the next one
            conn.execute("INSERT INTO t VALUES (2)")
    with closing(sqlite3.connect(tmp_path / "t.db")) as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_the_schema_version_is_the_newest_columns_and_each_version_names_its_release():
    """A column added without a version bump (or a bump without a column) fails here, not in a user's migration."""
    sc = schema()
    assert max(c.added for c in (*sc.run_columns, *sc.epoch_columns)) == SCHEMA_VERSION
    assert sorted(INTRODUCED_BY) == list(range(1, SCHEMA_VERSION + 1))


def test_the_invocation_is_remembered_and_a_reader_sees_it(tmp_path: Path):
    record = {"command": ["lstm-bench", "run", "s.yaml"], "cwd": "/somewhere", "workers": 2}
    with Store.open(tmp_path) as store:
        assert store.invocation() is None
        store.set_invocation({"command": ["an", "earlier", "one"]})
        store.set_invocation(record)  # the latest replaces it
        assert store.invocation() == record
    with Store.open(tmp_path, create=False) as reader:
        assert reader.invocation() == record


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


# --- versions and damage: the store's contract for files it did not write itself ----------------

V010 = Path(__file__).parent / "data" / "v0.1.0"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def old_folder(tmp_path: Path) -> Path:
    """A copy of a results folder written by lstm-bench 0.1.0 (results schema 1)."""
    return Path(shutil.copytree(V010 / "fit", tmp_path / "fit"))


def test_reading_an_older_database_fills_new_columns_and_writes_nothing(old_folder: Path):
    before = digest(old_folder / "results.db")
    with Store.open(old_folder, create=False) as store:
        assert store.version == 1
        runs = store.runs()
    assert list(runs.columns) == list(schema().run_names) and len(runs) == 8
    assert set(runs.protocol) == {2}  # what 0.1.0 ran
    assert runs.base_learning_rate.equals(runs.learning_rate) and set(runs.lr_scaling) == {"none"}  # no scaling then
    assert digest(old_folder / "results.db") == before and sorted(p.name for p in old_folder.iterdir()) == [
        "results.db"
    ]


def test_opening_an_older_database_for_writing_migrates_it_after_a_backup(old_folder: Path):
    db = old_folder / "results.db"
    with Store.open(old_folder, create=False) as store:
        old_runs = store.runs()
    with Store.open(old_folder) as store:
        assert store.version == SCHEMA_VERSION
        assert store.runs().equals(old_runs)  # the migrated rows read as the old file did (base_learning_rate too)
        assert len(store.done_ids()) == 8
    with closing(sqlite3.connect(db)) as c:
        assert dict(c.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
        assert "protocol" in {r[1] for r in c.execute("PRAGMA table_info(runs)")}
    backup = old_folder / "results.db.bak-1"
    with closing(sqlite3.connect(backup)) as c:  # the backup is the old database, whole
        assert c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        assert "protocol" not in {r[1] for r in c.execute("PRAGMA table_info(runs)")}
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone() == (8,)
    with Store.open(old_folder) as store:  # a second open finds nothing to do
        assert store.version == SCHEMA_VERSION


def test_an_older_database_has_no_invocation_and_takes_one_once_migrated(old_folder: Path):
    with Store.open(old_folder, create=False) as reader:
        assert reader.version == 1 and reader.invocation() is None
    with Store.open(old_folder) as store:
        assert store.invocation() is None
        store.set_invocation({"command": ["lstm-bench", "run"]})
        assert store.invocation() == {"command": ["lstm-bench", "run"]} and len(store.done_ids()) == 8
    with Store.open(old_folder, create=False) as reader:
        assert reader.invocation() == {"command": ["lstm-bench", "run"]}


def _not_sqlite(db: Path) -> None:
    db.write_text("run_id,status\nabc,ok\n")


def _truncated(db: Path) -> None:
    shutil.copy(V010 / "fit" / "results.db", db)
    with open(db, "r+b") as fh:
        fh.truncate(20_000)


def _foreign(db: Path) -> None:
    with closing(sqlite3.connect(db)) as c:
        c.execute("CREATE TABLE things (x)")
        c.commit()


def _newer(db: Path) -> None:
    shutil.copy(V010 / "fit" / "results.db", db)
    with closing(sqlite3.connect(db)) as c:
        c.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("schema_version", "99"), ("needs", "9.1.0"), ("written_by", "9.2.0")],
        )
        c.commit()


DAMAGE = {
    "not sqlite": (_not_sqlite, "not an SQLite database"),
    "truncated": (_truncated, "the results database is damaged"),
    "foreign": (_foreign, "not lstm-bench results"),
    "newer": (_newer, r"written by lstm-bench 9\.2\.0 \(results schema 99\); .* pip install -U 'lstm-bench>=9\.1\.0'"),
}


@pytest.mark.parametrize("create", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_foreign_or_newer_database_is_refused_and_left_as_it_is(case: str, create: bool, tmp_path: Path):
    make, message = DAMAGE[case]
    db = tmp_path / "results.db"
    make(db)
    before = digest(db)
    with pytest.raises(UserError, match=message) as info:
        Store.open(tmp_path, create=create)
    assert str(db) in str(info.value) and "\n" not in str(info.value)
    assert digest(db) == before and [p.name for p in tmp_path.iterdir()] == ["results.db"]


def test_the_protocol_is_part_of_the_run_id(specs):
    later = dataclasses.replace(specs[0], protocol=specs[0].protocol + 1)
    assert later.run_id != specs[0].run_id and later.config_key != specs[0].config_key


def test_an_empty_file_is_a_new_database_to_a_writer_and_an_error_to_a_reader(tmp_path: Path):
    (tmp_path / "results.db").write_bytes(b"")  # what a process killed right after creating it leaves
    with pytest.raises(UserError, match="an empty database, not lstm-bench results"):
        Store.open(tmp_path, create=False)
    Store.check(tmp_path)
    with Store.open(tmp_path) as store:
        assert store.version == SCHEMA_VERSION and store.runs().empty


def test_reading_after_a_killed_writer_sees_its_commits_and_changes_no_file(old_folder: Path):
    """A writer killed mid-suite leaves committed runs in the WAL: a reader sees them, and neither
    results.db nor the WAL changes (a read-write connection would checkpoint it on close)."""
    writer = (
        "import os, sqlite3\n"
        "c = sqlite3.connect('results.db')\n"
        "c.execute(\"UPDATE runs SET status = 'failed' WHERE rowid = 1\")\n"
        "c.commit()\n"
        "os._exit(0)\n"  # no close: the WAL stays, as after kill -9
    )
    subprocess.run([sys.executable, "-c", writer], cwd=old_folder, check=True)
    data = ("results.db", "results.db-wal")  # not the -shm file: SQLite's index of the WAL, rebuilt by readers
    before = {name: digest(old_folder / name) for name in data}
    files = sorted(p.name for p in old_folder.iterdir())
    with Store.open(old_folder, create=False) as store:
        assert (store.runs().status == "failed").sum() == 1
    assert {name: digest(old_folder / name) for name in data} == before
    assert sorted(p.name for p in old_folder.iterdir()) == files


def test_a_database_is_checked_once_until_it_is_written_again(old_folder: Path, monkeypatch):
    import os

    from bench import store as store_module

    db = old_folder / "results.db"
    past = time.time() - 60  # written a minute ago: file times are coarse, so a fresh file is always read again
    os.utime(db, (past, past))
    reads = []
    read_version = store_module._read_version
    monkeypatch.setattr(store_module, "_read_version", lambda path: reads.append(path) or read_version(path))
    for _ in range(3):  # as a run does: check, read its plans, open it
        Store.check(old_folder)
        Store.open(old_folder, create=False).close()
    assert len(reads) == 1
    with open(db, "r+b") as fh:  # damaged afterwards: the next check sees it
        fh.seek(len(store_module.SQLITE_HEADER) + 200)
        fh.write(b"\xff" * 4000)
    with pytest.raises(UserError, match="damaged"):
        Store.check(old_folder)
    assert len(reads) == 2
