"""Tuning per batch size, steps to target and the critical batch size: pure functions over runs.

The optimizer's trial is a tuning axis here, not a panel: every function groups the runs by the report's
facets minus the trial columns (the "tuning panel"), by stateful mode and by batch size, and picks one trial
per group. A trial is one point of a `search:` (its `trial` index), or else one base learning rate of a
`learning_rate` list (`trial_key`).

- Accuracy: the rate with the lowest median **validation** RMSE (`SELECTION_METRIC`); its test RMSE is then
  reported. Choosing the rate on the test set would make the reported test RMSE optimistic, so without a
  validation split there is no tuned accuracy at all.
- Speed to target: the rate that reaches the target in the fewest median steps (or seconds), as Shallue et
  al. 2019 pick the best trial per batch size. A run that never reached the target counts as infinitely
  slow, so a rate whose median run missed it has no value.
- Critical batch size: S(B) = S_min (1 + B_crit / B) (McCandlish et al. 2018, "An Empirical Model of
  Large-Batch Training", eq. 2.11) fitted to the median steps per batch size by least squares on log S, with
  a percentile bootstrap CI (runs resampled within each batch size, fixed seed). It is compared with the
  gradient noise scale B_simple measured while training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from bench.report.load import TUNING_COLUMNS, Results, tuning_columns, tuning_facets
from bench.report import stats
from bench.report.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_ci, mann_whitney
from bench.vocabulary import ATTEMPTED, DIVERGED, OK, target_label

#: The metric the learning rate is chosen on. Validation only: never the test set.
SELECTION_METRIC = "val_rmse"
#: Runs that count as attempts when choosing a rate or timing a target (diverged ones as failures).
#: Fewest batch sizes with a median to fit S(B) (two parameters, and one degree of freedom left).
MIN_FIT_BATCH_SIZES = 3
#: B_crit and B_simple "disagree" when they differ by more than this factor.
DISAGREE_FACTOR = 2.0
#: The fit searches B_crit over the measured batch sizes widened by this factor on each side.
_SEARCH_WIDEN = 1.0e3
_GRID_POINTS = 512
_CHUNK = 256

GROUP: tuple[str, ...] = ("tuning_panel", "mode", "batch_size")

#: Why there is no tuned accuracy without a validation split.
NO_VALIDATION = (
    "no run has a validation split (validation_fraction 0), so no learning rate can be chosen per batch size: "
    "choosing it on the test set would make the reported test RMSE optimistic"
)


def with_tuning_columns(runs: pd.DataFrame, facets: tuple[str, ...]) -> pd.DataFrame:
    """Prepared runs with the tuning columns (`bench.report.load.tuning_columns`): loaded runs have them
    already (derived once, in `prepare_runs`) and come back as they are; other frames get them added."""
    if set(TUNING_COLUMNS) <= set(runs.columns):
        return runs
    return runs.assign(**tuning_columns(runs, facets))


def rates_tried(runs: pd.DataFrame, facets: tuple[str, ...]) -> int:
    """Most trials (base learning rates of a list) tried for one batch size of one tuning panel and mode (ok runs)."""
    ok = runs[runs["status"] == OK]
    if ok.empty:
        return 0
    frame = with_tuning_columns(ok, facets)
    return int(frame.groupby(list(GROUP), sort=False)["trial_key"].nunique().max())


def has_validation(runs: pd.DataFrame) -> bool:
    """Whether any successful run was scored on a validation split."""
    if "val_rmse" not in runs:
        return False
    return bool(runs.loc[runs["status"] == OK, "val_rmse"].notna().any())


def is_tuning_sweep(runs: pd.DataFrame, facets: tuple[str, ...]) -> bool:
    """Whether the tuning figures apply: more than one learning rate per batch size, or a validation split."""
    return rates_tried(runs, facets) > 1 or has_validation(runs)


def _label_columns(facets: tuple[str, ...]) -> list[str]:
    return ["tuning_panel", *stats._label_columns(tuning_facets(facets))]


def group_columns(facets: tuple[str, ...]) -> list[str]:
    """The columns that name a (tuning panel, mode, batch size) group, the panel's facets among them."""
    return _label_columns(facets)


