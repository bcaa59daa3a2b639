"""A results folder remembers the plans that wrote into it: another plan is refused in one line unless
`--add` or `--force` says it is meant, and the resume command repeats the invocation (Ctrl-C and
following the printed command: test_faults)."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bench.commands.run import resume_command
from bench.store import Store
from clitools import write

FAST = (
    "name: f\ndataset: {name: sine, length: 120, period: 12}\nlook_back: 2\nbatch_size: [1, 4]\n"
    "backend: jax\nengine: scan\nepochs: 2\nrepeats: 1\n"
)


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_resume_command_is_the_invocation_without_force():
    argv = [
        "run",
        "s.yaml",
        "--out",
        "my results",
        "--engine",
        "scan",
        "--backend",
        "jax",
        "--force",
        "--add",
        "--workers",
        "2",
    ]
    assert resume_command(argv) == "lstm-bench run s.yaml --out 'my results' --engine scan --backend jax --workers 2"


@pytest.mark.slow
def test_another_plan_into_the_same_folder_is_one_line_and_writes_nothing(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", FAST)
    first = cli("run", "s.yaml", "--out", "r", "--no-report")
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path / "r")

    other = cli("run", "s.yaml", "--out", "r", "--no-report", "--engine", "fit")
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1, other.stderr
    assert "engine from the scenario there, fit here" in other.stderr
    assert "resume that one with: lstm-bench run s.yaml --out r --no-report" in other.stderr
    assert "--add" in other.stderr and "--force" in other.stderr
    assert snapshot(tmp_path / "r") == before

    write(tmp_path / "s.yaml", FAST.replace("[1, 4]", "[1, 2]"))
    changed = cli("run", "s.yaml", "--out", "r", "--no-report")
    assert changed.returncode == 2 and "s.yaml has changed since" in changed.stderr
    assert snapshot(tmp_path / "r") == before

    added = cli("run", "s.yaml", "--out", "r", "--no-report", "--add")
    assert added.returncode == 0, added.stderr
    assert "2 runs, 1 already done, 1 to run" in added.stderr
    with closing(Store.open(tmp_path / "r", create=False)) as store:
        plans = store.invocation()["plans"]
    assert [p["command"] for p in plans] == ["lstm-bench run s.yaml --out r --no-report"] * 2
    # both plans are the folder's now: the first resumes without --add
    write(tmp_path / "s.yaml", FAST)
    assert cli("run", "s.yaml", "--out", "r", "--no-report").returncode == 0


@pytest.mark.slow
def test_a_folder_from_before_plans_were_recorded_continues_when_the_runs_agree(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", FAST.replace("[1, 4]", "[1]"))
    assert cli("run", "s.yaml", "--out", "r", "--no-report").returncode == 0
    with closing(sqlite3.connect(tmp_path / "r" / "results.db")) as c:
        c.execute("DELETE FROM meta WHERE key = 'invocation'")
        c.commit()
    write(tmp_path / "s.yaml", FAST)  # a superset of the runs there: the interrupted sweep, say
    grown = cli("run", "s.yaml", "--out", "r", "--no-report")
    assert grown.returncode == 0 and "2 runs, 1 already done, 1 to run" in grown.stderr
    with closing(sqlite3.connect(tmp_path / "r" / "results.db")) as c:
        c.execute("DELETE FROM meta WHERE key = 'invocation'")
        c.commit()
    write(tmp_path / "s.yaml", FAST.replace("epochs: 2", "epochs: 3"))  # none of the runs there
    other = cli("run", "s.yaml", "--out", "r", "--no-report")
    assert other.returncode == 2 and "its 2 runs are not the 2 this plan names" in other.stderr
