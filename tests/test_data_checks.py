"""Data checks before training: each warning on a series that deserves it and on none that does not,
printed once per dataset by `validate` and `run`, and kept in the report's problems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.datasets import load_series, resolve_dataset
from bench.datasets.checks import check_series
from bench.errors import UserError
from bench.windows import prepare
from clitools import write


def checks(tmp_path: Path, frame: pd.DataFrame, look_backs=(1,), batch_sizes=(1,), difference=False, **ref):
    frame.to_csv(tmp_path / "d.csv", index=False)
    validation = ref.pop("_val", 0.0)
    series = load_series(resolve_dataset({"csv": "d.csv", **ref}, tmp_path))
    prep = prepare(series.values, 0.33, difference, "minmax", validation)
    found: dict[str, str] = {}
    for c in check_series(series, prep, list(look_backs), list(batch_sizes), difference):
        found[c.code] = (found.get(c.code, "") + " | " + c.line()).strip(" |")
    return found


def seasonal(n: int) -> np.ndarray:
    t = np.arange(n)
    return 10 + np.sin(2 * np.pi * t / 12) + 0.1 * np.cos(t)


def test_a_sound_series_has_no_warning(tmp_path: Path):
    assert checks(tmp_path, pd.DataFrame({"y": seasonal(120)}), column="y", look_backs=(1, 6), batch_sizes=(1, 8)) == {}


def test_a_constant_feature_is_named(tmp_path: Path):
    frame = pd.DataFrame({"y": seasonal(120), "flag": 1.0, "late": np.r_[np.zeros(80), np.arange(40.0)]})
    found = checks(tmp_path, frame, target="y", features=["y", "flag"])
    assert "column 'flag' is constant (1)" in found["constant_column"]
    found = checks(tmp_path, frame, target="y", features=["y", "late"])
    assert "column 'late' is constant over the 80 training points" in found["constant_column"]


def test_a_trend_outside_the_training_range_suggests_differencing(tmp_path: Path):
    co2 = pd.DataFrame({"co2": 315 + 0.03 * np.arange(600) + np.sin(np.arange(600) / 8)})  # weekly CO2, roughly
    found = checks(tmp_path, co2, column="co2")
    assert "lies outside the training part's range" in found["test_outside_training"]
    assert "difference: true" in found["test_outside_training"]
    assert "test_outside_training" not in checks(tmp_path, co2, column="co2", difference=True)


def test_short_parts_and_big_batches_are_named(tmp_path: Path):
    found = checks(tmp_path, pd.DataFrame({"y": seasonal(24)}), column="y", look_backs=(1, 12), batch_sizes=(1, 16))
    assert "the test part has 8 points (of 24)" in found["short_test"]
    assert "fewer than batch size 16" in found["few_test_points"]
    assert "fewer than look_back 12" in found["few_test_points"]
    found = checks(tmp_path, pd.DataFrame({"y": seasonal(60)}), column="y", _val=0.2)
    assert "the validation part has 8 points" in found["short_validation"]


@pytest.mark.parametrize("command", ["validate", pytest.param("run", marks=pytest.mark.slow)])
def test_validate_and_run_print_each_warning_once(tmp_path: Path, cli, command: str):
    pd.DataFrame({"co2": 315 + 0.03 * np.arange(300)}).to_csv(tmp_path / "co2.csv", index=False)
    scenario = (
        "name: {n}\ndataset: {{csv: co2.csv, column: co2}}\nlook_back: 1\nbatch_size: [1, 2]\n"
        "backend: jax\nengine: scan\nepochs: 1\nrepeats: 1\n"
    )
    write(tmp_path / "a.yaml", scenario.format(n="a"))
    write(tmp_path / "b.yaml", scenario.format(n="b"))
    extra = ("--no-report", "--quiet") if command == "run" else ()
    ran = cli(command, "a.yaml", "b.yaml", *extra)
    assert ran.returncode == 0, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "dataset 'co2:co2'" in warnings[0] and "difference: true" in warnings[0]


@pytest.mark.slow
def test_the_report_keeps_the_warnings_in_its_problems(tmp_path: Path, cli):
    pd.DataFrame({"co2": 315 + 0.03 * np.arange(300)}).to_csv(tmp_path / "co2.csv", index=False)
    write(
        tmp_path / "s.yaml",
        "name: s\ndataset: {csv: co2.csv, column: co2}\nlook_back: 1\nbatch_size: [1, 2]\n"
        "backend: jax\nengine: scan\nepochs: 1\nrepeats: 1\n",
    )
    assert cli("run", "s.yaml", "--out", "r", "--no-report", "--quiet").returncode == 0
    assert cli("report", "r").returncode == 0
    problems = pd.read_csv(tmp_path / "r" / "report" / "problems.csv")
    row = problems[problems["kind"] == "test_outside_training"]
    assert len(row) == 1 and "difference: true" in row["error"].iloc[0]
    assert "difference: true" in (tmp_path / "r" / "report" / "summary.md").read_text()


@pytest.mark.parametrize("missing", ["error", "interpolate", "drop"])
def test_an_all_missing_feature_column_stops_before_anything_runs(tmp_path: Path, missing: str):
    pd.DataFrame({"y": seasonal(60), "x": np.nan}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(UserError, match="column 'x' has no value in any row; remove it from features"):
        load_series(
            resolve_dataset({"csv": "d.csv", "target": "y", "features": ["y", "x"], "missing": missing}, tmp_path)
        )
