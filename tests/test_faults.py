"""Faults through the real command line: Ctrl-C, kill -9 and SIGTERM of the driver (its workers end
with it), two suites on one folder, an unwritable or full results folder. (Killed workers:
test_executors; lost Ray nodes and retries: test_ray_node_loss.)"""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psutil
import pytest

from bench import cli as cli_module
from bench import runner
from bench.executors import PAUSE_HOOK_ENV
from bench.worker import ORPHANED_EXIT
from bench.errors import UserError
from bench.scenario import load_scenario
from bench.specs import expand
from clitools import write

FAST = (
    "name: f\ndataset: {name: sine, length: 120, period: 12}\nlook_back: 2\nbatch_size: [1, 4]\n"
    "backend: jax\nengine: scan\nepochs: 2\nrepeats: 1\n"
)


def run_ids(path: Path, **overrides: str) -> list[str]:
    sf = load_scenario(path)
    return [s.run_id for s in expand(sf.model_copy(update={"scenario": sf.scenario.model_copy(update=overrides)}))]


def db_rows(db: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(db)) as c:
        return c.execute(sql).fetchall()


def interrupt(
    tmp_path: Path, gaps: list[float], runs_before: int = 1, kill: bool = False
) -> tuple[subprocess.Popen[str], str, Path]:
    """Start (or resume) the suite (`RUN`), wait until `runs_before` runs are in the database, then press
    Ctrl-C once per gap (after it), or kill it with SIGKILL."""
    db = tmp_path / "r" / "results.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *RUN],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as from a terminal: a job a script starts in the background inherits an ignored SIGINT,
        # which lstm-bench rightly keeps ignoring
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None and done < runs_before:
        time.sleep(0.1)
        try:
            done = db_rows(db, "SELECT COUNT(*) FROM runs")[0][0]
        except sqlite3.OperationalError:
            pass
    assert proc.poll() is None, "the suite finished before it could be interrupted"
    if kill:
        os.killpg(proc.pid, signal.SIGKILL)
    for gap in gaps:
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the driver and its workers
        time.sleep(gap)
    _, stderr = proc.communicate(timeout=120)
    return proc, stderr, db


def check_second_ctrl_c(proc: subprocess.Popen[str], stderr: str, db: Path) -> list[tuple]:
    # a Ctrl-C after Python has finished its own shutdown meets the default handler: killed by SIGINT,
    # which a shell reports as 130 too
    assert proc.returncode in (130, -signal.SIGINT), stderr
    assert "Traceback" not in stderr
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    kept = db_rows(db, "SELECT status FROM runs")
    assert 1 <= len(kept) < 6 and set(kept) == {("ok",)}  # no half-written or failed run from the interruption
    return kept


# six configurations that share one compiled epoch (they differ in epochs only): each run takes a
# fraction of a second, so a worker's start and one compilation are most of a suite's time. The
# scenario names `fit` and the command line overrides it, so a resume that forgot the override would
# plan other runs
SIX = (
    FAST.replace("batch_size: [1, 4]", "batch_size: 1")
    .replace("epochs: 2", "epochs: [300, 301, 302, 303, 304, 305]")
    .replace("engine: scan", "engine: fit")
)
RUN = ("run", "s.yaml", "--no-report", "--out", "r", "--engine", "scan")


