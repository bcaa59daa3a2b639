"""The report's analysis layer: every table and statistic the report shows, computed once from the results
(pandas, numpy and scipy only; nothing is drawn here). Figures only draw what `analyse` returns, and the
pages only lay it out, so a figure and a table cannot disagree when a rule changes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.report.answer import MARGIN, Answer, answer
from bench.report.budget import budget_table
from bench.report.load import Results
from bench.report.optimum import RateFit, optimum_table
from bench.report.trials import chosen_values, study_table, trial_table
from bench.report.stats import accuracy_table, lead_table, problem_table, speed_table, target_table
from bench.report.tuning import (
    NO_VALIDATION,
    ScalingFit,
    critical_table,
    has_validation,
    is_tuning_sweep,
    noise_scale_at_target,
    rate_scores,
    select_rates,
    target_choices,
    target_scaling_table,
    target_scores,
    tuned_table,
    group_columns,
    tuning_facets,
)


@dataclass(frozen=True)
class Analysis:
    """What the report says, as tables (empty where the data cannot support one) and the answer."""

    results: Results
    accuracy: pd.DataFrame
    speed: pd.DataFrame
    target: pd.DataFrame  # time to target per configuration (olympic means)
    problems: pd.DataFrame  # runs not counted (kind "run") and the diagnostics (kind: their code)
    tuning: bool  # several learning rates per batch size, or a validation split
    validation: bool
    rates: pd.DataFrame  # the base rate chosen on validation per tuning panel, mode and batch size
    tuned: pd.DataFrame  # test RMSE at the chosen rates
    rate_grid: pd.DataFrame  # median validation (or, without a split, test) RMSE per batch size x rate
    steps_choices: pd.DataFrame  # the rate fewest in median steps to target, and that median
    seconds_choices: pd.DataFrame
    scaling: pd.DataFrame  # both of those side by side (tuned_to_target.csv)
    critical: pd.DataFrame  # the critical batch size from steps and from the noise scale
    fits: dict[tuple[str, str], ScalingFit] = field(default_factory=dict)  # S(B) per (tuning panel, mode)
    answer: Answer | None = None
    leads: pd.DataFrame = field(default_factory=pd.DataFrame)  # test RMSE per lead time (horizon > 1)
    optimum: pd.DataFrame = field(default_factory=pd.DataFrame)  # the chosen rate's form against batch size
    rate_fits: dict[tuple[str, str], RateFit] = field(default_factory=dict)  # its best fit per (panel, mode)
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)  # best of k trials per batch size
    steps_budget: pd.DataFrame = field(default_factory=pd.DataFrame)  # the same on steps to target
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)  # a search's every trial per batch size
    studies: pd.DataFrame = field(default_factory=pd.DataFrame)  # steps to target scored over studies
    seconds_studies: pd.DataFrame = field(default_factory=pd.DataFrame)  # the same on seconds
    chosen: pd.DataFrame = field(default_factory=pd.DataFrame)  # the chosen trial's searched values

    @property
    def steps_recorded(self) -> bool:
        return steps_recorded(self.results.runs)

    @property
    def noise_measured(self) -> bool:
        return noise_measured(self.results.runs)

    @property
    def no_validation(self) -> str:
        return NO_VALIDATION


def steps_recorded(runs: pd.DataFrame) -> bool:
    """Whether any run recorded steps to target (a column older databases lack)."""
    return "steps_to_target" in runs and bool(runs["steps_to_target"].notna().any())


def noise_measured(runs: pd.DataFrame) -> bool:
    """Whether any run measured the gradient noise scale, or was asked to."""
    measured = runs["grad_noise_scale"].notna().any() if "grad_noise_scale" in runs else False
    asked = runs["noise_scale"].fillna(False).astype(bool).any() if "noise_scale" in runs else False
    return bool(measured or asked)


def analyse(results: Results, margin: float = MARGIN) -> Analysis:
    """Every table the report needs, once."""
    runs, facets = results.runs, results.facets
    empty = pd.DataFrame()
    if runs.empty:
        return Analysis(
            results, empty, empty, empty, problem_table(results), False, False, empty, empty, empty, empty, empty,
            empty, empty, {}, answer(results, margin=margin),
        )  # fmt: skip
    tuning = is_tuning_sweep(runs, facets)
    validation = has_validation(runs)
    steps = results.has_target and steps_recorded(runs)
    rates = select_rates(runs, facets) if validation else empty
    grid = rate_scores(runs, facets, "val_rmse" if validation else "test_rmse") if tuning or validation else empty
    step_scores = target_scores(runs, facets, "steps_to_target") if results.has_target else empty
    steps_choices = target_choices(runs, facets, "steps_to_target", step_scores) if results.has_target else empty
    second_scores = target_scores(runs, facets, "seconds_to_target") if steps else empty
    seconds_choices = target_choices(runs, facets, "seconds_to_target", second_scores) if steps else empty
    critical, fits = empty, {}
    if steps or noise_measured(runs):
        with_noise = noise_scale_at_target(runs, results.epochs) if results.has_target else runs
        critical, fits = critical_table(with_noise, facets, steps_choices if steps else None)
    ans = answer(results, critical, margin, rates, grid if validation else empty, steps_choices)
    labels = group_columns(facets)
    optimum, rate_fits = optimum_table(rates, critical, tuning_facets(facets)) if tuning else (empty, {})
    return Analysis(
        results=results,
        accuracy=accuracy_table(results),
        speed=speed_table(results),
        target=target_table(results),
        problems=with_diagnostics(problem_table(results), ans),
        tuning=tuning,
        validation=validation,
        rates=rates,
        tuned=tuned_table(runs, facets, rates) if tuning and validation else empty,
        rate_grid=grid,
        steps_choices=steps_choices if steps else empty,
        seconds_choices=seconds_choices,
        scaling=target_scaling_table(
            runs, facets, {"steps_to_target": steps_choices, "seconds_to_target": seconds_choices}
        )
        if steps
        else empty,
        critical=critical,
        fits=fits,
        answer=ans,
        leads=lead_table(results),
        optimum=optimum,
        rate_fits=rate_fits,
        budget=budget_table(grid, labels) if tuning and validation else empty,
        steps_budget=budget_table(step_scores, labels) if tuning and steps else empty,
        trials=trial_table(grid, step_scores if steps else empty, labels) if validation else empty,
        studies=study_table(step_scores, labels) if steps else empty,
        seconds_studies=study_table(second_scores, labels, "seconds") if steps else empty,
        chosen=chosen_values(rates, labels),
    )


def with_diagnostics(problems: pd.DataFrame, ans: Answer) -> pd.DataFrame:
    """problems.csv: the runs not counted (kind 'run') and then each diagnostic (kind: its code, `scope`)."""
    runs = problems.assign(kind="run", scope="")
    rows = pd.DataFrame(
        {"kind": [d.code for d in ans.diagnostics], "scope": [d.scope for d in ans.diagnostics],
         "status": "warning", "error": [d.message for d in ans.diagnostics]}
    )  # fmt: skip
    return pd.concat([runs, rows], ignore_index=True) if len(rows) else runs


def as_analysis(data: Analysis | Results) -> Analysis:
    """An analysis of `data` (a figure called from a notebook with plain results analyses them first)."""
    return data if isinstance(data, Analysis) else analyse(data)
