"""The tuning budget: how many trials each batch size needs. For k = 1 .. N trials, the bootstrap distribution
of the best of k trials' median validation RMSE, or of their fewest median steps to the target (the tuning
playbook's best-of-k curves): k trials drawn without replacement from those run, their best taken, many times
over. A curve that is still falling at k = N says the search has not found that batch size's optimum yet.
A diverged trial (or one whose median run missed the target) counts as infinitely bad, so a band may reach
infinity: the quantiles are draws themselves (`inverted_cdf`), never a blend with infinity."""

from __future__ import annotations

import numpy as np
import pandas as pd

RESAMPLES = 1000
SEED = 0


def best_of_k(scores: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(k, resample) best scores: row k-1 holds the minimum over k of `scores` drawn without replacement."""
    s = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # a random permutation per resample: its first k entries are a draw of k without replacement
    order = np.argsort(rng.random((resamples, len(s))), axis=1)
    return np.minimum.accumulate(s[order], axis=1).T


def budget_table(scores: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per `labels` group (tuning panel, mode, batch size) of `rate_scores` or `target_scores` (one row per
    trial, `median` its median validation RMSE or steps to target; inf when it mostly diverged or missed)
    and k: the median and 5-95% range of the best of k."""
    cols = [*labels, "trials", "k", "best_median", "best_low", "best_high"]
    rows = []
    if scores.empty:
        return pd.DataFrame(columns=cols)
    for keys, g in scores.groupby(labels, sort=False, dropna=False):
        values = g["median"].to_numpy(dtype=np.float64)
        if len(values) < 2:
            continue
        best = best_of_k(values)
        for k in range(1, len(values) + 1):
            q = np.percentile(best[k - 1], [50, 5, 95], method="inverted_cdf")
            rows.append({**dict(zip(labels, keys)), "trials": len(values), "k": k, "best_median": q[0],
                         "best_low": q[1], "best_high": q[2]})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
