"""The answer first: a recommended batch size per mode and panel, by a stated rule, and the diagnostics
that say when the design cannot answer. Pure functions over the runs (pandas and numpy); the report,
`summary.md` and the terminal only render what `answer` returns.

The rule: among the batch sizes whose accuracy (mean test RMSE at their own tuned rate, or at the one rate
of an untuned sweep) is equivalent to the most accurate one's within a margin (default 2% of the best
RMSE), recommend the fastest. Equivalence is shown, not assumed from a missing significance: the upper
end of the 90% bootstrap interval of the relative RMSE difference (two one-sided tests at 5%) must lie
below the margin.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report.load import Results
from bench.report.stats import (
    ALPHA,
    EQUIVALENCE_LEVEL,
    THROUGHPUT,
    Interval,
    best_baseline,
    bootstrap_ci,
    busy_runs,
    relative_difference,
    speed_interval,
    speedup,
)
from bench.report.trials import describe, dimensions, with_values
from bench.report.tuning import (
    chosen_runs,
    has_validation,
    is_tuning_sweep,
    met_at_first_evaluation,
    too_easy_sizes,
    unbounded,
    with_tuning_columns,
)
from bench.baselines import BASELINES
from bench.vocabulary import ATTEMPTED, DIVERGED, FLAGGED, OK, scope_label, target_label

#: The default accuracy margin: a batch size within 2% of the best RMSE counts as accurate enough.
MARGIN = 0.02
#: Power the repeats estimate aims for.
POWER = 0.8
#: Test targets outside the training range above this share suggest a trend the model cannot follow.
OUT_OF_RANGE_SHARE = 0.2


@dataclass(frozen=True)
class Option:
    """One batch size of a recommendation's comparison."""

    batch_size: int
    n: int
    rmse: Interval  # mean test RMSE, 95% bootstrap CI
    speed: Interval  # median samples/s per run, interval over rounds and repeats
    base_learning_rate: float | None
    worse_by: Interval | None  # (mean RMSE - best) / best, 90% bootstrap interval; None for the best itself
    within_margin: bool
    trial: str = ""  # the search trial chosen, with its values (`bench.report.trials.describe`); "" for a rate


@dataclass(frozen=True)
class Diagnostic:
    """A warning about the design or the data: `scope` is a panel and mode, or "" for the whole report."""

    code: str
    scope: str
    message: str


@dataclass(frozen=True)
class Recommendation:
    """The answer for one panel and mode: a batch size, or None with the reason."""

    scope: str
    batch_size: int | None
    reason: str  # why there is none; "" when there is one
    options: tuple[Option, ...] = ()
    most_accurate: int | None = None
    speedup: Interval | None = None  # the recommended batch size's throughput over the most accurate one's
    persistence_rmse: float = float("nan")
    tuned: bool = False
    # the simple baseline with the lowest test RMSE (`stats.best_baseline`), when it is not persistence
    baseline: tuple[str, float] | None = None
    warnings: tuple[Diagnostic, ...] = ()

    def option(self, batch_size: int | None) -> Option | None:
        return next((o for o in self.options if o.batch_size == batch_size), None)

    def headline(self) -> str:
        head = f"{self.scope}: " if self.scope else ""
        if self.batch_size is None:
            return f"{head}no recommendation"
        rec = self.option(self.batch_size)
        assert rec is not None
        which = "base learning rate" if self.tuned else "learning rate"
        rate = f" at {which} {rec.base_learning_rate:.3g}" if rec.base_learning_rate is not None else ""
        rate = f" with {rec.trial}" if rec.trial else rate
        tuned = " (chosen on validation)" if self.tuned and rate else ""
        return f"{head}use batch size {self.batch_size}{rate}{tuned}"

    def lines(self) -> list[str]:
        """The headline, then its details indented (`details`)."""
        return [self.headline(), *(f"  {d}" for d in self.details())]

    def details(self) -> list[str]:
        """The figures behind the headline (or why there is none), then the warnings."""
        warnings = [f"warning: {w.message}" for w in self.warnings]
        if self.batch_size is None:
            return [self.reason, *warnings]
        rec = self.option(self.batch_size)
        assert rec is not None
        bar = f"best simple baseline: {self.baseline[0]} {self.baseline[1]:.4g}; " if self.baseline else ""
        out = [
            f"test RMSE {rec.rmse.text()} (mean, 95% CI; {bar}persistence {self.persistence_rmse:.4g})",
            f"throughput {rec.speed.text(',.0f')} {THROUGHPUT} (interval over timed rounds and repeats)",
        ]
        if self.most_accurate is not None and self.most_accurate != self.batch_size and self.speedup is not None:
            best = self.option(self.most_accurate)
            assert best is not None
            same = " (indistinguishable)" if self.speedup.low <= 1.0 <= self.speedup.high else ""
            worse = rec.worse_by.text("+.1%") if rec.worse_by is not None else "?"
            out.append(
                f"{self.speedup.text('.2f', 'x')} the speed of the most accurate, batch size {self.most_accurate}"
                f"{same}, at {worse} RMSE"
            )
        elif self.most_accurate == self.batch_size:
            others = [o for o in self.options if o.batch_size != self.batch_size]
            faster = [o for o in others if o.speed.value > rec.speed.value]
            if faster:
                sizes = ", ".join(str(o.batch_size) for o in faster)
                out.append(f"the most accurate; no faster batch size ({sizes}) is shown to be within the margin of it")
            else:
                out.append("the most accurate, and the fastest")
        return out + warnings


