"""Process coordination on one results folder: owners, claims and their heartbeat.

Two `lstm-bench run` processes may share a results folder. Each claims a configuration in the
database's `claims` table (defined in `bench.tables`) inside a SQLite write transaction before
running it, so no configuration runs twice; claims of a process that died are taken over, at once
on its own host and after `CLAIM_LEASE_SECONDS` without a heartbeat elsewhere.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator

import pandas as pd
import psutil

from bench.tables import transaction

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


def release_in_transaction(conn: sqlite3.Connection, run_id: str) -> None:
    """Drop the claim on `run_id` inside the caller's transaction (the store saves and releases at once)."""
    conn.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))


class Claims:
    """The claims of one results database (`Store.claims`)."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path, done_statuses: tuple[str, ...]) -> None:
        self._conn = conn
        self._path = db_path
        self._done = done_statuses

    def claim(
        self, run_ids: Iterable[str], owner: Owner, force: bool = False, lease: float = CLAIM_LEASE_SECONDS
    ) -> list[str]:
        """Claim runs for `owner` in one `BEGIN IMMEDIATE` transaction; returns the ids now held.

        Skipped: runs claimed by another live owner, and (unless `force`) runs another process
        finished since this one listed its work. Claims of owners that died (same host, process
        gone) or stopped refreshing them for `lease` seconds are taken over."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        now = time.time()
        with transaction(self._conn) as c:
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
                done = ",".join("?" * len(self._done))
                q = f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND status IN ({done})"
                taken |= {r[0] for r in c.execute(q, [*ids, *self._done])}
            mine = [i for i in ids if i not in taken]
            c.executemany(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                [(i, owner.name, owner.host, owner.pid, now) for i in mine],
            )
        return mine

    def release(self, owner: Owner, run_ids: Iterable[str] | None = None) -> None:
        """Drop `owner`'s claims (all of them, or those on `run_ids`)."""
        if run_ids is None:
            self._conn.execute("DELETE FROM claims WHERE owner = ?", (owner.name,))
        else:
            self._conn.executemany(
                "DELETE FROM claims WHERE run_id = ? AND owner = ?", [(i, owner.name) for i in run_ids]
            )

    def table(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM claims ORDER BY run_id", self._conn)

    @contextmanager
    def heartbeat(self, owner: Owner, every: float = CLAIM_LEASE_SECONDS / 4) -> Iterator[None]:
        """Refresh `owner`'s claims every `every` seconds from a thread with its own connection."""
        stop = threading.Event()

        def beat() -> None:
            conn = sqlite3.connect(self._path, timeout=60.0, isolation_level=None)
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
