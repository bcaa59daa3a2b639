"""The answer first: a recommended batch size per mode and panel, by a stated rule, and the diagnostics
that say when the design cannot answer. Pure functions over the runs (pandas and numpy); the report,
`summary.md` and the terminal only render what `answer` returns.

The diagnostics are declared in `bench.report.diagnostics`.

The rule: among the batch sizes whose accuracy (mean test RMSE at their own tuned rate, or at the one rate
of an untuned sweep) is equivalent to the most accurate one's within a margin (default 2% of the best
RMSE), recommend the fastest. Equivalence is shown, not assumed from a missing significance: the upper
end of the 90% bootstrap interval of the relative RMSE difference (two one-sided tests at 5%) must lie
below the margin.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.baselines import BASELINES
from bench.report.diagnostics import Diagnostic, Evidence, check, diagnose
from bench.report.load import Results
from bench.report.stats import (
    EQUIVALENCE_LEVEL,
    THROUGHPUT,
    Interval,
    best_baseline,
    bootstrap_ci,
    relative_difference,
    speed_interval,
    speedup,
)
from bench.report.trials import describe
from bench.report.tuning import chosen_runs, has_validation, is_tuning_sweep
from bench.vocabulary import MARGIN, scope_label


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


# --- across datasets -------------------------------------------------------------------------


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
    candidates, tuned = _candidate_runs(results, rates)
    evidence = Evidence(results, candidates, margin, critical, rates, scores, steps_choices)
    diagnostics = diagnose(evidence)
    recs = []
    for scope, g in candidates.groupby("scope", sort=False):
        rec = recommend(g, str(scope), margin, tuned)
        mine = [d for d in diagnostics if d.scope == scope]
        unskilled = [d for d in mine if d.code == check("no_skill").code]
        if rec.batch_size is None and unskilled:  # said once: as the reason, with its hint
            rec = dataclasses.replace(rec, reason=unskilled[0].message)
            mine = [d for d in mine if d not in unskilled]
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
]
