"""Models as a scenario key: built-ins, their parameters and sweeps, run ids, errors, the `models`
command, and a model sweep through `scan` into runs.csv, the report and `compare` (engine agreement
per model: tests/engines/test_equivalence.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.scenario import parse_scenario_text
from bench.specs import expand
from clitools import write

BASE = "name: m\ndataset: airline\nepochs: 2\n"


def specs(extra: str):
    return expand(parse_scenario_text(BASE + extra, Path("m.yaml")))


def test_todays_model_named_keeps_its_run_ids():
    assert [s.run_id for s in specs("model: {name: lstm, units: 4, layers: 1}\n")] == [s.run_id for s in specs("")]
    assert [s.run_id for s in specs("model: lstm\nunits: 4\n")] == [s.run_id for s in specs("")]
    assert specs("model: gru\n")[0].run_id != specs("")[0].run_id


def test_a_list_in_the_model_is_a_sweep_axis_and_units_may_be_per_layer():
    found = {(s.model.label, s.units, s.layers) for s in specs("model: {name: [lstm, gru], dropout: [0.0, 0.2]}\n")}
    assert found == {("lstm", 4, 1), ("gru", 4, 1), ("lstm dropout=0.2", 4, 1), ("gru dropout=0.2", 4, 1)}
    (one,) = specs("model: {name: gru, units: [8, 4], head: [16], head_activation: tanh}\n")
    assert (one.units, one.layers, one.model.params) == (
        8,
        2,
        {"units": [8, 4], "head": [16], "head_activation": "tanh"},
    )
    assert {s.units for s in specs("model: gru\nunits: [2, 6]\n")} == {2, 6}  # the top-level key still sweeps


@pytest.mark.parametrize(
    "extra, message",
    [
        ("model: grue\n", "unknown model 'grue'; did you mean 'gru'?"),
        ("model: {name: gru, dropuot: 0.1}\n", "model 'gru' has no parameter 'dropuot'; did you mean 'dropout'?"),
        ("model: {name: gru, units: 8}\nunits: 4\n", "units and layers go either in the model or at the top"),
        ("model: {name: gru, units: [8, 4], layers: 3}\n", "units [8, 4] names 2 layers but layers is 3"),
        ("model: {name: gru, dropout: 1.5}\n", "'dropout' must be from 0 to below 1, got 1.5"),
        ("model: {name: gru, head: [0]}\n", "'head' lists the dense layers' widths, each >= 1"),
        ("model: {name: gru, head_activation: soft}\n", "head_activation must be one of relu"),
    ],
)
def test_a_bad_model_is_one_line_naming_the_fix(tmp_path: Path, cli, extra: str, message: str):
    write(tmp_path / "m.yaml", BASE + extra)
    checked = cli("validate", "m.yaml")
    assert checked.returncode == 2 and len(checked.stderr.strip().splitlines()) == 1, checked.stderr
    assert message in checked.stderr and checked.stderr.startswith("error: m.yaml")


def test_models_lists_the_built_ins_with_their_parameters(tmp_path: Path, cli):
    listed = cli("models")
    assert listed.returncode == 0
    for name in ("lstm", "gru", "simple_rnn", "dropout", "recurrent_dropout", "head_activation"):
        assert name in listed.stdout


@pytest.mark.slow
def test_a_model_sweep_runs_on_scan_into_the_report_and_compare(tmp_path: Path, cli):
    scenario = (
        "name: {n}\ndataset: {{name: sine, length: 120, period: 12, noise: 0.05}}\nlook_back: 2\n"
        "batch_size: [1, 4]\nbackend: jax\nengine: scan\nepochs: 2\nrepeats: 2\nmodel: {model}\n"
    )
    write(tmp_path / "both.yaml", scenario.format(n="both", model="{name: [lstm, gru]}"))
    ran = cli("run", "both.yaml", "--out", "both")
    assert ran.returncode == 0, ran.stderr
    runs = pd.read_csv(tmp_path / "both" / "runs.csv")
    assert sorted(runs["model"].unique()) == ["gru", "lstm"] and (runs["status"] == "ok").all()
    assert "model=gru" in (tmp_path / "both" / "report" / "summary.md").read_text()
    write(tmp_path / "gru.yaml", scenario.format(n="gru", model="gru"))
    write(tmp_path / "lstm.yaml", scenario.format(n="lstm", model="lstm"))
    assert cli("run", "lstm.yaml", "--out", "a", "--no-report", "--quiet").returncode == 0
    assert cli("run", "gru.yaml", "--out", "b", "--no-report", "--quiet").returncode == 0
    compared = cli("compare", "a", "b", "--label-a", "lstm", "--label-b", "gru", "--out", "cmp")
    assert compared.returncode == 0, compared.stderr
    assert "every run paired" in compared.stdout
    assert pd.read_csv(tmp_path / "cmp" / "comparison.csv")["pairs"].sum() == 4