def _ordered(table: pd.DataFrame, facets: tuple[str, ...], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    return stats._ordered(table, tuning_facets(facets), extra)


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else float("nan")


#: What names a trial in the tuning tables: its key, index (NaN for a rate of a list) and searched values.
TRIAL_NAME: tuple[str, ...] = ("trial_key", "trial", "study", "search_point", "base_learning_rate", "learning_rate")


def _trial_name(key: str, g: pd.DataFrame) -> dict[str, object]:
    """`TRIAL_NAME`'s values for the runs `g` of trial `key`."""
    point = g["search_point"].dropna() if "search_point" in g else pd.Series(dtype=object)
    return {
        "trial_key": key,
        **{c: float(pd.to_numeric(g[c], errors="coerce").iloc[0]) if c in g else np.nan for c in ("trial", "study")},
        "search_point": point.iloc[0] if len(point) else None,
        "base_learning_rate": float(g["rate"].median()),
        "learning_rate": float(pd.to_numeric(g["learning_rate"], errors="coerce").median()),
    }


def rate_scores(runs: pd.DataFrame, facets: tuple[str, ...], metric: str = SELECTION_METRIC) -> pd.DataFrame:
    """Per tuning panel, mode, batch size and trial: the median of `metric` over ok and diverged runs, a
    diverged run counting as infinitely bad (so a trial that mostly diverges scores inf).

    Groups (panel, mode, batch size) where no ok run recorded `metric` are left out. Columns: the label
    columns, `TRIAL_NAME` (`learning_rate` the median effective rate), `n` (ok runs with the metric),
    `n_diverged`, `median`.
    """
    labels = _label_columns(facets)
    cols = [*labels, *TRIAL_NAME, "n", "n_diverged", "median"]
    frame = runs[runs["status"].isin(ATTEMPTED)]
    if frame.empty or metric not in frame:
        return pd.DataFrame(columns=cols)
    frame = with_tuning_columns(frame, facets)
    diverged = (frame["status"] == DIVERGED).to_numpy()
    value = pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=np.float64)
    frame = frame.assign(_value=np.where(diverged, np.inf, value), _diverged=diverged)
    frame = frame[np.isfinite(frame["_value"]) | frame["_diverged"]]
    scored = frame[~frame["_diverged"]].groupby(list(GROUP), sort=False).size()
    if scored.empty:
        return pd.DataFrame(columns=cols)
    keep = pd.MultiIndex.from_frame(frame[list(GROUP)]).isin(scored.index)
    frame = frame[keep]
    rows = []
    for keys, g in frame.groupby([*labels, "trial_key"], dropna=False, sort=False):
        values = g["_value"].to_numpy(dtype=np.float64)
        rows.append(
            {
                **dict(zip(labels, keys[:-1])),
                **_trial_name(keys[-1], g),
                "n": int((~g["_diverged"]).sum()),
                "n_diverged": int(g["_diverged"].sum()),
                "median": _median(values),
            }
        )
    return _ordered(pd.DataFrame(rows, columns=cols), facets, ("base_learning_rate",))


def _pick(scores: pd.DataFrame, by: list[str], ascending: list[bool]) -> pd.DataFrame:
    """The first row per (panel, mode, batch size) after sorting by `by`, with how many trials were tried."""
    ordered = scores.sort_values(by, ascending=ascending, kind="stable")
    best = ordered.groupby(list(GROUP), sort=False, dropna=False).head(1)
    tried = scores.groupby(list(GROUP), sort=False)["trial_key"].nunique().rename("trials_tried")
    return best.merge(tried.reset_index(), on=list(GROUP))


def select_rates(runs: pd.DataFrame, facets: tuple[str, ...]) -> pd.DataFrame:
    """Per tuning panel, mode and batch size, the trial with the lowest median validation RMSE (ties: the
    smaller rate). Selection reads `SELECTION_METRIC` only, never a test metric.

    Columns: the label columns, `TRIAL_NAME` (rates NaN when every trial mostly diverged), `trials_tried`,
    `val_rmse_median`, `n_diverged`.
    """
    scores = rate_scores(runs, facets, SELECTION_METRIC)
    labels = _label_columns(facets)
    cols = [*labels, *TRIAL_NAME, "trials_tried", "val_rmse_median", "n_diverged"]
    if scores.empty:
        return pd.DataFrame(columns=cols)
    best = _pick(scores, ["median", "base_learning_rate"], [True, True])
    lost = ~np.isfinite(best["median"].to_numpy(dtype=np.float64))
    best.loc[lost, ["base_learning_rate", "learning_rate"]] = np.nan
    best = best.rename(columns={"median": "val_rmse_median"})
    best.loc[lost, "val_rmse_median"] = np.nan
    return _ordered(best[cols], facets)


def _match(frame: pd.DataFrame, row: pd.Series) -> pd.Series:
    mask = frame["trial_key"] == row["trial_key"]
    for c in GROUP:
        mask &= frame[c] == row[c]
    return mask


