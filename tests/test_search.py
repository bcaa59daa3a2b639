"""The `search:` block: deterministic quasi-random (scrambled Halton) or grid trials over the optimizer's
hyperparameters, their run fields and studies, validated like every key, and a search from the CLI into
runs.csv and the report's trial chosen on validation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.scenario import parse_scenario_text
from bench.search import points, trials
from bench.specs import expand
from clitools import write

BASE = "name: s\ndataset: airline\nepochs: 2\n"


def search(text: str):
    return parse_scenario_text(BASE + text, Path("s.yaml")).scenario.search


def test_the_same_seed_gives_the_same_points_and_they_cover_the_log_range_evenly():
    one = points(search("search: {trials: 16, seed: 3, space: {learning_rate: {low: 0.0001, high: 0.1}}}\n"))
    again = points(search("search: {trials: 16, seed: 3, space: {learning_rate: {low: 0.0001, high: 0.1}}}\n"))
    other = points(search("search: {trials: 16, seed: 4, space: {learning_rate: {low: 0.0001, high: 0.1}}}\n"))
    assert one == again and one != other
    rates = np.array(one["learning_rate"])
    assert ((rates >= 1e-4) & (rates <= 0.1)).all() and len(set(rates)) == 16
    # a scrambled Halton sequence of 16 points puts exactly 4 in each quarter of the (log) range
    quarters = np.floor((np.log10(rates) + 4) / 0.75).clip(0, 3)
    assert np.bincount(quarters.astype(int), minlength=4).tolist() == [4, 4, 4, 4]


def test_a_grid_spaces_the_points_evenly_in_log_space_ends_included():
    grid = points(search("search: {method: grid, trials: 4, space: {learning_rate: {low: 0.001, high: 1.0}}}\n"))
    assert grid["learning_rate"] == [0.001, 0.01, 0.1, 1.0]
    linear = search("search: {method: grid, trials: 3, space: {learning_rate: {low: 0.01, high: 0.03, log: false}}}")
    assert points(linear)["learning_rate"] == [0.01, 0.02, 0.03]


@pytest.mark.parametrize(
    "block,message",
    [
        ("{trials: 4, space: {learning_rat: {low: 0.001, high: 0.1}}}", "did you mean 'learning_rate'"),
        ("{trials: 4, space: {one_minus_beta_1: {low: 0.01, high: 1.5}}}", "one_minus_beta_1 must lie in (0, 1)"),
        ("{trials: 4, space: {warmup: {low: 0, high: 0.2}}}", None),
        ("{trials: 4, space: {decay: {low: 0, high: 1}}}", "decay is categorical: give choices"),
        ("{trials: 4, space: {decay: {choices: [cosine, step]}}}", "decay choices must be among"),
        ("{trials: 4, space: {nesterov: {choices: [true]}}}", "hyperparameter of sgd, but the optimizer is adam"),
        (
            "{trials: 4, space: {beta_2: {low: 0.9, high: 0.99}, beta_2_half_life: {low: 10, high: 100}}}",
            "search one of them",
        ),
        ("{trials: 2, studies: 3, space: {learning_rate: {low: 0.001, high: 0.1}}}", "studies (3) cannot exceed"),
        ("{trials: 4, space: {learning_rate: {low: 0.1, high: 0.001}}}", "low must be below high"),
        ("{trials: 4, space: {learning_rate: {low: 0, high: 0.1}}}", "a log dimension needs low > 0"),
        ("{trials: 0, space: {learning_rate: {low: 0.001, high: 0.1}}}", "search.trials"),
        ("{trials: 4, method: sobol, space: {learning_rate: {low: 0.001, high: 0.1}}}", "search.method"),
        ("{trials: 4, space: {}}", "space names no dimension"),
    ],
)
def test_a_bad_search_is_one_line(block: str, message: str | None, tmp_path: Path, cli):
    write(tmp_path / "s.yaml", BASE + f"search: {block}\n")
    ran = cli("validate", "s.yaml")
    if message is None:  # a linear dimension from 0 is fine
        assert ran.returncode == 0, ran.stderr
        return
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert message in ran.stderr and "Traceback" not in ran.stderr


def test_trials_set_the_runs_optimizer_values_and_studies_split_them_round_robin():
    sf = parse_scenario_text(
        BASE + "batch_size: [1, 4]\nstateful: false\nsearch: {trials: 6, seed: 2, space: {learning_rate: {low: 0.001, "
        "high: 0.1}, one_minus_beta_1: {low: 0.01, high: 0.5}, beta_2_half_life: {low: 10, high: 1000}, "
        "warmup: {low: 0, high: 0.3}, decay: {choices: [constant, cosine, linear]}, weight_decay: {low: 1e-5, "
        "high: 0.01}}}\n",
        Path("s.yaml"),
    )
    drawn = trials(sf.scenario.search)
    specs = expand(sf)
    assert len(specs) == 2 * 6 and [t.study for t in drawn] == [0, 1, 2, 0, 1, 2]
    for spec in specs:
        t = drawn[spec.trial]
        assert spec.study == t.study and json.loads(spec.search_point) == t.values
        assert spec.base_learning_rate == t.values["learning_rate"] and spec.decay == t.values["decay"]
        assert spec.beta_1 == pytest.approx(1 - t.values["one_minus_beta_1"])
        assert spec.warmup == t.values["warmup"] and spec.weight_decay == t.values["weight_decay"]
        # the same half-life in samples at every batch size: beta_2 ** (1 / batch_size) is the same
        assert spec.beta_2 == pytest.approx(0.5 ** (spec.batch_size / t.values["beta_2_half_life"]))
    # a longer search with the same seed keeps every earlier trial (and its study)
    longer = parse_scenario_text(BASE + "search: {trials: 12, seed: 2, space: {learning_rate: {low: 0.001, "
                                 "high: 0.1}, decay: {choices: [constant, cosine]}}}\n", Path("s.yaml"))  # fmt: skip
    shorter = parse_scenario_text(BASE + "search: {trials: 6, seed: 2, space: {learning_rate: {low: 0.001, "
                                  "high: 0.1}, decay: {choices: [constant, cosine]}}}\n", Path("s.yaml"))  # fmt: skip
    assert trials(longer.scenario.search)[:6] == trials(shorter.scenario.search)


def test_a_grid_takes_every_combination_of_levels_and_choices():
    grid = search("search: {method: grid, trials: 3, space: {learning_rate: {low: 0.001, high: 0.1}, "
                  "decay: {choices: [constant, cosine]}}}\n")  # fmt: skip
    combos = {(t.values["learning_rate"], t.values["decay"]) for t in trials(grid)}
    assert combos == {(r, d) for r in (0.001, 0.01, 0.1) for d in ("constant", "cosine")} and grid.n_trials == 6


def test_a_rate_given_and_searched_is_refused(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", BASE + "learning_rate: 0.01\nsearch: {trials: 4, space: {learning_rate: {low: 0.001, "
          "high: 0.1}}}\n")  # fmt: skip
    ran = cli("validate", "s.yaml")
    assert ran.returncode == 2 and "learning_rate is both given and searched" in ran.stderr


SEARCH = ("search: {trials: 4, seed: 1, space: {learning_rate: {low: 0.001, high: 0.1}, one_minus_beta_1: {low: 0.02, "
          "high: 0.3}, warmup: {low: 0, high: 0.2}, decay: {choices: [constant, cosine]}}}\n")  # fmt: skip


@pytest.mark.slow
def test_a_search_runs_its_trials_per_batch_size_and_the_report_chooses_among_them(tmp_path: Path, cli):
    write(
        tmp_path / "s.yaml",
        "name: s\ndataset: {name: sine, length: 120, period: 12, noise: 0.05}\nlook_back: 3\nbatch_size: [1, 4]\n"
        "stateful: false\nvalidation_fraction: 0.2\nsteps: 60\neval_every: 10\nrepeats: 2\nbackend: jax\n"
        "engine: scan\ntarget: {metric: val_rmse, value: 0.5}\n" + SEARCH,
    )
    ran = cli("run", "s.yaml", "--out", "r", "--quiet")
    assert ran.returncode == 0, ran.stderr
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    drawn = trials(search(SEARCH))
    for _, g in runs.groupby("batch_size"):
        assert len(g) == 4 * 2 and sorted(g["trial"].unique()) == [0, 1, 2, 3]
    for t in drawn:  # every searched value a column of runs.csv
        mine = runs[runs["trial"] == t.index]
        assert (mine["base_learning_rate"] == t.values["learning_rate"]).all() and (
            mine["decay"] == t.values["decay"]
        ).all()
        assert mine["beta_1"].to_numpy() == pytest.approx(1 - t.values["one_minus_beta_1"])
        assert (mine["warmup"] == t.values["warmup"]).all() and (mine["study"] == t.study).all()
    report = tmp_path / "r" / "report"
    tuned = pd.read_csv(report / "tuned.csv")
    assert set(tuned["batch_size"]) == {1, 4} and set(tuned["trial"]) <= {0, 1, 2, 3}
    for name in ("trials", "chosen_trials", "tuning_budget", "studies"):
        assert (report / f"{name}.csv").exists(), name
    if importlib.util.find_spec("mlflow") is not None:  # the searched values are MLflow params
        import mlflow

        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        exported = cli("export", "r", "--format", "mlflow", "--tracking-uri", uri)
        assert exported.returncode == 0, exported.stderr
        mlflow.set_tracking_uri(uri)
        found = mlflow.search_runs(experiment_names=["lstm-bench"])
        found = found[found["tags.lstm_bench.run_id"].notna()]
        assert len(found) == 16 and {"params.warmup", "params.decay", "params.beta_1", "params.search_point"} <= set(
            found.columns)  # fmt: skip


def test_a_beta_given_and_searched_through_its_complement_is_refused(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", BASE + "beta_1: 0.8\nsearch: {trials: 4, space: {one_minus_beta_1: {low: 0.01, "
          "high: 0.5}}}\n")  # fmt: skip
    ran = cli("validate", "s.yaml")
    assert ran.returncode == 2 and "beta_1 is both given and searched" in ran.stderr


def test_momentum_given_for_adam_is_refused(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", BASE + "momentum: 0.9\n")
    ran = cli("validate", "s.yaml")
    assert ran.returncode == 2 and "use optimizer: sgd" in ran.stderr
