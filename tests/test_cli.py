"""The `lstm-bench` command: end to end, determinism, compare and report on real runs, results folders
of an older version, damaged databases, a plugin engine, and user errors (kills and Ctrl-C: test_faults)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from bench import environment, registry
from bench.schema import schema
from bench.store import SCHEMA_VERSION
from clitools import run_in_process, write

TINY = """
name: tiny
dataset: {name: sine, length: 120, period: 12, noise: 0.05}
look_back: 2
batch_size: 4
stateful: [true, false]
epochs: 2
repeats: 2
"""

REQUIRED_CSV = (
    "run_id scenario dataset look_back batch_size stateful layout units epochs learning_rate repeat seed backend "
    "engine device status train_rmse test_rmse test_mae persistence_rmse skill samples_per_sec steps_per_sec "
    "compile_seconds train_seconds n_train_windows n_dropped epochs_to_target seconds_to_target error protocol "
    "trained_together"
).split()

V010 = Path(__file__).parent / "data" / "v0.1.0"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TINY run twice, in this process: TensorFlow `fit` into fit/ and JAX `scan` into scan/ (4 runs each)."""
    root = tmp_path_factory.mktemp("tiny")
    write(root / "tiny.yaml", TINY)
    fit = run_in_process("run", "tiny.yaml", "--out", "fit", "--no-report", cwd=root)
    assert fit.returncode == 0, fit.stderr
    (root / "fit.stdout").write_text(fit.stdout)
    scan = run_in_process("run", "tiny.yaml", "--out", "scan", "--backend", "jax", "--engine", "scan", cwd=root)
    assert scan.returncode == 0, scan.stderr
    (root / "scan.stdout").write_text(scan.stdout)
    return root


def test_run_end_to_end_writes_database_csv_and_resumes(tiny: Path):
    folder = tiny / "fit"
    runs = pd.read_csv(folder / "runs.csv")
    assert set(REQUIRED_CSV) <= set(runs.columns)
    assert len(runs) == 4 and set(runs.status) == {"ok"}  # 2 stateful flags x 2 repeats
    assert runs.test_rmse.gt(0).all() and runs.samples_per_sec.gt(0).all()
    assert (
        runs.persistence_rmse.nunique() == 1
        and set(runs.backend) == {"tensorflow"}
        and set(runs.trained_together) == {1}
    )
    with closing(sqlite3.connect(folder / "results.db")) as db:
        assert db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 4 * 2
        env = db.execute("SELECT json FROM environments").fetchone()[0]
    for key in ("python", "keras", "backend_version", "numpy", "cpu", "cpu_cores", "os", "hostname", "harness_version"):
        assert f'"{key}"' in env
    assert "4 ok of 4 runs" in (tiny / "fit.stdout").read_text()  # the summary table
    assert set(pd.read_csv(tiny / "scan" / "runs.csv").trained_together) == {2}  # scan trains the 2 repeats together

    again = run_in_process("run", "tiny.yaml", "--out", "fit", "--no-report", cwd=tiny)
    assert again.returncode == 0 and "4 already done, 0 to run" in again.stderr
    assert pd.read_csv(folder / "runs.csv").equals(runs)


