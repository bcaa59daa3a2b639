"""The diagnostics: warnings that say when the design or the data cannot answer, declared once in `CHECKS`.

Each entry is a `Check`: its code (problems.csv's `kind`), when it applies, what it says (the two columns of
the docs' table, generated from here by `bench.reference`) and its check, a function of the `Evidence` the
analysis has already computed. The answer runs them in declared order; a check never names its own code, so a
warning cannot carry a code that is not declared. Adding one is an entry here plus its function.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from bench.baselines import BASELINES
from bench.report.load import Results
from bench.report.stats import ALPHA, best_baseline, busy_runs
from bench.report.trials import dimensions, with_values
from bench.report.tuning import (
    chosen_runs,
    has_validation,
    is_tuning_sweep,
    met_at_first_evaluation,
    too_easy_sizes,
    unbounded,
    with_tuning_columns,
)
from bench.vocabulary import ATTEMPTED, DIVERGED, FLAGGED, OK, scope_label, target_label

#: Power the repeats estimate aims for.
POWER = 0.8
#: Test targets outside the training range above this share suggest a trend the model cannot follow.
OUT_OF_RANGE_SHARE = 0.2

Found = Iterable[tuple[str, str]]  # (scope, message) pairs; scope "" for the whole report


@dataclass(frozen=True)
class Diagnostic:
    """A warning about the design or the data: `scope` is a panel and mode, or "" for the whole report."""

    code: str
    scope: str
    message: str


@dataclass(frozen=True)
class Evidence:
    """What the checks read, all computed by the analysis: the loaded runs, the runs each batch size is judged by
    (`candidates`, with `scope`), the margin, and the tables (`critical`: `critical_table`; `rates`:
    `select_rates`; `scores`: `rate_scores` on validation; `steps_choices`: `target_choices` of steps; each
    empty where the sweep has none)."""

    results: Results
    candidates: pd.DataFrame
    margin: float
    critical: pd.DataFrame = field(default_factory=pd.DataFrame)
    rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    steps_choices: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def runs(self) -> pd.DataFrame:
        return self.results.runs

    @functools.cached_property
    def tuned(self) -> bool:
        """Whether rates were chosen on validation (the tuning warnings apply)."""
        return is_tuning_sweep(self.runs, self.results.facets) and has_validation(self.runs)

    @functools.cached_property
    def target_scopes(self) -> tuple[_TargetScope, ...]:
        """Per tuning panel and mode, the target and how the runs met it (both target checks read these)."""
        return tuple(_target_scopes(self))


@dataclass(frozen=True)
class Check:
    """One declared diagnostic: `find` yields (scope, message) pairs where `applies` holds."""

    code: str
    when: str  # when it is said: the docs' table
    says: str  # what it says: the docs' table
    find: Callable[[Evidence], Found]
    applies: Callable[[Evidence], bool] = lambda e: True

    def __call__(self, evidence: Evidence) -> list[Diagnostic]:
        if not self.applies(evidence):
            return []
        return [Diagnostic(self.code, scope, message) for scope, message in self.find(evidence)]


# --- repeats ----------------------------------------------------------------------------------


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p possible with samples of these sizes (perfect separation)."""
    return 2.0 / math.comb(n_a + n_b, n_a)


def repeats_that_can_reach(alpha: float = ALPHA) -> int:
    """The fewest repeats per side with which a two-sided Mann-Whitney test can reach `alpha`."""
    n = 2
    while smallest_p(n, n) >= alpha:
        n += 1
    return n


