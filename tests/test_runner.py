"""The driver loop and the store's claims, in-process with a fake executor (no Keras, fast)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from collections.abc import Iterator

import pytest

from bench.results import RunResult
from bench.executors import execution_groups
from bench.runner import Terminated, drive, second_interrupt_exits, sigint_deferred
from bench.scenario import load_scenario
from bench.runspec import RunSpec
from bench.specs import expand
from bench.claims import Owner
from bench.store import Store
from clitools import write

SCENARIO = (
    "name: r\ndataset: {name: sine, length: 120, period: 12}\nlook_back: 2\nbatch_size: [1, 2, 4]\n"
    "backend: jax\nengine: scan\nepochs: 2\nrepeats: 2\n"
)


@pytest.fixture
def specs(tmp_path: Path) -> list[RunSpec]:
    return expand(load_scenario(write(tmp_path / "s.yaml", SCENARIO)))


class FakeExecutor:
    """Yields a result per spec without training; `fail` maps run ids to how many attempts fail."""

    def __init__(self, fail: dict[str, int] | None = None):
        self.fail = dict(fail or {})
        self.executed: list[str] = []

    def results(self, specs: list[RunSpec], claim=None) -> Iterator[RunResult]:  # noqa: ANN001
        for group in execution_groups(specs):
            for spec in claim(group) if claim else group:
                self.executed.append(spec.run_id)
                if self.fail.get(spec.run_id, 0) > 0:
                    self.fail[spec.run_id] -= 1
                    yield RunResult(spec, "failed", error="worker process died during the run (boom)")
                else:
                    yield RunResult(spec, "ok", environment={"hostname": "fake"})

    def shutdown(self, kill: bool = False) -> None:
        pass


def test_drive_commits_every_result_and_leaves_no_claims(tmp_path: Path, specs):
    with Store.open(tmp_path / "out") as store:
        outcome = drive(FakeExecutor(), store, specs)
        assert set(outcome.results) == {s.run_id for s in specs} and not outcome.failed
        assert store.done_ids() == {s.run_id for s in specs}
        assert store.claims.table().empty
        assert sorted(store.attempts().run_id) == sorted(s.run_id for s in specs)


def test_retries_rerun_a_failed_run_and_log_each_attempt(tmp_path: Path, specs):
    bad = specs[0].run_id
    with Store.open(tmp_path / "out") as store:
        fake = FakeExecutor({bad: 1})
        outcome = drive(fake, store, specs, retries=1)
        assert not outcome.failed and outcome.attempts[bad] == 2
        assert fake.executed.count(bad) == 2 and len(fake.executed) == len(specs) + 1
        attempts = store.attempts()
        assert list(attempts[attempts.run_id == bad].status) == ["failed", "ok"]
        assert store.runs().set_index("run_id").status[bad] == "ok"


def test_without_retries_a_failed_run_stays_failed(tmp_path: Path, specs):
    bad = specs[0].run_id
    with Store.open(tmp_path / "out") as store:
        outcome = drive(FakeExecutor({bad: 5}), store, specs, retries=2)
        assert [r.spec.run_id for r in outcome.failed] == [bad] and outcome.attempts[bad] == 3
        assert store.runs().set_index("run_id").status[bad] == "failed"
        assert bad not in store.done_ids() and store.claims.table().empty


def test_runs_claimed_by_a_live_process_are_skipped(tmp_path: Path, specs):
    other = Owner.current()
    other = Owner(other.host, os.getppid(), __import__("psutil").Process(os.getppid()).create_time())  # alive, not us
    with Store.open(tmp_path / "out") as store:
        held = [s.run_id for s in specs[:2]]
        assert store.claims.claim(held, other) == held
        fake = FakeExecutor()
        outcome = drive(fake, store, specs)
        assert set(fake.executed) == {s.run_id for s in specs[2:]}
        assert {s.run_id for s in outcome.skipped} == set(held)
        assert sorted(store.claims.table().run_id) == sorted(held)  # the other owner's claims are not ours to drop


def test_claims_of_a_dead_or_silent_owner_are_taken_over(tmp_path: Path, specs):
    me = Owner.current()
    dead = Owner(me.host, 2**22 + 12345, 1.0)  # no such process
    remote = Owner("some-other-host", 1, 1.0)  # liveness unknown: only the lease can expire it
    ids = [s.run_id for s in specs]
    with Store.open(tmp_path / "out") as store:
        store.claims.claim(ids[:1], dead)
        store.claims.claim(ids[1:2], remote)
        assert store.claims.claim(ids[:2], me) == ids[:1]
        assert store.claims.claim(ids[1:2], me, lease=0.0) == ids[1:2]  # its heartbeat is older than the lease


def test_finished_runs_are_not_claimed_again_unless_forced(tmp_path: Path, specs):
    me = Owner.current()
    with Store.open(tmp_path / "out") as store:
        store.save(RunResult(specs[0], "ok"))
        assert store.claims.claim([specs[0].run_id], me) == []
        assert store.claims.claim([specs[0].run_id], me, force=True) == [specs[0].run_id]
        store.save(RunResult(specs[0], "ok"), owner=me, attempt=1)
        assert store.claims.table().empty  # saving releases the claim in the same transaction


def test_heartbeat_refreshes_claims(tmp_path: Path, specs):
    me = Owner.current()
    with Store.open(tmp_path / "out") as store:
        store.claims.claim([specs[0].run_id], me)
        before = store.claims.table().heartbeat[0]
        with store.claims.heartbeat(me, every=0.05):
            time.sleep(0.3)
        assert store.claims.table().heartbeat[0] > before


@pytest.fixture
def sigint_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


def test_sigint_is_deferred_until_the_block_ends(sigint_restored):
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts in a terminal
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached = True
    assert reached and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored(sigint_restored):
    """A job a script starts in the background inherits an ignored Ctrl-C; lstm-bench leaves it so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with second_interrupt_exits(130), sigint_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