def test_compare_and_report_on_real_fit_and_scan_runs(tiny: Path, tmp_path: Path):
    """fit (one run at a time) against scan (2 repeats trained together): every run pairs, and the
    speed-up is taken on machine throughput, which the output says."""
    r = run_in_process(
        "compare", "fit", "scan", "--label-a", "fit", "--label-b", "scan", "--out", tmp_path / "cmp", cwd=tiny
    )
    assert r.returncode == 0, r.stderr
    assert "every run paired" in r.stdout and "speed-up on machine throughput" in r.stdout
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert table.pairs.sum() == 4 and len(table) == 2  # 2 modes, 2 pairs each
    assert "machine throughput" in (tmp_path / "cmp" / "summary.md").read_text()
    rep = run_in_process("report", "fit", "scan", "--out", tmp_path / "report", cwd=tiny)
    assert rep.returncode == 0, rep.stderr
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert (
        (tmp_path / "report" / "index.html").stat().st_size > 0
        and "backend=jax" in summary
        and "backend=tensorflow" in summary
    )
    # the answer first: summary.md opens with the Recommendation, one per backend and mode, which the
    # terminal shows too, with the rule behind it
    assert summary.split("\n## ")[1].startswith("Recommendation")
    assert rep.stdout.startswith("Recommendation") and "Rule: the fastest batch size" in rep.stdout
    assert rep.stdout.count("backend=jax, stateful/streams:") == 1 and "backend=tensorflow, stateless:" in rep.stdout
    bad = run_in_process("report", "fit", "--margin", "2", "--out", tmp_path / "r2", cwd=tiny)
    assert bad.returncode == 2 and "--margin 2: give a fraction" in bad.stderr and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_export_parquet_matches_csv_and_force_reruns_everything_to_identical_metrics(tiny: Path, tmp_path: Path, cli):
    folder = Path(shutil.copytree(tiny / "scan", tmp_path / "scan"))
    assert cli("export", "scan", "--format", "parquet").returncode == 0
    pq, csv = pd.read_parquet(folder / "runs.parquet"), pd.read_csv(folder / "runs.csv")
    assert list(pq.columns) == list(schema().run_names) == list(csv.columns)
    assert sorted(pq.run_id) == sorted(csv.run_id)

    forced = cli(
        "run", tiny / "tiny.yaml", "--out", "scan", "--backend", "jax", "--engine", "scan", "--no-report", "--force"
    )
    assert forced.returncode == 0 and "4 already done, 4 to run (--force)" in forced.stderr
    after = pd.read_csv(folder / "runs.csv").set_index("run_id")
    before = csv.set_index("run_id").reindex(after.index)
    assert (after.finished_at > before.finished_at).all()
    # same seeds on the same machine: bit-identical metrics
    cols = ["train_rmse", "test_rmse", "test_mae", "skill"]
    pd.testing.assert_frame_equal(after[cols], before[cols], check_exact=True)


def test_a_results_folder_of_lstm_bench_0_1_0_works_with_every_command(tmp_path: Path, cli):
    """Folders written by 0.1.0 (results schema 1): report, export and compare read them without a
    write; run migrates the one it writes to (after a backup) and finds every run done."""
    shutil.copytree(V010, tmp_path, dirs_exist_ok=True)
    dbs = {side: tmp_path / side / "results.db" for side in ("fit", "scan")}
    before = {side: digest(db) for side, db in dbs.items()}

    assert cli("report", "fit", "scan", "--out", "report").returncode == 0
    assert (tmp_path / "report" / "index.html").is_file()
    assert cli("export", "fit").returncode == 0 and len(pd.read_csv(tmp_path / "fit" / "runs.csv")) == 8
    compared = cli("compare", "fit", "scan", "--out", "cmp")
    assert compared.returncode == 0, compared.stderr
    assert "every run paired" in compared.stdout and pd.read_csv(tmp_path / "cmp" / "comparison.csv").pairs.sum() == 8
    assert {side: digest(db) for side, db in dbs.items()} == before  # reading wrote nothing

    resumed = cli("run", "scenario.yaml", "--out", "scan", "--backend", "jax", "--engine", "scan", "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert "8 runs, 8 already done, 0 to run" in resumed.stderr  # the same run ids: nothing reruns
    assert (tmp_path / "scan" / "results.db.bak-1").is_file() and digest(dbs["fit"]) == before["fit"]
    with closing(sqlite3.connect(dbs["scan"])) as c:
        assert c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert cli("compare", "fit", "scan", "--out", "cmp").returncode == 0  # an old and a migrated side still pair


def _damage(kind: str, db: Path) -> None:
    if kind == "not sqlite":
        db.write_bytes(b"keep")
    elif kind == "truncated":
        shutil.copy(V010 / "fit" / "results.db", db)
        with open(db, "r+b") as fh:
            fh.truncate(20_000)
    else:
        shutil.copy(V010 / "fit" / "results.db", db)
        with closing(sqlite3.connect(db)) as c:
            c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
            c.commit()


@pytest.mark.parametrize("command", ["run", "report", "export", "compare"])
@pytest.mark.parametrize(
    "kind,message", [("not sqlite", "not an SQLite database"), ("truncated", "damaged"), ("newer", "results schema 99")]
)
def test_a_damaged_or_newer_results_db_stops_every_command_with_exit_2(
    command: str, kind: str, message: str, tmp_path: Path, cli
):
    shutil.copytree(V010 / "scan", tmp_path / "good")
    write(
        tmp_path / "s.yaml",
        "name: x\ndataset: {name: sine, length: 120, period: 12}\nbackend: jax\nengine: scan\nepochs: 1\n",
    )
    folder = tmp_path / "results" / "x"
    folder.mkdir(parents=True)
    db = folder / "results.db"
    _damage(kind, db)
    before = digest(db)
    args = {
        "run": ("run", "s.yaml"),
        "report": ("report", folder),
        "export": ("export", folder),
        "compare": ("compare", "good", folder),
    }[command]
    result = cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("error: ")
        and "results/x/results.db: " in lines[0]
        and message in lines[0]
    ), result.stderr
    assert digest(db) == before and [p.name for p in folder.iterdir()] == ["results.db"]