def repeats_needed(sd: float, difference: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Repeats per configuration for a two-sided Mann-Whitney test to detect `difference` in mean with
    `power`, from the normal approximation inflated by the test's efficiency (pi/3 relative to the t test)."""
    if not (np.isfinite(sd) and np.isfinite(difference)) or difference <= 0 or sd <= 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    n = 2 * (z * sd / difference) ** 2 * math.pi / 3
    return max(repeats_that_can_reach(alpha), math.ceil(n))


def _about(n: int) -> str:
    # beyond this many repeats the exact figure is noise: the spread swamps the difference
    return f"about {n}" if n <= 1000 else "more than 1,000"


def too_few_repeats(e: Evidence) -> Found:
    """Once for the report: repeats with which no comparison can be significant."""
    n = int(e.candidates.groupby(["scope", "batch_size"]).size().min())
    floor = smallest_p(n, n)
    if floor >= ALPHA:
        yield (
            "",
            (
                f"with {n} repeats per configuration no Mann-Whitney comparison can reach p < {ALPHA:g} (the "
                f"smallest p possible is {floor:.2g}), so 'not significant' says nothing: use at least "
                f"{repeats_that_can_reach()} repeats ({max(5, repeats_that_can_reach())} or more for power); "
                f"repeats are cheap on engine: scan, where they train together"
            ),
        )


def repeats_for_power(e: Evidence) -> Found:
    """Per scope: the repeats the observed spread needs to detect the margin and the observed difference."""
    for scope, g in e.candidates.groupby("scope", sort=False):
        means = g.groupby("batch_size")["test_rmse"].mean().sort_values()
        if len(means) < 2:
            continue
        sd = float(np.sqrt(g.groupby("batch_size")["test_rmse"].var(ddof=1).mean()))
        have = int(g.groupby("batch_size").size().min())
        for_margin = repeats_needed(sd, e.margin * float(means.iloc[0]))
        observed = float(means.iloc[1] - means.iloc[0])
        for_observed = repeats_needed(sd, observed)
        if for_margin is not None and for_margin > have:
            tail = (
                f"; the observed gap between batch sizes {int(means.index[0])} and {int(means.index[1])} "
                f"({observed:.3g}) needs {_about(for_observed)}"
                if for_observed is not None
                else ""
            )
            yield (
                str(scope),
                (
                    f"to detect a {e.margin:.0%} RMSE difference ({e.margin * means.iloc[0]:.3g}) with "
                    f"{POWER:.0%} power at the observed spread (sd {sd:.3g}) needs {_about(for_margin)} repeats "
                    f"per batch size (you have {have}){tail}"
                ),
            )


# --- tuning -----------------------------------------------------------------------------------


def rate_at_edge(e: Evidence) -> Found:
    """The batch sizes whose rate chosen on validation is the smallest or largest one tried: the best rate may
    lie beyond the grid (the tuning playbook's red flag)."""
    scores, chosen = e.scores, e.rates
    for (panel, mode), g in chosen.groupby(["tuning_panel", "mode"], sort=False):
        low, high = [], []
        for _, row in g.iterrows():
            tried = scores.loc[
                (scores["tuning_panel"] == panel)
                & (scores["mode"] == mode)
                & (scores["batch_size"] == row["batch_size"]),
                "base_learning_rate",
            ]
            if tried.nunique() < 2 or not np.isfinite(row["base_learning_rate"]):
                continue
            if row["base_learning_rate"] <= tried.min():
                low.append((int(row["batch_size"]), float(tried.min())))
            elif row["base_learning_rate"] >= tried.max():
                high.append((int(row["batch_size"]), float(tried.max())))
        parts = []
        for found, word in ((low, "lowest"), (high, "highest")):
            if found:
                sizes = ", ".join(str(b) for b, _ in found)
                rate = found[0][1]
                extra = ", ".join(f"{rate * f:.3g}" for f in ((1 / 3, 1 / 10) if word == "lowest" else (3, 10)))
                parts.append(f"batch size {sizes} chose the {word} rate tried ({rate:.3g}): add {extra}")
        if parts:
            yield scope_label(panel, mode), "; ".join(parts) + " (the best rate may lie beyond the grid)"


def search_at_edge(e: Evidence) -> Found:
    """The batch sizes whose best trial on validation has the lowest or highest value of a searched numeric
    dimension among the trials run (the tuning playbook: the best may lie beyond the search space)."""
    scores = e.scores
    tried_all, best_all = with_values(scores), with_values(e.rates.dropna(subset=["base_learning_rate"]))
    for (panel, mode), g in best_all.groupby(["tuning_panel", "mode"], sort=False):
        parts = []
        for dim in dimensions(scores):
            edges: dict[str, list[int]] = {"lowest": [], "highest": []}
            for _, row in g.iterrows():
                tried = tried_all.loc[(tried_all["tuning_panel"] == panel) & (tried_all["mode"] == mode)
                                      & (tried_all["batch_size"] == row["batch_size"]), dim]  # fmt: skip
                values = pd.to_numeric(tried, errors="coerce")
                value = pd.to_numeric(pd.Series([row[dim]]), errors="coerce").iloc[0]
                if values.isna().any() or values.nunique() < 3 or not np.isfinite(value):
                    continue  # categorical, or too few values to have an inside
                if value <= values.min():
                    edges["lowest"].append(int(row["batch_size"]))
                elif value >= values.max():
                    edges["highest"].append(int(row["batch_size"]))
            for word, sizes in edges.items():
                if sizes:
                    parts.append(f"batch size {', '.join(map(str, sizes))} chose the {word} {dim} of the trials")
        if parts:
            yield (
                scope_label(panel, mode),
                "; ".join(parts) + " (the best may lie beyond the search space: widen search.space there)",
            )


# --- targets ----------------------------------------------------------------------------------


def _suggested_target(attempts: pd.DataFrame) -> float | None:
    """A target every batch size's median run reaches at its best rate: the largest, over batch sizes, of the
    smallest (over rates) median best value of the target metric."""
    if "target_best" not in attempts or attempts["target_best"].isna().all():
        return None
    per_rate = attempts.groupby(["batch_size", "trial_key"])["target_best"].median()
    per_size = per_rate.groupby(level=0).min()
    return float(per_size.max()) if len(per_size) else None


@dataclass(frozen=True)
class _TargetScope:
    panel: str
    mode: str
    metric: str
    value: float
    suggestion: float | None  # `_suggested_target`
    reached: bool  # any run reached the target
    attempts: pd.DataFrame  # every attempted run with a target
    group: pd.DataFrame  # this scope's, with the tuning columns

    @property
    def scope(self) -> str:
        return scope_label(self.panel, self.mode)

    @property
    def label(self) -> str:
        return target_label(self.metric, self.value)


def _target_scopes(e: Evidence) -> Iterator[_TargetScope]:
    runs = e.runs
    attempts = runs[runs["status"].isin(ATTEMPTED) & runs["target_metric"].notna()]
    frame = with_tuning_columns(attempts, e.results.facets)
    for (panel, mode), g in frame.groupby(["tuning_panel", "mode"], sort=False):
        metric, value = g["target_metric"].iloc[0], float(g["target_value"].iloc[0])
        reached = bool((g["steps_to_target"].notna() | g["epochs_to_target"].notna()).any())
        yield _TargetScope(panel, mode, metric, value, _suggested_target(g), reached, attempts, g)


def target_too_hard(e: Evidence) -> Found:
    """A target no run met: no steps to target, and a target the runs' own best values suggest."""
    for t in e.target_scopes:
        if not t.reached:
            hint = f"; the runs' best {t.metric} suggests a target of about {t.suggestion:.3g}" if t.suggestion else ""
            yield t.scope, f"no run reached the target {t.label}, so there are no steps to target{hint}"


def target_too_easy(e: Evidence) -> Found:
    """A target met at the first evaluation by most runs of a batch size (at the rate with the fewest median
    steps): their steps to target are only a bound."""
    for t in e.target_scopes:
        if not t.reached:
            continue
        picked = e.steps_choices
        if len(picked):
            picked = picked[(picked["tuning_panel"] == t.panel) & (picked["mode"] == t.mode)]
        chosen = chosen_runs(t.attempts, e.results.facets, picked) if len(picked) else t.group.iloc[:0]
        chosen = chosen[(chosen["tuning_panel"] == t.panel) & (chosen["mode"] == t.mode)]
        easy = [int(b) for b in too_easy_sizes(chosen["batch_size"].to_numpy(), met_at_first_evaluation(chosen))]
        if easy:
            harder = ""
            if t.suggestion is not None and t.suggestion < t.value:
                harder = f"; a harder target every batch size's median run still reaches: about {t.suggestion:.3g}"
            yield (
                t.scope,
                (
                    f"most runs of batch size {', '.join(map(str, easy))} met {t.label} at the first evaluation, so "
                    f"their steps to target are only an upper bound and are left out of the critical batch size{harder}"
                ),
            )


def critical_unbounded(e: Evidence) -> Found:
    """A critical batch size whose interval runs past the largest batch size tried is only a lower bound."""
    for _, row in e.critical.iterrows():
        sizes = [int(b) for b in str(row.get("batch_sizes", "")).split()]
        if sizes and unbounded(row["b_crit"], row["b_crit_ci_high"], max(sizes)):
            yield (
                scope_label(row["tuning_panel"], row["mode"]),
                f"the critical batch size is at least {max(sizes)}: its interval runs past the largest batch "
                f"size tried; add larger batch sizes to measure it",
            )


# --- accuracy and training --------------------------------------------------------------------


def no_skill(e: Evidence) -> Found:
    """No batch size beats the best simple baseline (naming it; persistence where no other was recorded); with
    a trend carrying the test part outside the training range on an undifferenced series, suggest
    `difference: true`."""
    for scope, g in e.candidates.groupby("scope", sort=False):
        name, bar = best_baseline(g)
        means = g.groupby("batch_size")["test_rmse"].mean()
        if (means < bar).any():
            continue
        if name == BASELINES[0].label:
            message = f"no batch size beats the persistence forecast (RMSE {bar:.4g}; best mean {means.min():.4g})"
        else:
            persistence = float(g["persistence_rmse"].mean())
            message = (
                f"no batch size beats the best simple baseline, the {name} (RMSE {bar:.4g}; best mean "
                f"{means.min():.4g}; persistence {persistence:.4g}): the model is no better than a simple forecast"
            )
        outside = pd.to_numeric(g["test_out_of_range"], errors="coerce") if "test_out_of_range" in g else None
        differenced = g["difference"].astype(bool).all() if "difference" in g else False
        if outside is not None and outside.median() > OUT_OF_RANGE_SHARE and not differenced:
            message += (
                f": {outside.median():.0%} of the test points lie outside the training part's range (a trend); "
                "set difference: true so the model learns changes instead of levels"
            )
        yield str(scope), message


def _where(runs: pd.DataFrame, mask: pd.Series, what: str) -> tuple[pd.Series, pd.Series, str]:
    """How many of `runs` are in `mask`, by mode and batch size, as a sentence's start."""
    total = runs.groupby(["mode", "batch_size"]).size()
    where = runs[mask].groupby(["mode", "batch_size"], sort=True).size()
    listed = ", ".join(f"{m} batch {int(b)} ({n} of {total[(m, b)]})" for (m, b), n in where.items())
    return where, total, f"{int(mask.sum())} of {len(runs)} runs {what}: {listed}"


def diverged(e: Evidence) -> Found:
    """Runs that went non-finite: how many, where, and each batch size and mode that lost every run."""
    mask = e.runs["status"] == DIVERGED
    if mask.any():
        where, total, message = _where(e.runs, mask, "diverged")
        lost = [f"{m} batch size {int(b)}" for (m, b), n in where.items() if n == total[(m, b)]]
        if lost:
            message += f"; {' and '.join(lost)} lost every run to divergence (lower the learning rate)"
        yield "", message


def flagged(e: Evidence) -> Found:
    """Ok runs their engine flagged (a loss that rose, constant predictions): how many, where, and why."""
    runs = e.runs
    mask = (runs["status"] == OK) & runs["notes"].fillna("").str.contains(FLAGGED, regex=False)
    if mask.any():
        _, _, message = _where(runs, mask, "trained but are flagged")
        reasons = sorted({n.split(FLAGGED, 1)[1].split("(")[0].strip() for n in runs.loc[mask, "notes"]})
        yield "", f"{message} ({'; '.join(reasons)}: see each run's notes)"


def busy_machine(e: Evidence) -> Found:
    """Runs timed while other processes (or a hypervisor) took a share of the CPU: their speed is suspect."""
    ok = e.runs[e.runs["status"] == OK]
    busy = busy_runs(ok)
    if busy.any():
        other = pd.to_numeric(ok["other_cpu_share"], errors="coerce")
        steal = pd.to_numeric(ok["cpu_steal"], errors="coerce").fillna(0.0)
        yield (
            "",
            (
                f"{int(busy.sum())} of {len(ok)} runs were timed on a busy machine (other processes used up to "
                f"{other.max():.0%} of the CPU, the hypervisor stole up to {steal.max():.0%}): their throughput is not "
                "trustworthy; rerun them on an idle machine (lstm-bench run SCENARIO --force)"
            ),
        )


def _has_runs(e: Evidence) -> bool:
    return not e.runs.empty


def _has_candidates(e: Evidence) -> bool:
    return not e.candidates.empty


def _has_target(e: Evidence) -> bool:
    return bool(e.runs["target_metric"].notna().any())


#: Every diagnostic, in the order the report says them.
CHECKS: tuple[Check, ...] = (
    Check("no_skill", "no batch size's mean RMSE beats the best simple baseline (persistence, training mean, "
          "seasonal naive, linear autoregression), named",
          "said first; with more than 20% of test points outside the training range on an undifferenced "
          "series, \"set difference: true\"", no_skill, _has_candidates),
    Check(DIVERGED, "runs went non-finite (status `diverged`)",
          "how many of all, at which mode and batch size (n of the runs there), and each batch size and mode "
          "that lost every run, with \"lower the learning rate\"", diverged, _has_runs),
    Check("flagged", "ok runs whose notes start `flagged:`: the training loss ended above where it started, or "
          "the test predictions are constant (the model learned a constant)", "how many, where, and which of the "
          "two", flagged, _has_runs),
    Check("busy_machine", "runs timed while other processes took over 20% of the CPU, or the hypervisor over 5%",
          "how many, and to rerun them on an idle machine", busy_machine, lambda e: "other_cpu_share" in e.runs),
    Check("too_few_repeats", "the Mann-Whitney test cannot reach p < 0.05 with the repeats given (3 vs 3: "
          "smallest p 0.1)", "once, with the fewest repeats that can (4; 5 or more for power)", too_few_repeats,
          _has_candidates),
    Check("repeats_for_power", "the observed spread needs more repeats than given to detect the margin",
          "about how many for the margin and for the observed gap (normal approximation, x pi/3 for "
          "Mann-Whitney, 80% power)", repeats_for_power),
    Check("rate_at_edge", "the rate chosen on validation is the smallest or largest tried",
          "the batch sizes, and the rates to add (x3 and x10 beyond the edge)", rate_at_edge,
          lambda e: e.tuned and not dimensions(e.scores)),
    Check("search_at_edge", "in a `search:`, the best trial's value of a searched numeric dimension is the lowest "
          "or highest among the trials (a dimension with at least three distinct values)",
          "the dimension and the batch sizes: \"the best may lie beyond the search space: widen search.space "
          "there\"", search_at_edge, lambda e: e.tuned and bool(dimensions(e.scores))),
    Check("target_too_hard", "no run met the target", "an easier target from the runs' best values",
          target_too_hard, _has_target),
    Check("target_too_easy", "most runs of a batch size met the target at their first evaluation",
          "those batch sizes are left out of the critical batch size fit; a harder target every batch size's "
          "median run still reaches", target_too_easy, _has_target),
    Check("b_crit_unbounded", "the critical batch size or its interval runs past the largest batch size tried",
          "\"at least B_max\", not a number", critical_unbounded, lambda e: not e.critical.empty),
)  # fmt: skip

_BY_CODE = {c.code: c for c in CHECKS}
assert len(_BY_CODE) == len(CHECKS), "two diagnostics share a code"


def check(code: str) -> Check:
    """The declared diagnostic with this code."""
    return _BY_CODE[code]


def diagnose(evidence: Evidence) -> list[Diagnostic]:
    """Every declared diagnostic that applies, in order, then the data checks the folders' plans recorded."""
    found = [d for c in CHECKS for d in c(evidence)]
    return found + [Diagnostic(c.code, "", c.line()) for c in evidence.results.data_checks]