@dataclass(frozen=True)
class Answer:
    """The report's opening: the rule, one recommendation per panel and mode, and every diagnostic."""

    margin: float
    recommendations: tuple[Recommendation, ...]
    diagnostics: tuple[Diagnostic, ...] = field(default=())
    across: tuple[str, ...] = ()  # when the sweep varies the dataset: how the datasets compare (`across_datasets`)

    @property
    def rule(self) -> str:
        return (
            f"Rule: the fastest batch size (median samples/s) whose mean test RMSE at its own "
            f"{'tuned ' if any(r.tuned for r in self.recommendations) else ''}learning rate is shown to be within "
            f"{self.margin:.0%} of the most accurate batch size's: the upper end of the {EQUIVALENCE_LEVEL:.0%} "
            f"bootstrap interval of the relative RMSE difference (two one-sided tests at 5%) lies below "
            f"{self.margin:.0%}. Not significantly worse is not enough."
        )

    @property
    def general(self) -> tuple[Diagnostic, ...]:
        """Diagnostics about the whole report (not one panel and mode)."""
        return tuple(d for d in self.diagnostics if not d.scope)

    def lines(self) -> list[str]:
        out = [line for r in self.recommendations for line in r.lines()]
        out += list(self.across)
        out += [f"warning: {d.message}" for d in self.general]
        return out

    def text(self) -> str:
        return "\n".join(["Recommendation", *self.lines(), self.rule])


# --- the pieces -------------------------------------------------------------------------------


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