def test_a_registered_toy_engine_runs_a_scenario_end_to_end(tmp_path: Path, monkeypatch, cli):
    """An engine from outside lstm-bench (tests/plugins/toy_engine.py), named in LSTM_BENCH_PLUGINS:
    validated, expanded, grouped, probed, run in a worker and stored without other edits."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugins"))
    monkeypatch.setenv("LSTM_BENCH_PLUGINS", "toy_engine")
    # unregistered and unimported afterwards, so a later test can load it afresh; the built-ins are loaded first,
    # so the registry put back holds them (their modules are imported once and never register again)
    monkeypatch.delenv("LSTM_BENCH_PLUGINS")
    registry.engine_registry.names()
    monkeypatch.setenv("LSTM_BENCH_PLUGINS", "toy_engine")
    monkeypatch.setattr(registry.engine_registry, "_entries", dict(registry.engine_registry._entries))
    monkeypatch.setitem(sys.modules, "toy_engine", None)
    del sys.modules["toy_engine"]
    write(
        tmp_path / "s.yaml",
        "name: toy\ndataset: {name: sine, length: 120, period: 12}\nlook_back: 3\n"
        "batch_size: [1, 4]\nstateful: [true, false]\nbackend: jax\nengine: toy\nepochs: 20\n"
        "learning_rate: 0.1\nrepeats: 2\n",
    )
    result = cli("run", "s.yaml", "--quiet", "--no-report")
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(tmp_path / "results" / "toy" / "runs.csv")
    stateful_runs = runs.stateful.astype(bool)
    stateless, stateful = runs[~stateful_runs], runs[stateful_runs]
    assert len(stateless) == 4 and set(stateless.status) == {"ok"} and set(stateless.trained_together) == {2}
    assert (stateless.test_rmse < stateless.persistence_rmse * 3).all() and set(stateless.notes) == {"toy engine"}
    # the engine claims no stateful support: its stateful runs are turned away, with what to use instead
    assert set(stateful.status) == {"unsupported"} and stateful.error.str.contains("use engine: scan on jax").all()
    unknown = cli("validate", write(tmp_path / "t.yaml", "name: t\ndataset: airline\nengine: tyo\n"))
    assert unknown.returncode == 2 and "unknown engine 'tyo'; did you mean 'toy'?" in unknown.stderr


BAD_CASES = {
    "typo": (
        "name: x\ndataset: airline\nbach_size: 2\n",
        "s.yaml:3: key 'bach_size': unknown key; did you mean 'batch_size'?",
    ),
    "yaml": ("name: x\ndataset: [airline\n", "invalid YAML"),
    "range": ("name: x\ndataset: airline\nepochs: 0\n", "key 'epochs'"),
    "csv": ("name: x\ndataset: {csv: missing.csv, column: v}\n", "CSV file not found"),
    "short": ("name: x\ndataset: shampoo\nlook_back: 30\n", "look_back 30 leaves no training windows"),
    "dataset": ("name: x\ndataset: shampo\n", "did you mean 'shampoo'"),
    "engine": ("name: x\ndataset: airline\nengine: scna\n", "unknown engine 'scna'; did you mean 'scan'?"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_user_mistakes_exit_2_with_one_line_and_write_nothing(case: str, tmp_path: Path, cli):
    text, message = BAD_CASES[case]
    write(tmp_path / "s.yaml", text)
    result = cli("run", "s.yaml")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_require_gpu_without_a_gpu_exits_2(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", "name: g\ndataset: airline\ndevice: gpu\n")
    r = cli("run", "s.yaml", "--require-gpu")
    assert r.returncode == 2 and "--require-gpu: nvidia-smi finds no NVIDIA GPU" in r.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_backend_that_is_not_installed_exits_2_before_anything_runs(tmp_path: Path, monkeypatch, cli):
    from bench import registry

    monkeypatch.setattr(registry.backend("torch"), "version", lambda: "")  # as where PyTorch is not installed
    write(tmp_path / "s.yaml", "name: b\ndataset: airline\nbackend: tensorflow\nstateful: false\nepochs: 1\n")
    both = ("--backend", "jax", "--backend", "torch")  # repeated, --backend replaces the scenario's with a list
    r = cli("run", "s.yaml", *both)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line == (
        "error: backend torch is not installed here: pip install '.[torch]', "
        "or run the other backends alone (--backend jax) or with --skip-missing-backends"
    )
    assert not (tmp_path / "results").exists()
    r = cli("run", "s.yaml", *both, "--skip-missing-backends", "--no-report", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "note: left out the runs on torch, which is not installed here (pip install '.[torch]')" in r.stderr
    assert list(pd.read_csv(tmp_path / "results" / "b" / "runs.csv")["backend"]) == ["jax"]


@pytest.mark.slow
def test_device_auto_uses_the_cpu_for_a_backend_that_sees_no_gpu_on_a_gpu_machine(tmp_path: Path, monkeypatch, cli):
    """A GPU machine (a stand-in nvidia-smi) with this CPU-only JAX: auto must not ask for the GPU."""
    fake = write(tmp_path / "bin" / "nvidia-smi", "#!/bin/sh\necho 'NVIDIA H200, 143771 MiB, 565.57.01'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    environment.gpu_present.cache_clear()  # asked once per process: ask again with the stand-in, and after
    write(tmp_path / "s.yaml", "name: g\ndataset: airline\nbackend: jax\nengine: scan\ndevice: [auto, gpu]\n")
    r = cli("validate", "--expand", "s.yaml")
    environment.gpu_present.cache_clear()
    assert r.returncode == 0, r.stderr
    assert "device: auto runs on the CPU for jax" in r.stderr
    assert sorted(re.findall(r"│ (cpu|gpu) +│", r.stdout)) == ["cpu", "gpu"], r.stdout  # auto -> cpu; gpu stays gpu


def test_missing_scenario_file_and_results_folder(tmp_path: Path, cli):
    r = cli("run", "nope.yaml")
    assert r.returncode == 2 and "scenario file not found" in r.stderr
    for args in (("export", "nowhere"), ("report", "nowhere"), ("compare", "nowhere", "elsewhere")):
        r = cli(*args)
        assert r.returncode == 2 and "nowhere: no results.db" in r.stderr, args
    assert not (tmp_path / "nowhere").exists()


def test_validate_expand_and_datasets(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", "name: v\ndataset: airline\nbatch_size: [1, 2]\nstateful: [true, false]\n")
    r = cli("validate", "s.yaml", "--expand")
    assert r.returncode == 0 and "ok, 4 runs" in r.stdout and r.stdout.count("airline") >= 4
    r = cli("datasets")
    assert r.returncode == 0
    for name in ("airline", "shampoo", "sunspots", "sine", "mackey_glass", "ar"):
        assert name in r.stdout


def test_run_ends_with_the_recommendation(tiny: Path):
    # after the summary table: the block the report opens with, its warnings and its rule
    tail = (tiny / "scan.stdout").read_text().split("Recommendation\n", 1)[1]
    assert tail.startswith("stateful/streams: ") and "Rule: the fastest batch size" in tail
    assert "warning: with 2 repeats per configuration no Mann-Whitney comparison can reach" in tail
    assert (tiny / "scan" / "report" / "index.html").is_file()


def test_a_broken_plugin_stops_only_the_commands_that_use_one(tmp_path: Path, monkeypatch) -> None:
    """Building the parser loads no plugin: `datasets` and `report --help` work beside a plugin that fails to
    import, and `validate`, which needs the registries, names the plugin in one line."""
    monkeypatch.setenv("LSTM_BENCH_PLUGINS", "no_such_plugin_module")
    assert run_in_process("datasets", cwd=tmp_path).returncode == 0
    assert run_in_process("report", "--help", cwd=tmp_path).returncode == 0
    write(tmp_path / "s.yaml", "name: s\ndataset: airline\n")
    broken = run_in_process("validate", "s.yaml", cwd=tmp_path)
    assert broken.returncode == 2 and "plugin module 'no_such_plugin_module'" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr


def test_the_command_line_is_built_without_the_report() -> None:
    # the report's import (pandas' statistics, SciPy, seaborn) cost 2.3 s of every `lstm-bench --help`
    code = "import sys; from bench.commands import commands, parser; parser(commands()); print('bench.report' in sys.modules)"  # noqa: E501
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "False", ran.stderr
