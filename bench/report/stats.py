"""Summary tables: per-configuration statistics, tests against the best batch size, time to target.

Accuracy and speed statistics use status 'ok' runs only. Time to target also counts diverged
runs, as attempts that did not reach the target: leaving them out would flatter a batch size
that often diverges. Every run that is not 'ok' is listed by `problem_table`.
"""

from __future__ import annotations

import json

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bench.baselines import BASELINES
from bench.report.load import TRIAL_COLUMNS, Results, panel_labels
from bench.vocabulary import ATTEMPTED, MODE_ORDER, STATUSES, scope_label, target_label

#: Smallest number of runs per group for a Mann-Whitney test or an olympic mean.
MIN_REPEATS = 3
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261128
#: Two one-sided tests at 5% each: the 90% interval of a difference (`relative_difference`).
EQUIVALENCE_LEVEL = 0.90
#: A run was timed on a busy machine when other processes used more than this share of the CPU ...
BUSY_OTHER_SHARE = 0.2
#: ... or the hypervisor stole more than this share.
BUSY_STEAL = 0.05


@dataclass(frozen=True)
class Interval:
    """A point estimate with an interval (low == high == value when there is none)."""

    value: float
    low: float
    high: float

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low)

    def text(self, spec: str = ".4g", unit: str = "") -> str:
        value = f"{self.value:{spec}}"
        if not self.known:
            return f"{value}{unit} (no interval)"
        return f"{value} ({self.low:{spec}} to {self.high:{spec}}){unit}"


def speedup(fast: Interval, slow: Interval) -> Interval | None:
    """How many times `slow` the throughput `fast` is, its interval from the intervals' opposite ends (None when
    `slow` is not positive): the one speed-up of two intervals that the Recommendation, findings and `compare`
    print."""
    if not slow.value > 0:
        return None
    return Interval(
        fast.value / slow.value,
        fast.low / slow.high if slow.high > 0 else float("nan"),
        fast.high / slow.low if slow.low > 0 else float("inf"),
    )


