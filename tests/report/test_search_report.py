"""A search's report on a synthetic sweep with known numbers: every trial kept (diverged ones as such), the best
trial named in the Recommendation, its searched values per batch size, steps to target over trials and over
studies (AlgoPerf: a study scores its fastest trial, a missed target is infinite), the tuning budget on steps,
and a best value on the edge of a searched dimension flagged."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.report import write_report
from bench.results import Metrics, RunResult
from report_fixtures import PERSISTENCE_RMSE, save, tuning_results

BATCH_SIZES = (1, 4, 16)
#: Six trials in three studies (trial i in study i mod 3): (learning rate, 1 - beta_1).
POINTS = [(0.003, 0.2), (0.01, 0.1), (0.03, 0.05), (0.002, 0.3), (0.02, 0.15), (0.006, 0.25)]
#: The trial with the lowest median validation RMSE per batch size; at 4 it has the lowest 1 - beta_1 tried.
BEST = {1: 4, 4: 2, 16: 1}
#: Median steps to target per batch size and trial (None: the median run misses the target).
STEPS = {
    1: [900, None, 700, None, 800, None],
    4: [None, 400, 300, None, None, None],
    16: [200, 150, None, 250, None, 100],
}
#: Trial 3 diverges at batch size 1 (every repeat).
DIVERGED = (1, 3)
REPEATS = 3


def val_rmse(bs: int, trial: int, repeat: int) -> float:
    return 30.0 + (0.0 if BEST[bs] == trial else 1.0 + 0.1 * trial) + 0.01 * repeat


def searched_results() -> list[RunResult]:
    """Every (batch size, trial, repeat) as a run with the trial's fields; times from the tuning fixture."""
    template = next(r for r in tuning_results(batch_sizes=(1,), rates=(0.01,), repeats=1) if r.status == "ok")
    out = []
    for bs in BATCH_SIZES:
        for trial, (rate, one_minus) in enumerate(POINTS):
            point = json.dumps({"learning_rate": rate, "one_minus_beta_1": one_minus}, sort_keys=True)
            for rep in range(REPEATS):
                spec = dataclasses.replace(
                    template.spec, batch_size=bs, repeat=rep, seed=100 + rep, learning_rate=rate,
                    base_learning_rate=rate, beta_1=1 - one_minus, trial=trial, study=trial % 3, search_point=point,
                    target_metric="val_rmse", target_value=31.0, noise_scale=False,
                )  # fmt: skip
                steps = STEPS[bs][trial]
                # one repeat of each trial a little slower, so the median is the middle run
                steps = None if steps is None else steps + (10 if rep == 2 else 0)
                if (bs, trial) == DIVERGED:
                    out.append(dataclasses.replace(
                        template, spec=spec, status="diverged", error="loss became NaN at epoch 2",
                        metrics=Metrics(1e6, 1e6, 1e6, PERSISTENCE_RMSE), steps_to_target=None,
                        epochs_to_target=None, seconds_to_target=None, diverged_epoch=2, grad_noise_scale=None,
                    ))  # fmt: skip
                    continue
                vr = val_rmse(bs, trial, rep)
                out.append(dataclasses.replace(
                    template, spec=spec, grad_noise_scale=None,
                    metrics=Metrics(vr - 5, 40.0 + trial + 0.1 * rep, 32.0, PERSISTENCE_RMSE, val_rmse=vr, val_mae=vr),
                    steps_to_target=steps, epochs_to_target=None if steps is None else 1,
                    seconds_to_target=None if steps is None else steps / 100,
                ))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = save(tmp_path_factory.mktemp("search") / "results", searched_results())
    return write_report([folder], folder / "report").index.parent


def test_every_trial_is_kept_and_the_diverged_one_is_shown_as_such(report: Path) -> None:
    trials = pd.read_csv(report / "trials.csv")
    assert len(trials) == len(BATCH_SIZES) * len(POINTS)
    status = {(r.batch_size, r.trial): r.status for r in trials.itertuples()}
    assert status[DIVERGED] == "diverged" and trials["status"].eq("diverged").sum() == 1
    assert {bs for (bs, t), s in status.items() if s == "best"} == set(BEST)
    assert all(status[(bs, t)] == "best" for bs, t in BEST.items())
    assert set(trials.columns) >= {"learning_rate", "one_minus_beta_1", "study", "steps_median"}


def test_the_best_trials_values_are_given_per_batch_size_and_named_in_the_recommendation(report: Path) -> None:
    chosen = pd.read_csv(report / "chosen_trials.csv").set_index("batch_size")
    for bs, trial in BEST.items():
        assert chosen.loc[bs, "trial"] == trial
        assert (chosen.loc[bs, "learning_rate"], chosen.loc[bs, "one_minus_beta_1"]) == POINTS[trial]
    summary = (report / "summary.md").read_text()
    assert "with trial " in summary.split("## Findings")[0] and (report / "search_optimum.png").stat().st_size > 0


def test_steps_to_result_over_trials_and_over_studies(report: Path) -> None:
    studies = pd.read_csv(report / "studies.csv").set_index("batch_size")
    # batch 16: studies {0, 3} -> 200, {1, 4} -> 150, {2, 5} -> 100: median 150; fewest over trials 100
    assert studies.loc[16, ["steps_fewest", "steps_study_median", "steps_study_min", "steps_study_max"]].tolist() == [
        100, 150, 100, 200]  # fmt: skip
    # batch 4: {0, 3} missed, {1, 4} -> 400, {2, 5} -> 300: the median study takes 400, one study missed
    assert studies.loc[4, "steps_study_median"] == 400 and studies.loc[4, "studies_missed"] == 1
    assert math.isinf(studies.loc[4, "steps_study_max"]) and studies.loc[4, "steps_fewest"] == 300
    # batch 1: {0, 3} -> 900, {1, 4} -> 800, {2, 5} -> 700
    assert studies.loc[1, "steps_study_median"] == 800 and (studies["studies"] == 3).all()
    budget = pd.read_csv(report / "steps_budget.csv")
    at = budget[budget["batch_size"] == 16].set_index("k")
    assert at.loc[len(POINTS), "best_median"] == 100 and (at["best_median"].diff().dropna() <= 0).all()


def test_a_best_value_on_the_edge_of_a_searched_dimension_is_flagged(report: Path) -> None:
    summary = (report / "summary.md").read_text()
    assert "batch size 4 chose the lowest one_minus_beta_1 of the trials" in summary
    assert "chose the highest learning_rate" in summary  # batch 4's best also has the largest rate tried
    assert "batch size 1 chose" not in summary and "batch size 16 chose" not in summary
