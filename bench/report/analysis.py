"""The report's analysis layer: every table and statistic the report shows, computed once from the results
(pandas, numpy and scipy only; nothing is drawn here). Figures only draw what `analyse` returns, and the
pages only lay it out, so a figure and a table cannot disagree when a rule changes."""

from __future__ import annotations

from functools import cached_property

import pandas as pd

from bench.report.answer import MARGIN, Answer, answer
from bench.report.budget import budget_table
from bench.report.load import Results
from bench.report.optimum import RateFit, optimum_table
from bench.report.trials import chosen_values, study_table, trial_table
from bench.report.stats import (
    accuracy_table,
    lead_persistence,
    lead_table,
    learning_curve_table,
    problem_table,
    speed_table,
)
from bench.report.stats import ThroughputLines, target_table, throughput_lines, tradeoff_table
from bench.report.tuning import (
    NO_VALIDATION,
    NoiseCurves,
    ScalingFit,
    critical_table,
    noise_scale_curves,
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


EMPTY = pd.DataFrame()


class Analysis:
    """What the report says, as tables (empty where the data cannot support one) and the answer.

    Each table is a cached property, computed from the results the first time something reads it and
    never again (as pytest-benchmark's `Stats` computes each statistic): the Recommendation, findings,
    figures, CSV tables, terminal and `compare` only read them, and a table nobody reads is not computed."""

    def __init__(self, results: Results, margin: float = MARGIN) -> None:
        self.results = results
        self.margin = margin

    # --- what the sweep holds ----------------------------------------------------------------------

    @cached_property
    def has_runs(self) -> bool:
        return not self.results.runs.empty

    @cached_property
    def tuning(self) -> bool:
        """Several learning rates per batch size, or a validation split."""
        return self.has_runs and is_tuning_sweep(self.results.runs, self.results.facets)

    @cached_property
    def validation(self) -> bool:
        return self.has_runs and has_validation(self.results.runs)

    @property
    def steps_recorded(self) -> bool:
        return steps_recorded(self.results.runs)

    @property
    def noise_measured(self) -> bool:
        return noise_measured(self.results.runs)

    @property
    def no_validation(self) -> str:
        return NO_VALIDATION

    @cached_property
    def _steps(self) -> bool:
        """Whether runs recorded steps to a target the scenario set."""
        return self.has_runs and self.results.has_target and self.steps_recorded

    @cached_property
    def _labels(self) -> list[str]:
        return group_columns(self.results.facets)

    # --- accuracy, speed and problems ---------------------------------------------------------------

    @cached_property
    def accuracy(self) -> pd.DataFrame:
        return accuracy_table(self.results) if self.has_runs else EMPTY

    @cached_property
    def speed(self) -> pd.DataFrame:
        return speed_table(self.results) if self.has_runs else EMPTY

    @cached_property
    def target(self) -> pd.DataFrame:
        """Time to target per configuration (olympic means)."""
        return target_table(self.results) if self.has_runs else EMPTY

    @cached_property
    def problems(self) -> pd.DataFrame:
        """Runs not counted (kind "run") and the diagnostics (kind: their code)."""
        problems = problem_table(self.results)
        return with_diagnostics(problems, self.answer) if self.has_runs else problems

    @cached_property
    def throughput(self) -> ThroughputLines:
        """Runs' throughputs and the speed table's lines, as the throughput figure draws them."""
        return throughput_lines(self.results, self.speed)

    @cached_property
    def learning_curves(self) -> pd.DataFrame:
        """Training loss by epoch per curve panel, mode and batch size: mean, min and max over runs."""
        return learning_curve_table(self.results) if self.has_runs else EMPTY

    @cached_property
    def tradeoff(self) -> pd.DataFrame:
        """Mean test RMSE and median samples/s per configuration, Pareto-optimal ones marked per panel."""
        return tradeoff_table(self.results, self.accuracy, self.speed) if self.has_runs else EMPTY

    @cached_property
    def noise_curves(self) -> NoiseCurves:
        """The gradient noise scale over training, per batch size."""
        if not self.has_runs:
            return NoiseCurves(EMPTY, reason="the results hold no runs")
        return noise_scale_curves(self.results, self.validation, self.rates)

    @cached_property
    def leads(self) -> pd.DataFrame:
        """Test RMSE per lead time (horizon > 1)."""
        return lead_table(self.results) if self.has_runs else EMPTY

    @cached_property
    def lead_persistence(self) -> pd.DataFrame:
        """Per panel and lead: the persistence forecast's RMSE, the mean over the panel's configurations."""
        return lead_persistence(self.leads)

    # --- learning rates, tuned per batch size -------------------------------------------------------

    @cached_property
    def rates(self) -> pd.DataFrame:
        """The base rate chosen on validation per tuning panel, mode and batch size."""
        return select_rates(self.results.runs, self.results.facets) if self.validation else EMPTY

    @cached_property
    def rate_grid(self) -> pd.DataFrame:
        """Median validation (or, without a split, test) RMSE per batch size x rate."""
        if not (self.tuning or self.validation):
            return EMPTY
        return rate_scores(self.results.runs, self.results.facets, "val_rmse" if self.validation else "test_rmse")

    @cached_property
    def tuned(self) -> pd.DataFrame:
        """Test RMSE at the chosen rates."""
        tuned = self.tuning and self.validation
        return tuned_table(self.results.runs, self.results.facets, self.rates) if tuned else EMPTY

    @cached_property
    def chosen(self) -> pd.DataFrame:
        """The chosen trial's searched values."""
        return chosen_values(self.rates, self._labels) if self.has_runs else EMPTY

    @cached_property
    def _optimum(self) -> tuple[pd.DataFrame, dict[tuple[str, str], RateFit]]:
        if not self.tuning:
            return EMPTY, {}
        return optimum_table(self.rates, self.critical, tuning_facets(self.results.facets))

    @property
    def optimum(self) -> pd.DataFrame:
        """The chosen rate's form against batch size."""
        return self._optimum[0]

    @property
    def rate_fits(self) -> dict[tuple[str, str], RateFit]:
        """The chosen rate's best fit per (tuning panel, mode)."""
        return self._optimum[1]

    @cached_property
    def budget(self) -> pd.DataFrame:
        """Best of k trials per batch size."""
        return budget_table(self.rate_grid, self._labels) if self.tuning and self.validation else EMPTY

    @cached_property
    def trials(self) -> pd.DataFrame:
        """A search's every trial per batch size."""
        if not self.validation:
            return EMPTY
        return trial_table(self.rate_grid, self._step_scores if self._steps else EMPTY, self._labels)

    # --- time to target -----------------------------------------------------------------------------

    @cached_property
    def _step_scores(self) -> pd.DataFrame:
        has_target = self.has_runs and self.results.has_target
        return target_scores(self.results.runs, self.results.facets, "steps_to_target") if has_target else EMPTY

    @cached_property
    def _target_choices(self) -> pd.DataFrame:
        """The rate fewest in median steps to target, whether or not runs recorded their steps."""
        if not (self.has_runs and self.results.has_target):
            return EMPTY
        return target_choices(self.results.runs, self.results.facets, "steps_to_target", self._step_scores)

    @property
    def steps_choices(self) -> pd.DataFrame:
        """The rate fewest in median steps to target, and that median."""
        return self._target_choices if self._steps else EMPTY

    @cached_property
    def _second_scores(self) -> pd.DataFrame:
        return target_scores(self.results.runs, self.results.facets, "seconds_to_target") if self._steps else EMPTY

    @cached_property
    def seconds_choices(self) -> pd.DataFrame:
        if not self._steps:
            return EMPTY
        return target_choices(self.results.runs, self.results.facets, "seconds_to_target", self._second_scores)

    @cached_property
    def scaling(self) -> pd.DataFrame:
        """Steps and seconds to target side by side (tuned_to_target.csv)."""
        if not self._steps:
            return EMPTY
        choices = {"steps_to_target": self.steps_choices, "seconds_to_target": self.seconds_choices}
        return target_scaling_table(self.results.runs, self.results.facets, choices)

    @cached_property
    def steps_budget(self) -> pd.DataFrame:
        """Best of k trials per batch size, on steps to target."""
        return budget_table(self._step_scores, self._labels) if self.tuning and self._steps else EMPTY

    @cached_property
    def studies(self) -> pd.DataFrame:
        """Steps to target scored over studies."""
        return study_table(self._step_scores, self._labels) if self._steps else EMPTY

    @cached_property
    def seconds_studies(self) -> pd.DataFrame:
        return study_table(self._second_scores, self._labels, "seconds") if self._steps else EMPTY

    @cached_property
    def _critical(self) -> tuple[pd.DataFrame, dict[tuple[str, str], ScalingFit]]:
        runs = self.results.runs
        if not (self._steps or (self.has_runs and noise_measured(runs))):
            return EMPTY, {}
        with_noise = noise_scale_at_target(runs, self.results.epochs) if self.results.has_target else runs
        return critical_table(with_noise, self.results.facets, self.steps_choices if self._steps else None)

    @property
    def critical(self) -> pd.DataFrame:
        """The critical batch size from steps and from the noise scale."""
        return self._critical[0]

    @property
    def fits(self) -> dict[tuple[str, str], ScalingFit]:
        """S(B) per (tuning panel, mode)."""
        return self._critical[1]

    # --- the answer ---------------------------------------------------------------------------------

    @cached_property
    def answer(self) -> Answer:
        if not self.has_runs:
            return answer(self.results, EMPTY, self.margin, EMPTY, EMPTY, EMPTY)
        grid = self.rate_grid if self.validation else EMPTY
        return answer(self.results, self.critical, self.margin, self.rates, grid, self._target_choices)


def steps_recorded(runs: pd.DataFrame) -> bool:
    """Whether any run recorded steps to target (a column older databases lack)."""
    return "steps_to_target" in runs and bool(runs["steps_to_target"].notna().any())


def noise_measured(runs: pd.DataFrame) -> bool:
    """Whether any run measured the gradient noise scale, or was asked to."""
    measured = runs["grad_noise_scale"].notna().any() if "grad_noise_scale" in runs else False
    asked = runs["noise_scale"].fillna(False).astype(bool).any() if "noise_scale" in runs else False
    return bool(measured or asked)


def analyse(results: Results, margin: float = MARGIN) -> Analysis:
    """Every table the report needs, each computed once when first read."""
    return Analysis(results, margin)


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