@pytest.fixture
def sigterm_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def test_sigterm_stops_like_ctrl_c_after_the_save_in_progress(sigint_restored, sigterm_restored):
    """SIGTERM raises `Terminated` (a KeyboardInterrupt, so the suite stops as on Ctrl-C), held back
    while a save runs; both handlers are put back afterwards."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reached = False
    with pytest.raises(Terminated):
        with second_interrupt_exits(130, 143), sigint_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            reached = True
    assert reached and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_an_ignored_or_handled_sigterm_is_left_alone(sigint_restored, sigterm_restored):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with second_interrupt_exits(130, 143), sigint_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN

    def own(signum: int, frame: object) -> None:  # an embedding program's handler
        pass

    signal.signal(signal.SIGTERM, own)
    with second_interrupt_exits(130, 143):
        assert signal.getsignal(signal.SIGTERM) is own


def test_ctrl_c_during_a_save_commits_it_whole(tmp_path: Path, specs, sigint_restored):
    """The driver saves with SIGINT deferred: a Ctrl-C arriving mid-transaction cannot leave half a run."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts in a terminal
    store = Store.open(tmp_path / "out")
    real_execute = store._conn.execute
    calls = []

    class Conn:  # sqlite3.Connection cannot be patched: wrap it, raising SIGINT on the runs INSERT
        def __getattr__(self, name):  # noqa: ANN001, ANN204
            return getattr(store._conn_real, name)

        def execute(self, sql, *a):  # noqa: ANN001, ANN202
            calls.append(sql)
            if sql.startswith("INSERT OR REPLACE INTO runs"):
                os.kill(os.getpid(), signal.SIGINT)
            return real_execute(sql, *a)

    store._conn_real = store._conn
    store._conn = Conn()
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            store.save(RunResult(specs[0], "ok"), owner=Owner.current(), attempt=1)
    store._conn = store._conn_real
    store.close()
    with sqlite3.connect(tmp_path / "out" / "results.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
