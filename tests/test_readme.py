"""The README's two commands, CI, and the shipped scenarios stay true (the docs: tests/test_docs.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.suite import load_suite
from bench.scenario import load_scenario
from bench.specs import expand

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README must open with a bash block of commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands_run_and_test():
    run, test = readme_commands()
    assert "pip install ." in run and "lstm-bench run scenarios/quickstart.yaml" in run
    assert "pip install '.[test]'" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    assert readme_commands()[1] in ci.splitlines()


@pytest.mark.parametrize(
    "path", sorted([*(ROOT / "scenarios").glob("*.yaml"), *(ROOT / "examples").glob("*/*.yaml")]), ids=lambda p: p.stem
)
def test_shipped_scenarios_validate(path: Path):
    assert expand(load_scenario(path))


@pytest.mark.parametrize("path", sorted((ROOT / "suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_suites_validate(path: Path):
    suite = load_suite(path)
    assert suite.workloads and all(expand(w.scenario) for w in suite.workloads)
    assert all(w.note for w in suite.workloads), "the suite report explains how each target was set"


def test_seed_scenario_is_the_tutorials_configuration():
    (spec,) = expand(load_scenario(ROOT / "scenarios" / "seed.yaml"))
    assert (spec.dataset.name, spec.look_back, spec.batch_size, spec.stateful, spec.units, spec.epochs) == (
        "airline",
        3,
        1,
        True,
        4,
        100,
    )


def test_airline_sweep_covers_batch_1_to_32_both_modes_10_repeats():
    specs = expand(load_scenario(ROOT / "scenarios" / "airline_batch_sweep.yaml"))
    assert {s.batch_size for s in specs} == {1, 2, 4, 8, 16, 32}
    assert {s.stateful for s in specs} == {True, False}
    assert {s.repeat for s in specs} == set(range(10))


def test_code_passes_ruff():
    """The lint configuration in pyproject.toml (lines of at most 120 characters), and its formatting."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install '.[test]')")
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