def tuned_table(runs: pd.DataFrame, facets: tuple[str, ...], chosen: pd.DataFrame | None = None) -> pd.DataFrame:
    """The tuned accuracy per tuning panel, mode and batch size: the validation-chosen trial (`select_rates`,
    or `chosen` where already computed) and the test RMSE of its ok runs (n, mean, median, bootstrap CI of
    the mean), with a Mann-Whitney test against the batch size of the same panel and mode with the lowest mean.
    Empty without a validation split."""
    labels = _label_columns(facets)
    cols = [
        *labels,
        "trial_key",
        "trial",
        "search_point",
        "base_learning_rate",
        "learning_rate",
        "trials_tried",
        "n",
        "n_diverged",
        "val_rmse_median",
        "test_rmse_mean",
        "test_rmse_median",
        "test_rmse_ci_low",
        "test_rmse_ci_high",
        "vs_best",
        "p_vs_best",
        "note",
    ]
    chosen = select_rates(runs, facets) if chosen is None else chosen
    if chosen.empty:
        return pd.DataFrame(columns=cols)
    ok = with_tuning_columns(runs[(runs["status"] == OK) & runs["test_rmse"].notna()], facets)
    rows, samples = [], []
    for _, row in chosen.iterrows():
        x = ok.loc[_match(ok, row), "test_rmse"].to_numpy(dtype=np.float64)
        ci = bootstrap_ci(x)
        note = ""
        if not np.isfinite(row["base_learning_rate"]):
            note = "most runs diverged in every trial"
        elif not ci:
            note = "single run: no CI"
        samples.append(x)
        rows.append(
            {
                **row.to_dict(),
                "n": len(x),
                "test_rmse_mean": float(x.mean()) if len(x) else np.nan,
                "test_rmse_median": _median(x),
                "test_rmse_ci_low": ci[0] if ci else np.nan,
                "test_rmse_ci_high": ci[1] if ci else np.nan,
                "vs_best": "",
                "p_vs_best": np.nan,
                "note": note,
            }
        )
    table = pd.DataFrame(rows)
    for _, g in table.groupby(["tuning_panel", "mode"], sort=False):
        scored = g[g["test_rmse_mean"].notna()]
        if scored.empty:
            continue
        best = scored["test_rmse_mean"].idxmin()
        for i in scored.index:
            if i == best:
                table.at[i, "vs_best"] = "best"
                continue
            test = mann_whitney(samples[i], samples[best])
            table.at[i, "vs_best"] = test.describe()
            table.at[i, "p_vs_best"] = test.p if test.p is not None else np.nan
    return _ordered(table[cols], facets)


