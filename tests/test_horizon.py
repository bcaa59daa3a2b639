"""Multi-step forecasts (`horizon`): run ids, errors, and a horizon sweep from the CLI into runs.csv and the
report's per-lead table and figure (windows and metrics per lead: tests/test_windows.py; fit against scan
with horizon 3: tests/engines/test_equivalence.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.scenario import parse_scenario_text
from bench.specs import expand
from clitools import write

BASE = "name: h\ndataset: airline\nepochs: 2\n"


def test_horizon_1_keeps_the_run_ids_and_another_horizon_changes_them():
    ids = [s.run_id for s in expand(parse_scenario_text(BASE, Path("h.yaml")))]
    assert ids == [s.run_id for s in expand(parse_scenario_text(BASE + "horizon: 1\n", Path("h.yaml")))]
    assert ids != [s.run_id for s in expand(parse_scenario_text(BASE + "horizon: 3\n", Path("h.yaml")))]


def test_a_horizon_the_data_cannot_score_is_one_line_before_training(tmp_path: Path, cli):
    write(tmp_path / "h.yaml", BASE + "horizon: 60\n")
    ran = cli("validate", "h.yaml")
    assert ran.returncode == 2
    assert "horizon 60 is longer than the 48 test points" in ran.stderr and "Traceback" not in ran.stderr
    write(tmp_path / "z.yaml", BASE + "horizon: 0\n")
    assert cli("validate", "z.yaml").returncode == 2


@pytest.mark.slow
def test_a_horizon_sweep_reports_the_rmse_at_every_lead(tmp_path: Path, cli):
    write(
        tmp_path / "h.yaml",
        "name: h\ndataset: {name: sine, length: 120, period: 12, noise: 0.05}\nlook_back: 4\nhorizon: [1, 3]\n"
        "batch_size: [1, 4]\nstateful: [true, false]\nbackend: jax\nengine: scan\nepochs: 3\nrepeats: 2\n",
    )
    ran = cli("run", "h.yaml", "--out", "r", "--quiet")
    assert ran.returncode == 0, ran.stderr
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert (runs["status"] == "ok").all() and sorted(runs["horizon"].unique()) == [1, 3]
    for _, run in runs.iterrows():
        leads = json.loads(run["test_rmse_by_lead"])
        assert len(leads) == run["horizon"]
        # the overall RMSE pools every lead's squared errors
        assert run["test_rmse"] ** 2 == pytest.approx(sum(v * v for v in leads) / len(leads), rel=1e-6)
    table = pd.read_csv(tmp_path / "r" / "report" / "accuracy_by_lead.csv")
    assert set(table["lead"]) == {1, 2, 3} and len(table) == 4 * 3  # batch size x mode x lead, horizon 3 only
    naive = table.groupby("lead")["persistence_rmse"].mean()
    assert naive[1] < naive[3]  # repeating the last value of a sine drifts away with the lead
    assert (tmp_path / "r" / "report" / "rmse_by_lead.png").stat().st_size > 0
    assert "Accuracy per lead time" in (tmp_path / "r" / "report" / "index.html").read_text()