def relative_difference(a: np.ndarray, best: np.ndarray, level: float = EQUIVALENCE_LEVEL) -> Interval | None:
    """(mean(a) - mean(best)) / mean(best) with a percentile bootstrap interval (both samples resampled,
    fixed seed); None with fewer than 2 runs on a side. Against a mean of 0, a larger mean is infinitely worse."""
    a, best = np.asarray(a, np.float64), np.asarray(best, np.float64)
    a, best = a[np.isfinite(a)], best[np.isfinite(best)]
    if len(a) < 2 or len(best) < 2:
        return None
    if best.mean() == 0:  # a perfect fit (RMSE 0 in every run): every resample's ratio is x / 0
        worse = 0.0 if a.mean() == 0 else float(np.copysign(np.inf, a.mean()))
        return Interval(worse, worse, worse)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    ma = a[rng.integers(0, len(a), size=(BOOTSTRAP_RESAMPLES, len(a)))].mean(axis=1)
    mb = best[rng.integers(0, len(best), size=(BOOTSTRAP_RESAMPLES, len(best)))].mean(axis=1)
    diff = (ma - mb) / mb
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(diff, [tail, 100 - tail])
    return Interval(float((a.mean() - best.mean()) / best.mean()), float(lo), float(hi))


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = EQUIVALENCE_LEVEL) -> Interval | None:
    """mean(b - a) over pairs with a percentile bootstrap interval over pairs (fixed seed); None with fewer
    than 2 finite pairs. The interval `compare` judges against the accuracy margin."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (b - a)[np.isfinite(a) & np.isfinite(b)]
    ci = bootstrap_ci(d, level)
    return None if ci is None else Interval(float(d.mean()), *ci)


#: The one throughput statistic's name, wherever a user reads it (`speed_interval`).
THROUGHPUT = "median samples/s"


def speed_interval(runs: pd.DataFrame) -> Interval:
    """The throughput of a configuration (`THROUGHPUT`): the median over runs of each run's median timed round
    (`bench.results.Throughput`), with an interval: the interquartile range of the timed rounds (median of the
    runs' quartiles), widened to the 95% bootstrap interval of the median over repeats where that is wider.
    Runs trained together share their rounds."""
    sps = pd.to_numeric(runs["samples_per_sec"], errors="coerce")
    if "sps_median" in runs:
        sps = pd.to_numeric(runs["sps_median"], errors="coerce").fillna(sps)
    values = sps.to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return Interval(float("nan"), float("nan"), float("nan"))
    median = float(np.median(values))
    lows, highs = [median], [median]
    if "sps_q1" in runs:
        q1 = pd.to_numeric(runs["sps_q1"], errors="coerce").dropna()
        q3 = pd.to_numeric(runs["sps_q3"], errors="coerce").dropna()
        if len(q1) and len(q3):
            lows.append(float(np.median(q1)))
            highs.append(float(np.median(q3)))
    if len(values) >= 2 and np.ptp(values) > 0:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        boot = np.median(values[rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))], axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        lows.append(float(lo))
        highs.append(float(hi))
    return Interval(median, min(lows), max(highs))


def busy_runs(runs: pd.DataFrame) -> pd.Series:
    """Per run, whether it was timed on a busy machine (`busy_machine`'s rule)."""
    if "other_cpu_share" not in runs:
        return pd.Series(False, index=runs.index)
    other = pd.to_numeric(runs["other_cpu_share"], errors="coerce")
    steal = pd.to_numeric(runs["cpu_steal"], errors="coerce").fillna(0.0)
    return (other > BUSY_OTHER_SHARE) | (steal > BUSY_STEAL)


@dataclass(frozen=True)
class TestResult:
    """A two-sided Mann-Whitney U test, or why none was run (`p` is None then)."""

    p: float | None
    note: str

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < ALPHA

    def describe(self) -> str:
        """'significant (p=0.012)', 'not significant (p=0.40)' or the reason there is no test. That too few
        repeats cannot reach ALPHA is said once, by the report's diagnostics, not in every comparison."""
        if self.p is None:
            return self.note
        verdict = "significant" if self.significant else "not significant"
        return f"{verdict} (p={self.p:.2g})"


def bootstrap_ci(
    values: np.ndarray, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean, seeded so a report is reproducible; None for n < 2."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def mann_whitney(a: np.ndarray, b: np.ndarray) -> TestResult:
    """Two-sided Mann-Whitney U test of two samples, refusing groups smaller than MIN_REPEATS."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if min(len(a), len(b)) < MIN_REPEATS:
        return TestResult(None, f"too few repeats to test (n={len(a)} vs {len(b)}, need {MIN_REPEATS} each)")
    p = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    # With few repeats even perfectly separated samples cannot reach ALPHA: say so rather than
    # let "not significant" read as "no difference".
    floor = 2.0 / math.comb(len(a) + len(b), len(a))
    note = f"smallest p possible with n={len(a)} vs {len(b)} is {floor:.2g}" if floor >= ALPHA else ""
    return TestResult(p, note)


def olympic_mean(values: np.ndarray) -> tuple[float, str]:
    """MLPerf-style mean dropping the fastest and slowest run; NaN entries are runs that never got there.

    A run that missed the target counts as the slowest, so one miss is dropped like any slowest
    run, but two or more leave no defined score. Fewer than MIN_REPEATS runs get a plain mean.
    """
    x = np.asarray(values, dtype=np.float64)
    n, missed = len(x), int(np.isnan(x).sum())
    if n == 0:
        return float("nan"), "no runs"
    if n < MIN_REPEATS:
        if missed:
            return float("nan"), f"{missed} of {n} runs did not reach the target"
        return float(x.mean()), f"plain mean: olympic scoring needs {MIN_REPEATS}+ runs"
    ordered = np.sort(np.where(np.isnan(x), np.inf, x))[1:-1]
    if np.isinf(ordered).any():
        return float("nan"), f"{missed} of {n} runs did not reach the target"
    note = "1 run that did not reach the target dropped as the slowest" if missed else ""
    return float(ordered.mean()), note


def _ordered(table: pd.DataFrame, facets: tuple[str, ...], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows by facets, then mode (stateful first), then batch size and `extra` where the table has them."""
    mode_rank = {m: i for i, m in enumerate(MODE_ORDER)}
    table = table.assign(_mode_rank=table["mode"].map(mode_rank).fillna(len(MODE_ORDER)))
    keys = [*facets, "_mode_rank", *(c for c in ("batch_size", *extra) if c in table)]
    return table.sort_values(keys, kind="stable").drop(columns="_mode_rank").reset_index(drop=True)


def _label_columns(facets: tuple[str, ...]) -> list[str]:
    return [*facets, "mode", "batch_size"]


def _per_config(runs: pd.DataFrame, facets: tuple[str, ...]) -> pd.core.groupby.DataFrameGroupBy:
    return runs.groupby(["config", "panel", *_label_columns(facets)], dropna=False, sort=False)


def best_baseline(runs: pd.DataFrame) -> tuple[str, float]:
    """The simple baseline (`bench.baselines`) with the lowest mean test RMSE over `runs`, and that RMSE;
    persistence where no other was recorded (runs before results schema 9)."""
    means = {
        b.label: float(pd.to_numeric(runs[b.column], errors="coerce").mean()) for b in BASELINES if b.column in runs
    }
    means = {k: v for k, v in means.items() if np.isfinite(v)}
    if not means:
        return BASELINES[0].label, float("nan")
    label = min(means, key=lambda k: means[k])
    return label, means[label]


def accuracy_table(results: Results) -> pd.DataFrame:
    """Test RMSE per configuration (ok runs): n, mean, std, median, min, max, bootstrap CI of the
    mean, mean skill vs persistence, the best simple baseline with its RMSE and the skill against it
    (1 - mean RMSE / baseline RMSE), and a Mann-Whitney test against the best batch size of the
    same panel and mode (lowest mean RMSE)."""
    facets = results.facets
    cols = [
        *_label_columns(facets),
        "n",
        "rmse_mean",
        "rmse_std",
        "rmse_median",
        "rmse_min",
        "rmse_max",
        "rmse_ci_low",
        "rmse_ci_high",
        "persistence_rmse",
        "skill_mean",
        "best_baseline",
        "best_baseline_rmse",
        "baseline_skill",
        "vs_best",
        "p_vs_best",
        "note",
    ]
    ok = results.ok[results.ok["test_rmse"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=["config", "panel", *cols])
    rows = []
    samples: dict[str, np.ndarray] = {}
    for keys, g in _per_config(ok, facets):
        x = g["test_rmse"].to_numpy(dtype=np.float64)
        samples[keys[0]] = x
        ci = bootstrap_ci(x)
        baseline, baseline_rmse = best_baseline(g)
        rows.append(
            {
                "config": keys[0],
                "panel": keys[1],
                **dict(zip(_label_columns(facets), keys[2:])),
                "n": len(x),
                "rmse_mean": x.mean(),
                "rmse_std": g["test_rmse"].std(),
                "rmse_median": float(np.median(x)),
                "rmse_min": x.min(),
                "rmse_max": x.max(),
                "rmse_ci_low": ci[0] if ci else np.nan,
                "rmse_ci_high": ci[1] if ci else np.nan,
                "persistence_rmse": g["persistence_rmse"].mean(),
                "skill_mean": g["skill"].mean(),
                "best_baseline": baseline,
                "best_baseline_rmse": baseline_rmse,
                "baseline_skill": 1.0 - x.mean() / baseline_rmse if baseline_rmse > 0 else np.nan,
                "note": "" if ci else "single run: no CI",
            }
        )
    table = pd.DataFrame(rows)
    table["vs_best"], table["p_vs_best"] = "", np.nan
    for _, g in table.groupby(["panel", "mode"], sort=False):
        best = g.loc[g["rmse_mean"].idxmin()]
        for i, row in g.iterrows():
            if i == best.name:
                table.at[i, "vs_best"] = "best"
                continue
            test = mann_whitney(samples[row["config"]], samples[best["config"]])
            table.at[i, "p_vs_best"] = test.p if test.p is not None else np.nan
            table.at[i, "vs_best"] = test.describe()
    return _ordered(table[["config", "panel", *cols]], facets)


def lead_table(results: Results) -> pd.DataFrame:
    """Multi-step forecasts (ok runs with a horizon above 1): per configuration and lead time, the test RMSE
    over repeats (mean, bootstrap CI) and the persistence forecast's RMSE at that lead."""
    facets = results.facets
    labels = _label_columns(facets)
    cols = [*labels, *([] if "horizon" in labels else ["horizon"]), "lead", "n", "rmse_mean", "rmse_ci_low",
            "rmse_ci_high", "persistence_rmse"]  # fmt: skip
    ok = results.ok
    if "horizon" not in ok or "test_rmse_by_lead" not in ok:
        return pd.DataFrame(columns=["config", "panel", *cols])
    ok = ok[(pd.to_numeric(ok["horizon"], errors="coerce") > 1) & ok["test_rmse_by_lead"].notna()]
    rows = []
    for keys, g in _per_config(ok, facets):
        leads = np.array([json.loads(v) for v in g["test_rmse_by_lead"]], dtype=np.float64)  # (runs, horizon)
        naive = np.array([json.loads(v) for v in g["persistence_rmse_by_lead"]], dtype=np.float64).mean(axis=0)
        for h in range(leads.shape[1]):
            ci = bootstrap_ci(leads[:, h])
            rows.append(
                {
                    "config": keys[0],
                    "panel": keys[1],
                    **dict(zip(labels, keys[2:])),
                    "horizon": int(g["horizon"].iloc[0]),
                    "lead": h + 1,
                    "n": len(leads),
                    "rmse_mean": float(leads[:, h].mean()),
                    "rmse_ci_low": ci[0] if ci else np.nan,
                    "rmse_ci_high": ci[1] if ci else np.nan,
                    "persistence_rmse": float(naive[h]),
                }
            )
    if not rows:
        return pd.DataFrame(columns=["config", "panel", *cols])
    return _ordered(pd.DataFrame(rows)[["config", "panel", *cols]], facets, ("lead",))


def lead_persistence(leads: pd.DataFrame) -> pd.DataFrame:
    """Per panel and lead of `lead_table`: the persistence forecast's RMSE, the mean over the panel's
    configurations (they share the test points unless their windows differ)."""
    if leads.empty:
        return pd.DataFrame(columns=["panel", "lead", "persistence_rmse"])
    return leads.groupby(["panel", "lead"], sort=False, as_index=False)["persistence_rmse"].mean()


def speed_table(results: Results) -> pd.DataFrame:
    """Training throughput per configuration (ok runs): samples/s over runs (mean, std, min, max), the
    median with its interval (`speed_interval`), the machine's throughput for runs trained together, the
    timed rounds behind each run, runs timed on a busy machine, and time spent."""
    facets = results.facets
    cols = [
        *_label_columns(facets),
        "n",
        "sps_median",
        "sps_low",
        "sps_high",
        "sps_mean",
        "sps_std",
        "sps_min",
        "sps_max",
        "machine_sps_median",
        "rounds_median",
        "busy",
        "train_seconds_mean",
        "compile_seconds_median",
    ]
    ok = results.ok[results.ok["samples_per_sec"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=["config", "panel", *cols])
    rows = []
    busy = busy_runs(ok)
    for keys, g in _per_config(ok, facets):
        sps = g["samples_per_sec"]
        interval = speed_interval(g)
        machine = (
            pd.to_numeric(g["machine_samples_per_sec"], errors="coerce") if "machine_samples_per_sec" in g else sps
        )
        rounds = pd.to_numeric(g["timed_rounds"], errors="coerce") if "timed_rounds" in g else pd.Series(dtype=float)
        rows.append(
            {
                "config": keys[0],
                "panel": keys[1],
                **dict(zip(_label_columns(facets), keys[2:])),
                "n": len(g),
                "sps_median": interval.value,
                "sps_low": interval.low,
                "sps_high": interval.high,
                "sps_mean": sps.mean(),
                "sps_std": sps.std(),
                "sps_min": sps.min(),
                "sps_max": sps.max(),
                "machine_sps_median": machine.median(),
                "rounds_median": rounds.median() if len(rounds.dropna()) else np.nan,
                "busy": int(busy.loc[g.index].sum()),
                "train_seconds_mean": g["train_seconds"].mean(),
                "compile_seconds_median": pd.to_numeric(g["compile_seconds"], errors="coerce").median(),
            }
        )
    return _ordered(pd.DataFrame(rows)[["config", "panel", *cols]], facets)


def target_table(results: Results) -> pd.DataFrame:
    """Time to target per configuration: olympic means of epochs and seconds (ok and diverged runs)."""
    facets = results.facets
    cols = [*_label_columns(facets), "target", "n", "reached", "epochs_olympic", "seconds_olympic", "note"]
    runs = results.runs[results.runs["status"].isin(ATTEMPTED) & results.runs["target_metric"].notna()]
    if runs.empty:
        return pd.DataFrame(columns=["config", "panel", *cols])
    rows = []
    for keys, g in _per_config(runs, facets):
        epochs, note = olympic_mean(g["epochs_to_target"].to_numpy(dtype=np.float64))
        seconds, _ = olympic_mean(g["seconds_to_target"].to_numpy(dtype=np.float64))
        first = g.iloc[0]
        rows.append(
            {
                "config": keys[0],
                "panel": keys[1],
                **dict(zip(_label_columns(facets), keys[2:])),
                "target": target_label(first["target_metric"], first["target_value"]),
                "n": len(g),
                "reached": int(g["epochs_to_target"].notna().sum()),
                "epochs_olympic": epochs,
                "seconds_olympic": seconds,
                "note": note,
            }
        )
    return _ordered(pd.DataFrame(rows)[["config", "panel", *cols]], facets)


def problem_table(results: Results) -> pd.DataFrame:
    """Every run that is not 'ok': id, configuration, status and error."""
    facets = results.facets
    cols = ["run_id", "source", *_label_columns(facets), "repeat", "status", "error"]
    bad = results.problems
    if bad.empty:
        return pd.DataFrame(columns=cols)
    out = bad[cols].copy()
    out["error"] = out["error"].fillna("").astype(str)
    return out.sort_values(["status", "run_id"]).reset_index(drop=True)


def status_counts(results: Results) -> pd.Series:
    """Number of runs per status, 'ok' first."""
    counts = results.runs["status"].value_counts()
    order = [s for s in STATUSES if s in counts.index]
    return counts.reindex(order + sorted(set(counts.index) - set(order)))


def learning_curve_table(results: Results) -> pd.DataFrame:
    """Training loss by epoch of successful runs: mean, min and max over the runs of each curve panel
    (`scope_label` of panel and mode), mode and batch size, with the panel's facet values."""
    ok = results.ok[["source", "run_id", "panel", "mode", "batch_size", *results.facets]]
    ep = results.epochs[results.epochs["loss"].notna()].merge(ok, on=["source", "run_id"])
    if ep.empty:
        return pd.DataFrame()
    ep["curve_panel"] = [scope_label(p, m) for p, m in zip(ep["panel"], ep["mode"])]
    agg = (
        ep.groupby(["curve_panel", "mode", "batch_size", "epoch"], sort=False)["loss"]
        .agg(["mean", "min", "max"])
        .reset_index()
    )
    return agg.merge(ep.drop_duplicates("curve_panel")[["curve_panel", *results.facets]], on="curve_panel")


def pareto_mask(speed: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True where no other point is at least as fast and as accurate and strictly better in one."""
    speed = np.asarray(speed, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    better_eq = (speed[None, :] >= speed[:, None]) & (error[None, :] <= error[:, None])
    strictly = (speed[None, :] > speed[:, None]) | (error[None, :] < error[:, None])
    return ~(better_eq & strictly).any(axis=1)


def tradeoff_table(results: Results, accuracy: pd.DataFrame, speed: pd.DataFrame) -> pd.DataFrame:
    """Mean test RMSE (`rmse`, the accuracy table's) and median samples/s (`sps`, the speed table's) per
    configuration with both, its facet values, and whether it is Pareto-optimal within its panel (`pareto`)."""
    if accuracy.empty or speed.empty:
        return pd.DataFrame()
    acc = accuracy[["config", "panel", "mode", "batch_size", "rmse_mean", "n"]]
    means = acc.merge(speed[["config", "sps_median"]], on="config").rename(
        columns={"rmse_mean": "rmse", "sps_median": "sps"}
    )
    if means.empty:
        return means
    frame = means.merge(results.ok.drop_duplicates("config")[["config", *results.facets]], on="config")
    front = pd.Series(False, index=frame.index)
    for _, sub in frame.groupby("panel", sort=False):
        front[sub.index] = pareto_mask(sub["sps"].to_numpy(), sub["rmse"].to_numpy())
    return frame.assign(pareto=front)


@dataclass(frozen=True)
class ThroughputLines:
    """What the throughput figure draws: each successful run's median round (`points`, positive only), the
    speed table's median and interval per panel, mode and batch size (`lines`; the median over the
    configurations of a panel when trials trained together share it), the trial axes trained together
    (`together`, timed as one program, so not separate panels) and the facets left to panel by."""

    points: pd.DataFrame
    lines: pd.DataFrame
    together: tuple[str, ...] = ()
    facets: tuple[str, ...] = ()
    reason: str = ""


def throughput_lines(results: Results, speed: pd.DataFrame) -> ThroughputLines:
    """`ThroughputLines` of the results and their speed table."""
    ok = results.ok[results.ok["samples_per_sec"].notna()]
    if ok.empty or speed.empty:
        return ThroughputLines(pd.DataFrame(), pd.DataFrame(), reason="no successful run recorded a throughput")
    ok = ok[ok["samples_per_sec"] > 0]
    if ok.empty:
        return ThroughputLines(ok, pd.DataFrame(), reason="no successful run recorded a positive throughput")
    together = tuple(c for c in results.facets if c in TRIAL_COLUMNS) if (ok["trained_together"] > 1).any() else ()
    facets = tuple(c for c in results.facets if c not in together)
    if together:
        ok = ok.assign(panel=panel_labels(ok, facets))
        speed = speed.assign(panel=panel_labels(speed, facets))
    lines = speed.groupby(["panel", "mode", "batch_size"], sort=False)[["sps_median", "sps_low", "sps_high"]].median()
    return ThroughputLines(ok, lines.reset_index(), together, facets)