def target_scores(runs: pd.DataFrame, facets: tuple[str, ...], column: str = "steps_to_target") -> pd.DataFrame:
    """Per tuning panel, mode, batch size and trial: the median `column` (steps_to_target or
    seconds_to_target) of its ok and diverged runs with a target, a run that never reached the target
    counting as infinitely slow (so a trial whose median run missed it scores inf).

    Columns: the label columns, `target`, `TRIAL_NAME`, `n`, `reached`, `median`. Empty when no run
    recorded `column` (databases older than the column).
    """
    labels = _label_columns(facets)
    cols = [*labels, "target", *TRIAL_NAME, "n", "reached", "median"]
    if column not in runs:
        return pd.DataFrame(columns=cols)
    frame = runs[runs["status"].isin(ATTEMPTED) & runs["target_metric"].notna()]
    if frame.empty or not frame[column].notna().any():
        return pd.DataFrame(columns=cols)
    frame = with_tuning_columns(frame, facets)
    rows = []
    for keys, g in frame.groupby([*labels, "trial_key"], dropna=False, sort=False):
        values = pd.to_numeric(g[column], errors="coerce").to_numpy(dtype=np.float64)
        first = g.iloc[0]
        rows.append(
            {
                **dict(zip(labels, keys[:-1])),
                "target": target_label(first["target_metric"], first["target_value"]),
                **_trial_name(keys[-1], g),
                "n": len(values),
                "reached": int(np.isfinite(values).sum()),
                "median": _median(np.where(np.isnan(values), np.inf, values)),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def target_choices(
    runs: pd.DataFrame, facets: tuple[str, ...], column: str = "steps_to_target", scores: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per tuning panel, mode and batch size, the trial whose median run reached the target in the fewest
    `column` (`target_scores`, or `scores` where already computed): Shallue et al. 2019's steps to result
    over trials. A batch size whose every trial has a median run that missed the target gets NaN rate and
    median. Ties: more runs reaching the target, then the smaller rate.

    Columns: the label columns, `target`, `TRIAL_NAME`, `trials_tried`, `n`, `reached`, `median`.
    """
    labels = _label_columns(facets)
    cols = [*labels, "target", *TRIAL_NAME, "trials_tried", "n", "reached", "median"]
    scores = target_scores(runs, facets, column) if scores is None else scores
    if scores.empty:
        return pd.DataFrame(columns=cols)
    best = _pick(scores, ["median", "reached", "base_learning_rate"], [True, False, True])
    missed = ~np.isfinite(best["median"].to_numpy(dtype=np.float64))
    best.loc[missed, ["base_learning_rate", "learning_rate", "median"]] = np.nan
    return _ordered(best[cols], facets)


def chosen_runs(runs: pd.DataFrame, facets: tuple[str, ...], choices: pd.DataFrame) -> pd.DataFrame:
    """The runs (with the tuning columns) of the trial chosen per group in `choices` (`select_rates`,
    `target_choices`); groups without a chosen trial have none."""
    frame = with_tuning_columns(runs, facets)
    pick = choices.dropna(subset=["base_learning_rate"])[[*GROUP, "trial_key"]]
    return frame.merge(pick, on=[*GROUP, "trial_key"])


@dataclass(frozen=True)
class ScalingFit:
    """S(B) = s_min (1 + b_crit / B) fitted to median steps per batch size, with a bootstrap CI of b_crit."""

    s_min: float
    b_crit: float
    ci_low: float
    ci_high: float
    batch_sizes: tuple[int, ...]  # those with a median, used by the fit
    note: str = ""
    # batch sizes left out because most of their runs met the target at the first evaluation
    too_easy: tuple[int, ...] = ()

    def steps(self, batch_size: np.ndarray | float) -> np.ndarray:
        return self.s_min * (1.0 + self.b_crit / np.asarray(batch_size, dtype=np.float64))

    @property
    def has_ci(self) -> bool:
        return bool(np.isfinite(self.ci_low) and np.isfinite(self.ci_high))

    @property
    def unbounded(self) -> bool:
        """Whether the data only bound B_crit from below: it, or its interval, runs past the largest batch size."""
        return unbounded(self.b_crit, self.ci_high, max(self.batch_sizes))

    def describe(self) -> str:
        """'B_crit 64 (95% CI 50-80)', or 'B_crit at least 32' when the interval runs past the largest batch size."""
        if self.unbounded:
            return f"B_crit at least {max(self.batch_sizes)}"
        if not self.has_ci:
            return f"B_crit {self.b_crit:.3g} (no CI)"
        ci = interval_text(self.ci_low, self.ci_high, min(self.batch_sizes), max(self.batch_sizes))
        return f"B_crit {self.b_crit:.3g} (95% CI {ci})"


def unbounded(b_crit: float, ci_high: float, largest: float) -> bool:
    """A critical batch size past the largest batch size tried, or whose CI runs past it, is only a lower bound."""
    return bool(np.isfinite(b_crit) and (b_crit > largest or (np.isfinite(ci_high) and ci_high > largest)))


def interval_text(low: float, high: float, smallest: float, largest: float) -> str:
    """'50-80'; a bound beyond the batch sizes measured, which the data cannot pin down, reads 'below 1' or
    'above 32' instead of the edge of the fit's search."""
    lo = f"below {smallest:g}" if low < smallest else f"{low:.3g}"
    hi = f"above {largest:g}" if high > largest else f"{high:.3g}"
    return f"{lo}-{hi}" if low >= smallest and high <= largest else f"{lo} to {hi}"


def _grid(batch_sizes: np.ndarray) -> np.ndarray:
    lo, hi = np.log(batch_sizes.min() / _SEARCH_WIDEN), np.log(batch_sizes.max() * _SEARCH_WIDEN)
    return np.linspace(lo, hi, _GRID_POINTS)


def _sse(log_s: np.ndarray, weights: np.ndarray, log_c: np.ndarray, batch_sizes: np.ndarray) -> np.ndarray:
    """Weighted residual sum of squares of log S for each row of log_s (R, nB) and each log B_crit (G,),
    with log S_min at its closed-form optimum (the weighted mean residual). Returns (R, G)."""
    r = log_s[:, None, :] - np.log1p(np.exp(log_c)[None, :, None] / batch_sizes[None, None, :])
    w = weights[:, None, :]
    mean = (w * r).sum(axis=2, keepdims=True) / w.sum(axis=2, keepdims=True)
    return (w * (r - mean) ** 2).sum(axis=2)


def _log_s_min(log_s: np.ndarray, weights: np.ndarray, log_c: np.ndarray, batch_sizes: np.ndarray) -> np.ndarray:
    r = log_s - np.log1p(np.exp(log_c)[:, None] / batch_sizes[None, :])
    return (weights * r).sum(axis=1) / weights.sum(axis=1)


def _fit_many(batch_sizes: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit each row of `steps` (R, nB; inf or NaN: left out) over a log grid of B_crit refined by a
    parabola. Returns s_min, b_crit (NaN where fewer than MIN_FIT_BATCH_SIZES values) and at_edge."""
    steps = np.atleast_2d(np.asarray(steps, dtype=np.float64))
    weights = (np.isfinite(steps) & (steps > 0)).astype(np.float64)
    log_s = np.log(np.where(weights > 0, steps, 1.0))
    grid = _grid(batch_sizes)
    step = grid[1] - grid[0]
    s_min = np.full(len(steps), np.nan)
    b_crit = np.full(len(steps), np.nan)
    edge = np.zeros(len(steps), dtype=bool)
    usable = weights.sum(axis=1) >= MIN_FIT_BATCH_SIZES
    for start in range(0, len(steps), _CHUNK):
        idx = np.flatnonzero(usable[start : start + _CHUNK]) + start
        if not len(idx):
            continue
        sse = _sse(log_s[idx], weights[idx], grid, batch_sizes)
        k = sse.argmin(axis=1)
        inner = (k > 0) & (k < len(grid) - 1)
        kk = np.clip(k, 1, len(grid) - 2)
        rows = np.arange(len(idx))
        f0, f1, f2 = sse[rows, kk - 1], sse[rows, kk], sse[rows, kk + 1]
        curvature = f0 - 2 * f1 + f2
        shift = np.where(inner & (curvature > 0), 0.5 * (f0 - f2) / np.where(curvature > 0, curvature, 1.0), 0.0)
        log_c = grid[k] + np.clip(shift, -1.0, 1.0) * step
        s_min[idx] = np.exp(_log_s_min(log_s[idx], weights[idx], log_c, batch_sizes))
        b_crit[idx] = np.exp(log_c)
        edge[idx] = ~inner
    return s_min, b_crit, edge


def fit_scaling(batch_sizes: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of S(B) = S_min (1 + B_crit / B) on log S to one value per batch size.

    Returns (S_min, B_crit); NaNs with fewer than MIN_FIT_BATCH_SIZES finite values. B_crit is searched
    between the smallest batch size / 1000 and the largest x 1000 (the fit pins to those edges when the
    steps do not fall with batch size at all, or fall in perfect proportion throughout)."""
    b = np.asarray(batch_sizes, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    s_min, b_crit, edge = _fit_many(b, s[None, :])
    if not np.isfinite(b_crit[0]) or edge[0]:
        return float(s_min[0]), float(b_crit[0])
    ok = np.isfinite(s) & (s > 0)
    log_s, bb = np.log(s[ok]), b[ok]

    def sse(log_c: float) -> float:
        r = log_s - np.log1p(np.exp(log_c) / bb)
        return float(((r - r.mean()) ** 2).sum())

    step = (_grid(b)[1] - _grid(b)[0]) * 2
    res = optimize.minimize_scalar(sse, bounds=(np.log(b_crit[0]) - step, np.log(b_crit[0]) + step), method="bounded")
    log_c = float(res.x) if sse(float(res.x)) <= sse(float(np.log(b_crit[0]))) else float(np.log(b_crit[0]))
    return float(np.exp((log_s - np.log1p(np.exp(log_c) / bb)).mean())), float(np.exp(log_c))


def _median_inf(values: np.ndarray) -> float:
    return _median(np.where(np.isnan(values), np.inf, values))


def met_at_first_evaluation(runs: pd.DataFrame) -> np.ndarray:
    """Per run, whether it met the target at its first evaluation: its steps to target say only that
    the target is at most that easy, not how many steps it takes (`first_eval_step`, `bench.report.load`)."""
    if "first_eval_step" not in runs or "steps_to_target" not in runs:
        return np.zeros(len(runs), dtype=bool)
    s = pd.to_numeric(runs["steps_to_target"], errors="coerce").to_numpy(dtype=np.float64)
    first = pd.to_numeric(runs["first_eval_step"], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(s) & np.isfinite(first) & (s <= first)


def too_easy_sizes(batch_sizes: np.ndarray, at_first: np.ndarray) -> np.ndarray:
    """The batch sizes most of whose runs met the target at the first evaluation."""
    b = np.asarray(batch_sizes, dtype=np.float64)
    flags = np.asarray(at_first, dtype=bool)
    return np.array([size for size in np.unique(b) if flags[b == size].mean() > 0.5])


#: Zhang et al. 2024's critical batch size: where steps to target exceed perfect scaling by this share.
EXCESS = 0.2


def excess_critical_batch_size(
    batch_sizes: np.ndarray, steps: np.ndarray, at_first: np.ndarray | None = None, excess: float = EXCESS
) -> tuple[float, str]:
    """The batch size where the median steps to target first exceed perfect scaling from the smallest batch size
    (S(B_0) B_0 / B) by `excess`, interpolated in log B between the two batch sizes around it, and a note. A
    batch size whose median run missed the target exceeds it; batch sizes most of whose runs met the target
    at the first evaluation are left out (as for the S(B) fit). NaN with fewer than 2 batch sizes, or when the
    smallest met the target in 0 steps (nothing to scale from); the largest batch size tried, with the note
    "at least", when none exceeds."""
    b = np.asarray(batch_sizes, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    easy = too_easy_sizes(b, at_first) if at_first is not None else np.array([])
    sizes = np.array([x for x in np.unique(b) if x not in easy])
    medians = np.array([_median_inf(s[b == x]) for x in sizes])
    if len(sizes) < 2 or not np.isfinite(medians[0]) or medians[0] <= 0:  # no scaling from 0 steps
        return float("nan"), ""
    ratio = medians * sizes / (medians[0] * sizes[0])  # 1 at the smallest batch size: perfect scaling
    over = np.nonzero(ratio > 1 + excess)[0]
    if not len(over):
        return float(sizes[-1]), f"at least {sizes[-1]:g}: steps stay within {excess:.0%} of perfect scaling"
    i = int(over[0])
    lo, hi = np.log(ratio[i - 1]), np.log(ratio[i]) if np.isfinite(ratio[i]) else np.inf
    t = 0.0 if not np.isfinite(hi) else (np.log(1 + excess) - lo) / (hi - lo)
    value = float(np.exp(np.log(sizes[i - 1]) + t * (np.log(sizes[i]) - np.log(sizes[i - 1]))))
    return value, ""


def critical_batch_size(
    batch_sizes: np.ndarray,
    steps: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
    at_first: np.ndarray | None = None,
) -> ScalingFit | None:
    """Fit S(B) = S_min (1 + B_crit / B) to per-run steps to target (NaN: never reached), one median per
    batch size (a batch size whose median run missed the target is left out, and so is one most of whose
    runs met it at the first evaluation, `at_first`: its steps are an upper bound, not a measurement).
    The CI of B_crit is a percentile bootstrap: runs resampled with replacement within each batch size,
    the medians refitted, with a fixed seed. None with fewer than MIN_FIT_BATCH_SIZES batch sizes left."""
    b = np.asarray(batch_sizes, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    easy = too_easy_sizes(b, at_first) if at_first is not None else np.array([])
    keep = ~np.isin(b, easy)
    b, s = b[keep], s[keep]
    sizes = np.unique(b)
    groups = [s[b == size] for size in sizes]
    medians = np.array([_median_inf(g) for g in groups])
    used = np.isfinite(medians)
    if used.sum() < MIN_FIT_BATCH_SIZES:
        return None
    s_min, b_crit = fit_scaling(sizes, medians)
    notes = []
    if len(easy):
        notes.append(
            "left out of the fit, as most of their runs met the target at the first evaluation: batch sizes "
            + ", ".join(f"{x:g}" for x in easy)
        )
    _, _, edge = _fit_many(sizes, medians[None, :])
    if edge[0]:
        notes.append(
            "B_crit pinned at the edge of the search: steps do not fall with batch size"
            if b_crit < sizes.min()
            else "B_crit pinned at the edge of the search: steps fall in proportion to batch size throughout"
        )
    elif not sizes[used].min() <= b_crit <= sizes[used].max():
        notes.append("B_crit lies outside the batch sizes measured (extrapolated)")
    ci_low = ci_high = float("nan")
    if max(len(g) for g in groups) < 2:
        notes.append("one run per batch size: no CI")
    else:
        rng = np.random.default_rng(seed)
        boot = np.empty((resamples, len(sizes)))
        for j, g in enumerate(groups):
            draws = np.where(np.isnan(g), np.inf, g)[rng.integers(0, len(g), size=(resamples, len(g)))]
            boot[:, j] = np.median(draws, axis=1)
        _, b_boot, _ = _fit_many(sizes, boot)
        finite = b_boot[np.isfinite(b_boot)]
        if len(finite) >= resamples / 2:
            tail = (1.0 - level) / 2.0 * 100.0
            lo, hi = np.percentile(finite, [tail, 100.0 - tail])
            ci_low, ci_high = float(lo), float(hi)
        else:
            notes.append("too few bootstrap resamples could be fitted: no CI")
    return ScalingFit(
        s_min,
        b_crit,
        ci_low,
        ci_high,
        tuple(int(x) for x in sizes[used]),
        "; ".join(notes),
        tuple(int(x) for x in easy),
    )


def noise_scale_at_target(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with `grad_noise_scale` as each run's estimate at the epoch it first met the target (NaN
    when it never did). The noise scale grows as the loss falls, and on a training set fitted to
    convergence the batch gradient cancels out and the estimate loses meaning, so the final value is
    a poor summary; at the target it is read at the loss level the steps to target are counted to."""
    if "grad_noise_scale" not in epochs or "epochs_to_target" not in runs:
        return runs
    at = epochs[["run_id", "epoch", "grad_noise_scale"]].rename(columns={"epoch": "epochs_to_target"})
    keyed = runs[["run_id", "epochs_to_target"]].merge(at, on=["run_id", "epochs_to_target"], how="left")
    return runs.assign(grad_noise_scale=keyed["grad_noise_scale"].to_numpy())


def noise_scale_summary(values: np.ndarray) -> tuple[float, float, float, int]:
    """Median and interquartile range of final B_simple values (NaN and non-positive ones left out):
    (median, q1, q3, n)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if not len(x):
        return float("nan"), float("nan"), float("nan"), 0
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return float(med), float(q1), float(q3), len(x)


def compare_estimates(
    b_crit: float, ci: tuple[float, float], b_simple: float, iqr: tuple[float, float]
) -> tuple[bool, str]:
    """Whether B_crit (from steps) and B_simple (from the noise scale) disagree, and a sentence saying so.
    They disagree when they differ by more than DISAGREE_FACTOR, or when their intervals (the CI of
    B_crit, the IQR of B_simple) do not overlap."""
    ratio = max(b_crit, b_simple) / min(b_crit, b_simple)
    known = all(np.isfinite(v) for v in (*ci, *iqr))
    if ratio > DISAGREE_FACTOR:
        return True, f"they disagree: they differ by {ratio:.1f}x (more than {DISAGREE_FACTOR:g}x)"
    if known and (ci[1] < iqr[0] or iqr[1] < ci[0]):
        return True, "they disagree: their intervals do not overlap"
    return False, f"they agree within {ratio:.1f}x"


def critical_table(
    runs: pd.DataFrame, facets: tuple[str, ...], choices: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[tuple[str, str], ScalingFit]]:
    """Per tuning panel and mode: the critical batch size from steps to target (S_min, B_crit and its
    bootstrap CI, fitted to the rate with the fewest median steps per batch size) and from the gradient
    noise scale (median and IQR of the final B_simple over ok runs at every rate), and whether they agree.
    Also returns each fit by (tuning panel, mode), for the figure that draws it. `choices`: `target_choices`
    of steps, where already computed."""
    labels = ["tuning_panel", *tuning_facets(facets), "mode"]
    cols = [
        *labels,
        "target",
        "batch_sizes",
        "s_min",
        "b_crit",
        "b_crit_ci_low",
        "b_crit_ci_high",
        "b_crit_20",
        "b_simple_median",
        "b_simple_q1",
        "b_simple_q3",
        "b_simple_n",
        "disagree",
        "too_easy",
        "note",
    ]
    choices = target_choices(runs, facets, "steps_to_target") if choices is None else choices
    if choices.empty:
        choices = pd.DataFrame(columns=[*GROUP, "trial_key", "base_learning_rate", "target"])
    steps = chosen_runs(runs[runs["status"].isin(ATTEMPTED)], facets, choices)
    noise = runs[(runs["status"] == OK) & runs["grad_noise_scale"].notna()] if "grad_noise_scale" in runs else None
    noise = with_tuning_columns(noise if noise is not None else runs.iloc[:0], facets)
    keys = pd.concat([steps[labels], noise[labels]]).drop_duplicates()
    rows = []
    fits: dict[tuple[str, str], ScalingFit] = {}
    for _, key in keys.iterrows():
        row: dict[str, object] = dict(key)
        in_group = (steps["tuning_panel"] == key["tuning_panel"]) & (steps["mode"] == key["mode"])
        g = steps[in_group]
        at_first = met_at_first_evaluation(g)
        fit = (
            critical_batch_size(
                g["batch_size"].to_numpy(), g["steps_to_target"].to_numpy(dtype=np.float64), at_first=at_first
            )
            if len(g)
            else None
        )
        easy = too_easy_sizes(g["batch_size"].to_numpy(), at_first) if len(g) else np.array([])
        b20, b20_note = (
            excess_critical_batch_size(
                g["batch_size"].to_numpy(), g["steps_to_target"].to_numpy(dtype=np.float64), at_first
            )
            if len(g)
            else (np.nan, "")
        )
        row["b_crit_20"] = b20
        if fit is not None:
            fits[key["tuning_panel"], key["mode"]] = fit
        target = choices.loc[(choices["tuning_panel"] == key["tuning_panel"]) & (choices["mode"] == key["mode"])]
        row["target"] = target["target"].iloc[0] if len(target) else ""
        row["batch_sizes"] = " ".join(str(b) for b in fit.batch_sizes) if fit else ""
        row["s_min"] = fit.s_min if fit else np.nan
        row["b_crit"] = fit.b_crit if fit else np.nan
        row["b_crit_ci_low"] = fit.ci_low if fit else np.nan
        row["b_crit_ci_high"] = fit.ci_high if fit else np.nan
        notes = [fit.note] if fit and fit.note else []
        if b20_note:
            notes.append(f"B_crit (20% excess) {b20_note}")
        if len(g) and not fit:
            notes.append(
                f"fewer than {MIN_FIT_BATCH_SIZES} batch sizes reached the target"
                + (" after the first evaluation" if len(easy) else "")
                + ": no fit"
            )
        row["too_easy"] = " ".join(f"{x:g}" for x in easy)
        n_in = noise[(noise["tuning_panel"] == key["tuning_panel"]) & (noise["mode"] == key["mode"])]
        med, q1, q3, n = noise_scale_summary(pd.to_numeric(n_in["grad_noise_scale"]).to_numpy(dtype=np.float64))
        row.update(b_simple_median=med, b_simple_q1=q1, b_simple_q3=q3, b_simple_n=n)
        row["disagree"] = None
        if fit and n and np.isfinite(fit.b_crit):
            disagree, sentence = compare_estimates(fit.b_crit, (fit.ci_low, fit.ci_high), med, (q1, q3))
            row["disagree"] = disagree
            notes.append(sentence)
        row["note"] = "; ".join(notes)
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=cols), fits
    return _ordered(pd.DataFrame(rows)[cols], facets), fits


def target_scaling_table(
    runs: pd.DataFrame, facets: tuple[str, ...], choices: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Per tuning panel, mode and batch size: the rate reaching the target in the fewest median steps and
    that median, and the rate reaching it in the least median time and that median (`target_choices`,
    or `choices` by column where already computed)."""
    labels = _label_columns(facets)
    parts = []
    for column, prefix in (("steps_to_target", "steps"), ("seconds_to_target", "seconds")):
        c = (choices or {}).get(column)
        c = target_choices(runs, facets, column) if c is None else c
        if c.empty:
            continue
        c = c.drop(columns=["trial_key", "search_point", "study"]).rename(
            columns={
                "trial": f"{prefix}_trial",
                "base_learning_rate": f"{prefix}_base_learning_rate",
                "learning_rate": f"{prefix}_learning_rate",
                "reached": f"{prefix}_reached",
                "median": f"{prefix}_median",
            }
        )
        parts.append(c.drop(columns=["trials_tried", "n"]) if parts else c)
    if not parts:
        return pd.DataFrame(columns=[*labels, "target"])
    table = parts[0]
    for p in parts[1:]:
        table = table.merge(p, on=[*labels, "target"], how="outer")
    return _ordered(table, facets)


@dataclass(frozen=True)
class NoiseCurves:
    """The gradient noise scale over training: the median B_simple (`b`) and step (`x`) per tuning panel, mode,
    batch size and epoch (positive values only), the batch sizes of the runs drawn, whether every rate was
    pooled (no validation choice), and why there is nothing to draw when `frame` is empty."""

    frame: pd.DataFrame
    sizes: tuple[float, ...] = ()
    pooled: bool = True
    reason: str = ""


def noise_scale_curves(results: Results, validation: bool, rates: pd.DataFrame) -> NoiseCurves:
    """`NoiseCurves` of successful runs that measured the noise scale: at the rate chosen on validation when
    there is one, otherwise every rate pooled."""
    empty = pd.DataFrame()
    if "grad_noise_scale" not in results.epochs:
        return NoiseCurves(empty, reason="no run measured the gradient noise scale (noise_scale: true)")
    ep = results.epochs[results.epochs["grad_noise_scale"].notna()]
    ok = results.ok[results.ok["run_id"].isin(ep["run_id"])]
    if ep.empty or ok.empty:
        return NoiseCurves(empty, reason="no successful run measured the gradient noise scale (noise_scale: true)")
    pooled = True
    if validation:
        chosen = chosen_runs(ok, results.facets, rates)
        if not chosen.empty:
            ok, pooled = chosen, False
    if pooled:
        ok = with_tuning_columns(ok, results.facets)
    facets = tuning_facets(results.facets)
    frame = ep.merge(ok[["source", "run_id", "tuning_panel", "mode", "batch_size", *facets]])
    frame = frame.assign(x=frame["step"].fillna(frame["epoch"]) if "step" in frame else frame["epoch"])
    agg = (
        frame.groupby(["tuning_panel", "mode", "batch_size", "epoch"], sort=False)
        .agg(x=("x", "median"), b=("grad_noise_scale", "median"))
        .reset_index()
    )
    agg = agg.merge(frame.drop_duplicates(["tuning_panel", "mode"])[["tuning_panel", "mode", *facets]])
    agg = agg[(agg["b"] > 0) & (agg["x"] > 0)]
    reason = "every recorded gradient noise scale is non-positive (the estimate had not settled)" if agg.empty else ""
    return NoiseCurves(agg, tuple(sorted(ok["batch_size"].unique())), pooled, reason)
