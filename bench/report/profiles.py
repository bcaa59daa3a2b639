"""Scores across workloads: performance profiles, the AlgoPerf score and geometric-mean speed-ups (pure).

A *submission* is what is compared across workloads (here a batch size and mode, and the engine, device or
model where those vary); each workload gives it a cost (steps or seconds to the target, or tuned test RMSE;
lower is better, inf for a missed target).

- **Performance profile** (Dolan and Moré 2002, as MLCommons AlgoPerf uses it): a submission's cost on a
  workload divided by the best submission's there is its ratio r; rho(tau) is the share of workloads whose
  ratio is at most tau. rho(1) is how often it is the best; a miss never counts.
- **AlgoPerf score**: the area under rho from tau = 1 to `TAU_MAX` = 4, divided by the width of that range
  (AlgoPerf's `compute_leaderboard_score` with `normalize=True`), so 1 means best on every workload and 0
  never within 4x of the best.
- **Geometric-mean speed-up** over a baseline submission: the geometric mean over workloads of
  baseline cost / submission cost, a miss counting as the step budget + 1 (AlgoPerf's convention), so a
  submission that misses where the baseline reaches the target is penalised rather than dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TAU_MAX = 4.0
#: The tau grid of the profiles and the score (AlgoPerf integrates over a linear grid too).
TAUS = np.linspace(1.0, TAU_MAX, 301)


def ratios(costs: pd.DataFrame) -> pd.DataFrame:
    """(workload x submission) costs -> each divided by the workload's best; inf where missed (and on a
    workload every submission missed). NaN (not run) stays NaN."""
    c = costs.astype(np.float64)
    best = c.where(np.isfinite(c)).min(axis=1)
    return c.div(best, axis=0).mask(np.isinf(c), np.inf).where(c.notna())


def profile(ratio: pd.DataFrame, taus: np.ndarray = TAUS) -> pd.DataFrame:
    """(submission x tau) rho: the share of the workloads whose ratio is at most tau (not-run cells count as
    misses, so every submission is measured against the same workloads)."""
    r = ratio.fillna(np.inf).to_numpy(dtype=np.float64)
    rho = (r[:, :, None] <= taus[None, None, :]).mean(axis=0)
    return pd.DataFrame(rho, index=ratio.columns, columns=taus)


def score(rho: pd.DataFrame) -> pd.Series:
    """The AlgoPerf score of each submission: the normalised area under its rho(tau)."""
    taus = rho.columns.to_numpy(dtype=np.float64)
    y = rho.to_numpy(dtype=np.float64)
    area = ((y[:, 1:] + y[:, :-1]) / 2 * np.diff(taus)).sum(axis=1)  # the trapezoid rule (numpy 1.26 has no trapezoid)
    return pd.Series(area / (taus.max() - taus.min()), index=rho.index, name="score")


def speedups(costs: pd.DataFrame, budgets: pd.Series, baseline: str) -> pd.Series:
    """Each submission's geometric-mean speed-up over `baseline` across workloads, misses at budget + 1."""
    c = costs.astype(np.float64).to_numpy()
    capped = np.where(np.isinf(c), (budgets.to_numpy(dtype=np.float64) + 1)[:, None], c)
    ratio = capped[:, list(costs.columns).index(baseline)][:, None] / capped
    return pd.Series(np.exp(np.nanmean(np.log(ratio), axis=0)), index=costs.columns, name="speedup")