@pytest.mark.slow  # three interrupted subprocess runs: about a minute
def test_ctrl_c_twice_ctrl_c_once_and_kill_9_lose_nothing_and_the_suite_resumes(tmp_path: Path, cli):
    """One sweep of 6 configurations, interrupted three ways in turn, then resumed to the end with the
    command the interruption printed: it finishes the interrupted matrix and runs nothing else."""
    write(tmp_path / "s.yaml", SIX)
    # Ctrl-C twice: the second stops at once, and the database stays consistent
    kept = check_second_ctrl_c(*interrupt(tmp_path, [0.02, 0.0]))
    # Ctrl-C once: finished runs are committed, the resume command named, exit 130
    proc, stderr, db = interrupt(tmp_path, [0.0], runs_before=len(kept) + 1)
    assert proc.returncode == 130, stderr
    assert f"resume with: lstm-bench {' '.join(RUN)}" in stderr and "Traceback" not in stderr
    printed = shlex.split(stderr.split("resume with: ")[1].strip())
    kept = db_rows(db, "SELECT status FROM runs")
    assert 2 <= len(kept) < 6 and set(kept) == {("ok",)}
    assert db_rows(db, "SELECT COUNT(*) FROM claims") == [(0,)]
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert (tmp_path / "r" / "runs.csv").is_file()
    # kill -9 of the driver and its worker, as a crash would: the runs committed before stay
    before = dict(db_rows(db, "SELECT run_id, test_rmse FROM runs"))
    proc, _, _ = interrupt(tmp_path, [], runs_before=len(before) + 1, kill=True)
    killed = dict(db_rows(db, "SELECT run_id, test_rmse FROM runs"))
    assert len(killed) < 6, "the suite finished before it could be killed"
    resumed = cli(*printed[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(killed)} already done, {6 - len(killed)} to run" in resumed.stderr
    after = dict(db_rows(db, "SELECT run_id, test_rmse FROM runs WHERE status = 'ok'"))
    assert len(after) == 6 and {k: after[k] for k in before} == before
    assert sorted(after) == sorted(run_ids(tmp_path / "s.yaml", engine="scan"))
    assert db_rows(db, "SELECT DISTINCT engine FROM runs") == [("scan",)]
    # every configuration ran once, apart from what an interruption cut short
    assert max(n for _, n in db_rows(db, "SELECT run_id, COUNT(*) FROM attempts GROUP BY run_id")) == 1


@pytest.mark.slow
@pytest.mark.parametrize("gap", [0.0, 0.2])
def test_a_second_ctrl_c_at_other_timings_leaves_the_database_consistent(gap: float, tmp_path: Path, cli):
    write(tmp_path / "s.yaml", SIX)
    check_second_ctrl_c(*interrupt(tmp_path, [gap, 0.0]))
    assert cli(*RUN, "--quiet").returncode == 0  # and it resumes
    assert len(db_rows(tmp_path / "r" / "results.db", "SELECT run_id FROM runs WHERE status = 'ok'")) == 6


@pytest.mark.slow
def test_two_suites_on_one_folder_run_every_configuration_exactly_once(tmp_path: Path):
    path = write(tmp_path / "s.yaml", FAST.replace("batch_size: [1, 4]", "batch_size: [1, 2, 3, 4]"))
    ids = run_ids(path)
    cmd = [sys.executable, "-m", "bench", "run", "s.yaml", "--no-report", "--out", "shared"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    db = tmp_path / "shared" / "results.db"
    assert sorted(r[0] for r in db_rows(db, "SELECT run_id FROM runs WHERE status = 'ok'")) == sorted(ids)
    # every execution is logged: none was executed twice
    assert sorted(db_rows(db, "SELECT run_id, COUNT(*) FROM attempts GROUP BY run_id")) == sorted((i, 1) for i in ids)
    assert db_rows(db, "SELECT COUNT(*) FROM claims") == [(0,)]
    assert any("another lstm-bench process" in o[1] for o in outs)


def test_results_folder_under_a_file_is_refused_before_training(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", FAST)
    write(tmp_path / "blocker", "a file, not a folder")
    result = cli("run", "s.yaml", "--out", "blocker/results")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "blocker/results" in result.stderr


def test_read_only_or_full_results_folder_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(runner.os, "access", lambda *a, **k: False)
    with pytest.raises(UserError, match="not writable"):
        runner.check_writable(tmp_path / "out")
    monkeypatch.undo()
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda p: type("U", (), {"free": 5 * 2**20})())
    with pytest.raises(UserError, match=r"the disk is full \(5 MiB free"):
        runner.check_writable(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_read_only_folder_stops_the_cli_with_exit_2(tmp_path: Path, monkeypatch, capsys):
    write(tmp_path / "s.yaml", FAST)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner.os, "access", lambda *a, **k: False)
    assert cli_module.main(["run", "s.yaml", "--out", "ro"]) == 2
    assert "not writable" in capsys.readouterr().err and not (tmp_path / "ro").exists()


@pytest.mark.parametrize(
    "case, out, message",
    [
        ("a file", "taken", "--out taken: is a file, not a folder"),
        ("a missing parent", "nowhere/r", "its parent folder nowhere does not exist; create it (mkdir -p)"),
        ("a read-only file system", "ro", "is on a read-only file system"),
    ],
)
def test_each_unusable_out_folder_names_its_cause(tmp_path: Path, monkeypatch, capsys, case: str, out: str, message):
    write(tmp_path / "s.yaml", FAST)
    write(tmp_path / "taken", "a file, not a folder")
    monkeypatch.chdir(tmp_path)
    if case == "a read-only file system":
        monkeypatch.setattr(runner.os, "statvfs", lambda p: type("S", (), {"f_flag": os.ST_RDONLY})())
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli_module.main(["run", "s.yaml", "--out", out]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --- the driver killed: its workers end with it --------------------------------------------------

#: How long a killed driver's processes may take to go: a deadline for "they end", generous for a busy machine.
GONE_WITHIN_S = 30


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `procs` still running (a zombie, dead but not yet reaped by its new parent, is gone)."""
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    return left


def left_after(procs: list[psutil.Process], seconds: float = GONE_WITHIN_S) -> list[psutil.Process]:
    """Those of `procs` still running after `seconds` (returns as soon as none is)."""
    deadline = time.monotonic() + seconds
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(procs)


def start_driver(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`lstm-bench ARGS` in its own session; stderr to a file (a pipe would stay open in orphaned workers)."""
    with open(tmp_path / "stderr.txt", "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "bench", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env={**os.environ, "COLUMNS": "200", **env},
            start_new_session=True,
        )


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None, f"the suite ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.1)


def run_count(db: Path) -> int:
    try:
        return db_rows(db, "SELECT COUNT(*) FROM runs")[0][0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def kill_all(procs: list[psutil.Process]) -> None:
    """Clean up after a failed check: end the processes the test started that are still there."""
    for proc in alive(procs):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


# a parent that starts one spawned child calling `exit_with_parent` with one of its two means alone
# (`poll`: the watching thread, as on macOS; `kernel`: Linux's PR_SET_PDEATHSIG), then both wait; the
# child writes its pid to `ready`
PARENT = """
import multiprocessing, os, sys, time
from pathlib import Path
from bench import worker

def child(parent, how, ready):
    if how == "poll":
        worker._death_signal = lambda: False
    else:
        worker._watch_parent = lambda parent: None
    worker.exit_with_parent(parent)
    Path(ready).write_text(str(os.getpid()))
    time.sleep(600)

if __name__ == "__main__":
    args = (os.getpid(), sys.argv[1], sys.argv[2])
    multiprocessing.get_context("spawn").Process(target=child, args=args).start()
    time.sleep(600)
"""


@pytest.mark.parametrize("how", ["poll", pytest.param("kernel", marks=pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"))])  # fmt: skip
def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path, how: str):
    script, ready = write(tmp_path / "parent.py", PARENT), tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, str(script), how, str(ready)], cwd=tmp_path, start_new_session=True)
    child = None
    try:
        wait_for(parent, ready.exists, "child")
        child = psutil.Process(int(ready.read_text()))
        parent.kill()
        assert not left_after([child]), f"the child outlived its parent ({how})"
    finally:
        parent.kill()
        kill_all([child] if child else [])


def test_a_worker_whose_parent_is_gone_already_exits_at_once(tmp_path: Path):
    """As when the driver was killed between starting a worker and the worker's first instruction."""
    code = (
        "import sys; from bench import worker\n"
        "worker._watch_parent = lambda parent: None  # the check on the way in alone\n"
        "worker.exit_with_parent(int(sys.argv[1])); print('ran on', flush=True)"
    )
    gone = os.getpid() + 2**23  # the child's parent is this process; this pid is above Linux's pid_max
    ran = subprocess.run([sys.executable, "-c", code, str(gone)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == ORPHANED_EXIT and "ran on" not in ran.stdout, ran.stderr


def test_kill_9_of_the_driver_ends_its_workers(tmp_path: Path):
    """A driver killed with kill -9 while its worker is busy with a run leaves no process behind (the
    worker, multiprocessing's resource tracker): a worker left computing would load the machine under
    the resumed run's timings."""
    write(tmp_path / "s.yaml", SIX)
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    # the worker writes its pid into `pauses`, then stays busy with its group for 10 minutes
    proc = start_driver(tmp_path, *RUN, env={PAUSE_HOOK_ENV: f"{pauses}:600"})
    procs: list[psutil.Process] = []
    try:
        wait_for(proc, lambda: any(pauses.iterdir()), "a busy worker")
        procs = psutil.Process(proc.pid).children(recursive=True)
        workers = {int(p.name) for p in pauses.iterdir()}
        assert workers <= {p.pid for p in procs}
        proc.kill()
        assert proc.wait(timeout=60) == -signal.SIGKILL
        assert not left_after(procs), f"left running after kill -9 of the driver: {alive(procs)}"
    finally:
        proc.kill()
        kill_all(procs)


@pytest.mark.slow  # a suite stopped and resumed: 35-75 s on a busy 2-core machine
def test_sigterm_stops_like_ctrl_c_ends_the_workers_and_the_suite_resumes(tmp_path: Path, cli):
    """SIGTERM (kill, a scheduler's stop) to the driver alone: finished runs are committed, the workers
    end, the resume command is printed, exit 143; the printed command finishes the suite."""
    write(tmp_path / "s.yaml", SIX.replace("epochs: [300, 301, 302, 303, 304, 305]", "epochs: [2, 3, 4, 5, 6, 7]"))
    db = tmp_path / "r" / "results.db"
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    # every group waits 2 s first: the suite is still running when the first run is in the database
    proc = start_driver(tmp_path, *RUN, env={PAUSE_HOOK_ENV: f"{pauses}:2"})
    procs: list[psutil.Process] = []
    try:
        wait_for(proc, lambda: run_count(db) >= 1, "run in the database")
        procs = psutil.Process(proc.pid).children(recursive=True)
        assert {int(p.name) for p in pauses.iterdir()} <= {p.pid for p in procs}
        proc.terminate()
        assert proc.wait(timeout=120) == 143
        assert not left_after(procs), f"left running after SIGTERM to the driver: {alive(procs)}"
    finally:
        proc.kill()
        kill_all(procs)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert f"resume with: lstm-bench {' '.join(RUN)}" in stderr and "Traceback" not in stderr, stderr
    assert "terminated (SIGTERM)" in stderr
    kept = db_rows(db, "SELECT status FROM runs")
    assert 1 <= len(kept) < 6 and set(kept) == {("ok",)}
    assert db_rows(db, "SELECT COUNT(*) FROM claims") == [(0,)]
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert (tmp_path / "r" / "runs.csv").is_file()
    resumed = cli(*shlex.split(stderr.split("resume with: ")[1].strip())[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} already done, {6 - len(kept)} to run" in resumed.stderr
    assert len(db_rows(db, "SELECT run_id FROM runs WHERE status = 'ok'")) == 6
