"""The `search:` block: deterministic quasi-random (scrambled Halton) or grid points over the learning rate,
validated like every key, and a search from the CLI into runs.csv and the report's rate chosen on validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.scenario import parse_scenario_text
from bench.search import points
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
        ("{trials: 4, space: {beta_2: {low: 0.9, high: 0.999}}}", "searching beta_2 is not supported yet"),
        ("{trials: 4, space: {learning_rate: {low: 0.1, high: 0.001}}}", "low must be below high"),
        ("{trials: 4, space: {learning_rate: {low: 0, high: 0.1}}}", "a log dimension needs low > 0"),
        ("{trials: 0, space: {learning_rate: {low: 0.001, high: 0.1}}}", "search.trials"),
        ("{trials: 4, method: sobol, space: {learning_rate: {low: 0.001, high: 0.1}}}", "search.method"),
        ("{trials: 4, space: {}}", "space names no dimension"),
    ],
)
def test_a_bad_search_is_one_line(block: str, message: str, tmp_path: Path, cli):
    write(tmp_path / "s.yaml", BASE + f"search: {block}\n")
    ran = cli("validate", "s.yaml")
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert message in ran.stderr and "Traceback" not in ran.stderr


def test_a_rate_given_and_searched_is_refused(tmp_path: Path, cli):
    write(tmp_path / "s.yaml", BASE + "learning_rate: 0.01\nsearch: {trials: 4, space: {learning_rate: {low: 0.001, "
          "high: 0.1}}}\n")  # fmt: skip
    ran = cli("validate", "s.yaml")
    assert ran.returncode == 2 and "learning_rate is both given and searched" in ran.stderr


@pytest.mark.slow
def test_a_search_runs_its_trials_per_batch_size_and_the_report_chooses_among_them(tmp_path: Path, cli):
    write(
        tmp_path / "s.yaml",
        "name: s\ndataset: {name: sine, length: 120, period: 12, noise: 0.05}\nlook_back: 3\nbatch_size: [1, 4]\n"
        "stateful: false\nvalidation_fraction: 0.2\nepochs: 3\nrepeats: 2\nbackend: jax\nengine: scan\n"
        "search: {trials: 4, seed: 1, space: {learning_rate: {low: 0.001, high: 0.1}}}\n",
    )
    ran = cli("run", "s.yaml", "--out", "r", "--quiet")
    assert ran.returncode == 0, ran.stderr
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    drawn = sorted(points(search("search: {trials: 4, seed: 1, space: {learning_rate: {low: 0.001, high: 0.1}}}"))[
        "learning_rate"])  # fmt: skip
    for _, g in runs.groupby("batch_size"):
        assert sorted(g["base_learning_rate"].unique()) == drawn and len(g) == 4 * 2
    tuned = pd.read_csv(tmp_path / "r" / "report" / "tuned.csv")
    assert set(tuned["batch_size"]) == {1, 4} and set(tuned["base_learning_rate"]) <= set(drawn)
