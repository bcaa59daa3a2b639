"""With dropout on, `scan` and Keras `fit` draw different masks, so single runs differ; their test RMSE over
repeats must still come from the same distribution (Mann-Whitney, 10 repeats each, from the same seeds and so
the same initial weights)."""

from __future__ import annotations

import pytest
from scipy import stats

from runspecs import run_scenario

SCENARIO = """
name: dropout
dataset: {{name: sine, length: 150, period: 12, noise: 0.1}}
look_back: 4
batch_size: 4
stateful: false
units: 8
epochs: 8
learning_rate: 0.02
repeats: 10
model: {{name: lstm, dropout: {dropout}, recurrent_dropout: 0.1}}
backend: {backend}
engine: {engine}
"""


def rmses(results) -> list[float]:
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    return [r.metrics.test_rmse for r in results]


@pytest.mark.slow
def test_dropout_runs_of_both_engines_come_from_one_distribution(workers, tmp_path) -> None:
    fit = workers["tensorflow"].submit(
        run_scenario, SCENARIO.format(dropout=0.2, backend="tensorflow", engine="fit"), str(tmp_path)
    )
    scan = rmses(workers["jax"].submit(run_scenario, SCENARIO.format(dropout=0.2, backend="jax", engine="scan"),
                                       str(tmp_path)).result())  # fmt: skip
    fit = rmses(fit.result())
    assert len(set(scan)) == 10  # the masks differ by repeat
    assert stats.mannwhitneyu(scan, fit).pvalue > 0.05, (scan, fit)
    # the check can tell: much stronger dropout on one side is a different distribution
    heavy = rmses(workers["jax"].submit(run_scenario, SCENARIO.format(dropout=0.7, backend="jax", engine="scan"),
                                        str(tmp_path)).result())  # fmt: skip
    assert stats.mannwhitneyu(heavy, fit).pvalue < 0.05, (heavy, fit)
