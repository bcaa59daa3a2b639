"""A search's trials and studies per batch size: pure functions over the tuning tables (`bench.report.tuning`).

- `trial_table`: every trial of every batch size with its searched values, its median validation RMSE and
  median steps to target, and whether it was the best or mostly diverged (diverged trials are kept).
- `study_table`: MLCommons AlgoPerf's scoring of one search split into studies: a study scores its fastest
  trial to the validation target (inf when none of its trials' median runs reached it), a batch size the
  median over its studies, with their range; beside it the fewest steps over all trials (Shallue et al.
  2019's steps to result).
- `chosen_values`: the searched values of the trial chosen on validation per batch size, one column per
  searched dimension (what the optimum does with batch size).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.report.tuning import GROUP
from bench.vocabulary import DIVERGED


def describe(trial: object, point: object) -> str:
    """ "trial 4 (learning_rate 0.0633, decay linear)" for a search trial's index and `search_point`; "" for
    a run that was not one."""
    if not isinstance(point, str):
        return ""
    values = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in json.loads(point).items())
    return f"trial {int(trial)} ({values})"  # type: ignore[call-overload]


def dimensions(table: pd.DataFrame) -> list[str]:
    """The searched dimensions named in `table`'s `search_point` values, sorted."""
    if "search_point" not in table:
        return []
    names: set[str] = set()
    for point in table["search_point"].dropna():
        names |= set(json.loads(point))
    return sorted(names)


def with_values(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with one column per searched dimension, read from its `search_point` values."""
    names = dimensions(table)
    points = [json.loads(p) if isinstance(p, str) else {} for p in table.get("search_point", [None] * len(table))]
    return table.assign(**{n: [p.get(n) for p in points] for n in names})


def trial_table(val_scores: pd.DataFrame, step_scores: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per group and trial of a search (`rate_scores` on validation, `target_scores` for steps): the trial,
    study, searched values, `val_rmse_median`, `n`, `n_diverged`, `steps_median` (inf: the median run missed
    the target) and `status` (best on validation, diverged when most runs diverged, else empty)."""
    if val_scores.empty or "search_point" not in val_scores or val_scores["search_point"].isna().all():
        return pd.DataFrame()
    table = val_scores.rename(columns={"median": "val_rmse_median"})
    if not step_scores.empty:
        steps = step_scores[[*labels, "trial_key", "median"]].rename(columns={"median": "steps_median"})
        table = table.merge(steps, on=[*labels, "trial_key"], how="left")
    median = table["val_rmse_median"].to_numpy(dtype=np.float64)
    best = table.groupby(list(GROUP), sort=False)["val_rmse_median"].transform("min").to_numpy(dtype=np.float64)
    table["status"] = np.where(~np.isfinite(median), DIVERGED, np.where(median == best, "best", ""))
    table = with_values(table)
    keep = [c for c in (*labels, "trial", "study", *dimensions(table), "base_learning_rate", "val_rmse_median",
                        "steps_median", "n", "n_diverged", "status") if c in table]  # fmt: skip
    table = table[list(dict.fromkeys(keep))].astype({"trial": "Int64", "study": "Int64"})
    return table.sort_values([*labels, "trial"], kind="stable").reset_index(drop=True)


def study_table(step_scores: pd.DataFrame, labels: list[str], prefix: str = "steps") -> pd.DataFrame:
    """Per group of a search split into studies (`target_scores` on steps, or on seconds with `prefix`
    "seconds"): `studies`, `studies_missed`, the median over studies of each study's fewest median steps to
    target (`steps_study_median`, inf when half or more missed) with their `steps_study_min` and
    `steps_study_max`, and `steps_fewest` over all trials."""
    cols = [*labels, "target", "trials", "studies", "studies_missed", f"{prefix}_fewest", f"{prefix}_study_median",
            f"{prefix}_study_min", f"{prefix}_study_max"]  # fmt: skip
    if step_scores.empty or step_scores["study"].isna().all():
        return pd.DataFrame(columns=cols)
    rows = []
    for keys, g in step_scores.dropna(subset=["study"]).groupby(labels, sort=False, dropna=False):
        per_study = g.groupby("study")["median"].min().to_numpy(dtype=np.float64)
        fewest = float(g["median"].min())
        rows.append(
            {
                **dict(zip(labels, keys)),
                "target": g["target"].iloc[0],
                "trials": len(g),
                "studies": len(per_study),
                "studies_missed": int((~np.isfinite(per_study)).sum()),
                f"{prefix}_fewest": fewest,
                f"{prefix}_study_median": float(np.median(per_study)),
                f"{prefix}_study_min": float(per_study.min()),
                f"{prefix}_study_max": float(per_study.max()),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def chosen_values(rates: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per group, the chosen trial (`select_rates`) and its value of each searched dimension."""
    if rates.empty or "search_point" not in rates or rates["search_point"].isna().all():
        return pd.DataFrame()
    table = with_values(rates.dropna(subset=["search_point"]))
    table = table[[*labels, "trial", *dimensions(table), "val_rmse_median"]].astype({"trial": "Int64"})
    return table.reset_index(drop=True)