def _candidate_runs(results: Results, rates: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The ok runs each batch size is judged by, with `scope`: at the rate chosen on validation in a
    tuned sweep (`rates`: `select_rates`), else every ok run of its panel (an untuned sweep has one
    configuration per batch size)."""
    ok = results.ok[results.ok["test_rmse"].notna()]
    tuned = is_tuning_sweep(results.runs, results.facets) and has_validation(results.runs)
    if tuned:
        chosen = chosen_runs(ok, results.facets, rates)
        return chosen.assign(scope=[scope_label(p, m) for p, m in zip(chosen["tuning_panel"], chosen["mode"])]), True
    rate = pd.to_numeric(ok["learning_rate"], errors="coerce")
    return ok.assign(scope=[scope_label(p, m) for p, m in zip(ok["panel"], ok["mode"])], rate=rate), False


def _options(group: pd.DataFrame, margin: float) -> tuple[Option, ...]:
    by_size = {int(b): g for b, g in group.groupby("batch_size", sort=True)}
    means = {b: float(g["test_rmse"].mean()) for b, g in by_size.items()}
    best = min(means, key=means.__getitem__)
    best_rmse = by_size[best]["test_rmse"].to_numpy(np.float64)
    out = []
    for b, g in by_size.items():
        x = g["test_rmse"].to_numpy(np.float64)
        ci = bootstrap_ci(x)
        worse = None if b == best else relative_difference(x, best_rmse)
        rate = pd.to_numeric(g["rate"], errors="coerce").dropna()
        out.append(
            Option(
                batch_size=b,
                n=len(x),
                rmse=Interval(float(x.mean()), *(ci if ci else (float("nan"), float("nan")))),
                speed=speed_interval(g),
                base_learning_rate=float(rate.iloc[0]) if len(rate) else None,
                worse_by=worse,
                within_margin=b == best or (worse is not None and worse.high <= margin),
                trial=describe(g["trial"].iloc[0], g["search_point"].iloc[0]) if "search_point" in g else "",
            )
        )
    return tuple(out)


def recommend(group: pd.DataFrame, scope: str, margin: float, tuned: bool) -> Recommendation:
    """The recommendation for one panel and mode from its candidate runs (`_candidate_runs`)."""
    persistence = float(group["persistence_rmse"].mean())
    name, rmse = best_baseline(group)
    baseline = (name, rmse) if name != BASELINES[0].label else None
    common = dict(scope=scope, persistence_rmse=persistence, tuned=tuned, baseline=baseline)
    options = _options(group, margin)
    best = min(options, key=lambda o: o.rmse.value)
    common.update(options=options, most_accurate=best.batch_size)
    if len(options) < 2:
        return Recommendation(batch_size=None, reason="only one batch size was run", **common)
    if best.n < 2:
        return Recommendation(batch_size=None, reason="single runs have no interval: set repeats (5 or more)", **common)
    beats = [o for o in options if o.rmse.known and o.rmse.high < persistence]
    if not beats:
        return Recommendation(
            batch_size=None,
            reason=f"no batch size beats the persistence forecast (RMSE {persistence:.4g}): the 95% CI of every "
            f"mean test RMSE reaches it (best: batch size {best.batch_size}, {best.rmse.text()})",
            **common,
        )
    eligible = [o for o in options if o.within_margin and np.isfinite(o.speed.value)]
    if not eligible:
        return Recommendation(batch_size=None, reason="no throughput was recorded", **common)
    pick = max(eligible, key=lambda o: o.speed.value)
    faster = speedup(pick.speed, best.speed) if pick.batch_size != best.batch_size else None
    return Recommendation(batch_size=pick.batch_size, reason="", speedup=faster, **common)


# --- diagnostics ------------------------------------------------------------------------------


def too_few_repeats(candidates: pd.DataFrame, margin: float) -> list[Diagnostic]:
    """Once for the report: repeats with which no comparison can be significant; per scope: the repeats
    the observed spread needs to detect the margin and the observed difference."""
    if candidates.empty:
        return []
    counts = candidates.groupby(["scope", "batch_size"]).size()
    n = int(counts.min())
    out = []
    floor = smallest_p(n, n)
    if floor >= ALPHA:
        out.append(
            Diagnostic(
                "too_few_repeats",
                "",
                f"with {n} repeats per configuration no Mann-Whitney comparison can reach p < {ALPHA:g} (the "
                f"smallest p possible is {floor:.2g}), so 'not significant' says nothing: use at least "
                f"{repeats_that_can_reach()} repeats ({max(5, repeats_that_can_reach())} or more for power); "
                f"repeats are cheap on engine: scan, where they train together",
            )
        )
    for scope, g in candidates.groupby("scope", sort=False):
        means = g.groupby("batch_size")["test_rmse"].mean().sort_values()
        if len(means) < 2:
            continue
        sd = float(np.sqrt(g.groupby("batch_size")["test_rmse"].var(ddof=1).mean()))
        have = int(g.groupby("batch_size").size().min())
        for_margin = repeats_needed(sd, margin * float(means.iloc[0]))
        observed = float(means.iloc[1] - means.iloc[0])
        for_observed = repeats_needed(sd, observed)
        if for_margin is not None and for_margin > have:
            tail = (
                f"; the observed gap between batch sizes {int(means.index[0])} and {int(means.index[1])} "
                f"({observed:.3g}) needs {_about(for_observed)}"
                if for_observed is not None
                else ""
            )
            out.append(
                Diagnostic(
                    "repeats_for_power",
                    str(scope),
                    f"to detect a {margin:.0%} RMSE difference ({margin * means.iloc[0]:.3g}) with "
                    f"{POWER:.0%} power at the observed spread (sd {sd:.3g}) needs {_about(for_margin)} repeats "
                    f"per batch size (you have {have}){tail}",
                )
            )
    return out


def _about(n: int) -> str:
    # beyond this many repeats the exact figure is noise: the spread swamps the difference
    return f"about {n}" if n <= 1000 else "more than 1,000"


def rates_at_edge(results: Results, scores: pd.DataFrame, chosen: pd.DataFrame) -> list[Diagnostic]:
    """The batch sizes whose rate chosen on validation (`chosen`: `select_rates`, from `scores`: `rate_scores`)
    is the smallest or largest one tried: the best rate may lie beyond the grid (the tuning playbook's red flag)."""
    if not (is_tuning_sweep(results.runs, results.facets) and has_validation(results.runs)):
        return []
    if dimensions(scores):
        return search_at_edge(scores, chosen)
    out = []
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
            out.append(
                Diagnostic(
                    "rate_at_edge",
                    scope_label(panel, mode),
                    "; ".join(parts) + " (the best rate may lie beyond the grid)",
                )
            )
    return out


def search_at_edge(scores: pd.DataFrame, chosen: pd.DataFrame) -> list[Diagnostic]:
    """The batch sizes whose best trial on validation has the lowest or highest value of a searched numeric
    dimension among the trials run (the tuning playbook: the best may lie beyond the search space)."""
    tried_all, best_all = with_values(scores), with_values(chosen.dropna(subset=["base_learning_rate"]))
    out = []
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
            out.append(
                Diagnostic(
                    "search_at_edge",
                    scope_label(panel, mode),
                    "; ".join(parts) + " (the best may lie beyond the search space: widen search.space there)",
                )
            )
    return out


def _suggested_target(attempts: pd.DataFrame) -> float | None:
    """A target every batch size's median run reaches at its best rate: the largest, over batch sizes, of the
    smallest (over rates) median best value of the target metric."""
    if "target_best" not in attempts or attempts["target_best"].isna().all():
        return None
    per_rate = attempts.groupby(["batch_size", "trial_key"])["target_best"].median()
    per_size = per_rate.groupby(level=0).min()
    return float(per_size.max()) if len(per_size) else None


def target_difficulty(results: Results, choices: pd.DataFrame) -> list[Diagnostic]:
    """Per scope: a target met at the first evaluation by most runs of a batch size (its steps to target are
    only a bound), or never met at all, with a target the runs' own best values suggest instead.
    `choices`: the rate per batch size with the fewest median steps (`target_choices`)."""
    runs = results.runs
    attempts = runs[runs["status"].isin(ATTEMPTED) & runs["target_metric"].notna()]
    if attempts.empty:
        return []
    frame = with_tuning_columns(attempts, results.facets)
    out = []
    for (panel, mode), g in frame.groupby(["tuning_panel", "mode"], sort=False):
        scope = scope_label(panel, mode)
        metric, value = g["target_metric"].iloc[0], float(g["target_value"].iloc[0])
        suggestion = _suggested_target(g)
        reached = g["steps_to_target"].notna() | g["epochs_to_target"].notna()
        if not reached.any():
            hint = f"; the runs' best {metric} suggests a target of about {suggestion:.3g}" if suggestion else ""
            out.append(
                Diagnostic(
                    "target_too_hard",
                    scope,
                    f"no run reached the target {target_label(metric, value)}, so there are no steps to target{hint}",
                )
            )
            continue
        picked = choices[(choices["tuning_panel"] == panel) & (choices["mode"] == mode)] if len(choices) else choices
        chosen = chosen_runs(attempts, results.facets, picked) if len(picked) else g.iloc[:0]
        chosen = chosen[(chosen["tuning_panel"] == panel) & (chosen["mode"] == mode)]
        easy = [int(b) for b in too_easy_sizes(chosen["batch_size"].to_numpy(), met_at_first_evaluation(chosen))]
        if easy:
            harder = ""
            if suggestion is not None and suggestion < value:
                harder = f"; a harder target every batch size's median run still reaches: about {suggestion:.3g}"
            out.append(
                Diagnostic(
                    "target_too_easy",
                    scope,
                    f"most runs of batch size {', '.join(map(str, easy))} met {target_label(metric, value)} at the "
                    f"first evaluation, so their steps to target are only an upper bound and are left out of the "
                    f"critical batch size{harder}",
                )
            )
    return out


def critical_unbounded(critical: pd.DataFrame) -> list[Diagnostic]:
    """A critical batch size whose interval runs past the largest batch size tried is only a lower bound."""
    out = []
    for _, row in critical.iterrows():
        sizes = [int(b) for b in str(row.get("batch_sizes", "")).split()]
        if sizes and unbounded(row["b_crit"], row["b_crit_ci_high"], max(sizes)):
            out.append(
                Diagnostic(
                    "b_crit_unbounded",
                    scope_label(row["tuning_panel"], row["mode"]),
                    f"the critical batch size is at least {max(sizes)}: its interval runs past the largest batch "
                    f"size tried; add larger batch sizes to measure it",
                )
            )
    return out


def persistence_and_trend(candidates: pd.DataFrame, results: Results) -> list[Diagnostic]:
    """No batch size beats the best simple baseline (said first, naming it; persistence where no other was
    recorded); with a trend carrying the test part outside the training range on an undifferenced series,
    suggest `difference: true`."""
    out = []
    for scope, g in candidates.groupby("scope", sort=False):
        name, bar = best_baseline(g)
        means = g.groupby("batch_size")["test_rmse"].mean()
        if not (means < bar).any():
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
            out.append(Diagnostic("no_skill", str(scope), message))
    return out


def across_datasets(candidates: pd.DataFrame) -> tuple[str, ...]:
    """Per mode, when the candidates span several datasets: each dataset's most accurate configuration, compared
    by test RMSE where the datasets forecast the same target on the same test points (equal persistence RMSE),
    else by skill against each one's best simple baseline (RMSEs of different series do not compare)."""
    if "dataset" not in candidates or candidates["dataset"].nunique() < 2:
        return ()
    out = []
    for mode, g in candidates.groupby("mode", sort=False):
        best = {}
        for dataset, d in g.groupby("dataset", sort=False):
            means = d.groupby(["scope", "batch_size"])["test_rmse"].mean()
            (_, batch), rmse = means.idxmin(), float(means.min())
            best[dataset] = (rmse, int(batch), 1.0 - rmse / best_baseline(d)[1], float(d["persistence_rmse"].mean()))
        if len(best) < 2:
            continue
        same_target = np.allclose([v[3] for v in best.values()], next(iter(best.values()))[3], rtol=1e-9)
        if same_target:
            ranked = sorted(best.items(), key=lambda kv: kv[1][0])
            (top, (rmse, batch, _, _)), rest = ranked[0], ranked[1:]
            others = "; ".join(f"{ds} {_worse(v[0], rmse)} ({v[0]:.4g})" for ds, v in rest)
            out.append(
                f"{mode} across datasets (the same target): {top} is the most accurate (mean test RMSE {rmse:.4g} at "
                f"batch size {batch}); {others}"
            )
        else:
            ranked = sorted(best.items(), key=lambda kv: -kv[1][2])
            listed = ", ".join(f"{ds} {v[2]:+.2f}" for ds, v in ranked)
            out.append(
                f"{mode} across datasets (different series: compared by skill, 1 - RMSE over each one's best simple "
                f"baseline, at its most accurate batch size): {listed}"
            )
    return tuple(out)


def _worse(rmse: float, best: float) -> str:
    """How much worse an RMSE is than the best: 12% worse, or 12.4x the RMSE from twice on."""
    return f"{rmse / best - 1:.0%} worse" if rmse < 2 * best else f"{rmse / best:.1f}x the RMSE"


def failed_training(runs: pd.DataFrame) -> list[Diagnostic]:
    """Runs that diverged, and ok runs flagged by their engine (a loss that rose, constant predictions): how
    many, at which settings, and each batch size and mode that lost every run to divergence."""
    if runs.empty:
        return []
    diverged = runs["status"] == DIVERGED
    flagged = (runs["status"] == OK) & runs["notes"].fillna("").str.contains(FLAGGED, regex=False)
    total = runs.groupby(["mode", "batch_size"]).size()
    out = []
    for mask, what in ((diverged, "diverged"), (flagged, "trained but are flagged")):
        if not mask.any():
            continue
        where = runs[mask].groupby(["mode", "batch_size"], sort=True).size()
        listed = ", ".join(f"{m} batch {int(b)} ({n} of {total[(m, b)]})" for (m, b), n in where.items())
        message = f"{int(mask.sum())} of {len(runs)} runs {what}: {listed}"
        if what == "diverged":
            lost = [f"{m} batch size {int(b)}" for (m, b), n in where.items() if n == total[(m, b)]]
            if lost:
                message += f"; {' and '.join(lost)} lost every run to divergence (lower the learning rate)"
        else:
            reasons = sorted({n.split(FLAGGED, 1)[1].split("(")[0].strip() for n in runs.loc[mask, "notes"]})
            message += f" ({'; '.join(reasons)}: see each run's notes)"
        out.append(Diagnostic("diverged" if what == "diverged" else "flagged", "", message))
    return out


def busy_machine(runs: pd.DataFrame) -> list[Diagnostic]:
    """Runs timed while other processes (or a hypervisor) took a share of the CPU: their speed is suspect."""
    if "other_cpu_share" not in runs:
        return []
    ok = runs[runs["status"] == OK]
    other = pd.to_numeric(ok["other_cpu_share"], errors="coerce")
    steal = pd.to_numeric(ok["cpu_steal"], errors="coerce").fillna(0.0)
    busy = busy_runs(ok)
    if not busy.any():
        return []
    return [
        Diagnostic(
            "busy_machine",
            "",
            f"{int(busy.sum())} of {len(ok)} runs were timed on a busy machine (other processes used up to "
            f"{other.max():.0%} of the CPU, the hypervisor stole up to {steal.max():.0%}): their throughput is not "
            "trustworthy; rerun them on an idle machine (lstm-bench run SCENARIO --force)",
        )
    ]


def answer(
    results: Results,
    critical: pd.DataFrame,
    margin: float,
    rates: pd.DataFrame,
    scores: pd.DataFrame,
    steps_choices: pd.DataFrame,
) -> Answer:
    """The recommendation per panel and mode, and every diagnostic, from the analysis' tables (`critical`:
    `critical_table`; `rates`: `select_rates`; `scores`: `rate_scores` on validation; `steps_choices`:
    `target_choices` of steps; each empty where the sweep has none)."""
    if results.runs.empty or results.ok.empty:
        return Answer(margin, (Recommendation("", None, "no run finished with status ok"),))
    runs = results.runs
    candidates, tuned = _candidate_runs(results, rates)
    diagnostics = [
        *persistence_and_trend(candidates, results),
        *failed_training(runs),
        *busy_machine(runs),
        *too_few_repeats(candidates, margin),
        *rates_at_edge(results, scores, rates),
        *target_difficulty(results, steps_choices),
        *(critical_unbounded(critical) if not critical.empty else []),
        *(Diagnostic(c.code, "", c.line()) for c in results.data_checks),
    ]
    recs = []
    for scope, g in candidates.groupby("scope", sort=False):
        rec = recommend(g, str(scope), margin, tuned)
        mine = [d for d in diagnostics if d.scope == scope]
        no_skill = [d for d in mine if d.code == "no_skill"]
        if rec.batch_size is None and no_skill:  # said once: as the reason, with its hint
            rec = dataclasses.replace(rec, reason=no_skill[0].message)
            mine = [d for d in mine if d.code != "no_skill"]
        recs.append(dataclasses.replace(rec, warnings=tuple(mine)))
    if not recs:
        recs.append(Recommendation("", None, "no successful run has a test RMSE"))
    return Answer(margin, tuple(recs), tuple(diagnostics), across_datasets(candidates))


__all__ = [
    "MARGIN",
    "Answer",
    "Diagnostic",
    "Option",
    "Recommendation",
    "answer",
    "recommend",
    "relative_difference",
    "repeats_needed",
    "repeats_that_can_reach",
]
