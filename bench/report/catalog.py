"""The report's catalog: the one place each figure and table is declared, with its file stem, the
section it appears in, its caption, when it applies, and the function that draws it (figures) or the
analysis table it shows (tables). A new figure is one draw function (`bench.report.figures`) and one
entry here; `bench.report.build` lays the sections out in `SECTIONS` order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from bench.report import figures as f
from bench.report.analysis import Analysis
from bench.report.stats import THROUGHPUT

CAPTIONS: dict[str, str] = {
    "rmse_by_batch_size": "Test RMSE by batch size. Boxes span the repeats of one configuration (whiskers 1.5 IQR), "
    "dots are individual runs (at most 300 per panel, a fixed random sample), the dashed line is the persistence "
    "forecast (predict the last value).",
    "throughput_by_batch_size": "Training samples per second by batch size, log-log, from steady-state timed rounds "
    "(never the first, compiling epoch). Line: median over runs of each run's median round; band: the interquartile "
    "range of the rounds, widened to the 95% bootstrap interval over repeats; dots: individual runs. Runs trained "
    "together (trained_together > 1) show each run's share of the machine's throughput.",
    "tradeoff": "Mean test RMSE against median throughput per configuration, labelled with the batch size. Ringed and "
    "joined: Pareto-optimal configurations, for which no other is both faster and more accurate.",
    "learning_curves": "Training loss by epoch for successful runs: mean over repeats per batch size, band from "
    "min to max.",
    "epochs_to_target": "Epochs each run needed to reach the target. Crosses on the top line never reached it; "
    "bars are olympic means (fastest and slowest run dropped).",
    "seconds_to_target": "Training seconds each run needed to reach the target. Crosses on the top line never reached "
    "it; bars are olympic means (fastest and slowest run dropped).",
    "tuned_rmse_by_batch_size": "Test RMSE per batch size at the base learning rate chosen for that batch size on the "
    "validation split (lowest median validation RMSE; the test set plays no part in the choice), written above each "
    "box. Boxes span that rate's runs, dots are individual runs, diamonds the mean with its 95% bootstrap CI, the "
    "dashed line the persistence forecast. One panel per mode and per value of the other varying axes.",
    "lr_batch_heatmap": "Median validation RMSE of each batch size x base learning rate (diverged runs count as worst; "
    "grey: not run or mostly diverged), outlined: the rate chosen for each batch size. Without a validation split "
    "the cells show the test RMSE instead, as the title and colour bar say, and no rate is outlined.",
    "steps_to_target": "Median optimizer steps to reach the target by batch size, log-log, at the base learning rate "
    "that needs the fewest median steps for that batch size (label); a run that never reached the target counts as "
    "slowest, so a rate whose median run missed it has no value. Faint dots: runs of the chosen rate. Dashed: "
    "perfect scaling from the smallest batch size (S_0 B_0 / B). Solid: the fit S(B) = S_min (1 + B_crit / B) "
    "(McCandlish et al. 2018) with the bootstrap 95% CI of B_crit (runs resampled within each batch size).",
    "time_to_target": "Median training seconds to reach the target by batch size, log-log, at the base learning rate "
    "that needs the least median time for that batch size (label); runs that never reached the target count as "
    "slowest. Faint dots: runs of the chosen rate.",
    "tuning_budget": "How many trials each batch size needs (the tuning playbook's best-of-k): for k trials drawn "
    "without replacement from the learning rates tried, the best median validation RMSE among them, bootstrap median "
    "(line) and 5-95% band over 1,000 draws. A curve still falling at the last k has not found its optimum; a flat "
    "one found it within a few trials.",
    "optimal_rate": "The learning rate chosen on validation per batch size (dots, log-log), per mode, and the form "
    "that fits them best by AIC among constant, linear scaling (Goyal et al. 2017), square-root scaling (Malladi et "
    "al. 2022) and the surge form of Li et al. 2024, which peaks at B_noise (line; the title names it). Each chosen "
    "rate is one of the rates tried, so the fit sees the optimum to their spacing.",
    "steps_budget": "How many trials each batch size needs to reach the target fast: for k trials drawn without "
    "replacement, the fewest median steps to the validation target among them (log scale), bootstrap median (line) "
    "and 5-95% band over 1,000 draws. A trial whose median run missed the target counts as infinitely slow, so the "
    "line starts where most draws of k trials reach the target.",
    "search_optimum": "The searched values of the trial chosen on validation per batch size, one panel per searched "
    "dimension (log scale where the dimension is searched in log space). Read with the boundary warnings: a value at "
    "the edge of the search space may lie beyond it.",
    "rmse_by_lead": "Multi-step forecasts (horizon > 1): mean test RMSE at each lead time, per batch size (colour) "
    "and mode (line style), with the 95% bootstrap CI over repeats as a band; dashed: the persistence forecast, "
    "which repeats the last value the window saw, so its error grows with the lead.",
    "noise_scale": "The gradient noise scale B_simple (McCandlish et al. 2018) over training, against optimizer steps: "
    "per batch size, the median over runs at each epoch, of runs at the rate chosen on validation (every rate pooled "
    "without a validation split, as the title says). Dotted: the batch sizes tried. A batch size well below the "
    "curve is where larger batches still cut the steps needed; well above it they mostly add cost. Non-positive "
    "early estimates are not drawn (log scale).",
}

_ACCURACY_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "n": "n",
    "rmse_mean": "mean RMSE",
    "rmse_std": "std",
    "rmse_median": "median",
    "rmse_min": "min",
    "rmse_max": "max",
    "rmse_ci_low": "95% CI low",
    "rmse_ci_high": "95% CI high",
    "persistence_rmse": "persistence RMSE",
    "skill_mean": "mean skill",
    "vs_best": "vs best batch size (Mann-Whitney)",
    "note": "note",
}
SPEED_CAPTION = (
    "Samples/s from steady-state timed rounds (whole epochs after the first, plus calibration rounds of the compiled "
    "epoch where training gave too few). For runs trained together each run's share of the machine; 'machine "
    "samples/s' is all of them together. 'busy' counts runs timed while other processes used the CPU."
)
_SPEED_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "n": "n",
    "sps_mean": "mean samples/s",
    "sps_std": "std",
    "sps_median": THROUGHPUT,
    "sps_min": "min",
    "sps_max": "max",
    "sps_low": "interval low",
    "sps_high": "interval high",
    "machine_sps_median": "machine samples/s",
    "rounds_median": "timed rounds (median)",
    "busy": "busy",
    "train_seconds_mean": "mean train s",
    "compile_seconds_median": "median compile s",
}
_BUDGET_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "trials": "trials",
    "k": "k",
    "best_median": "best of k (median)",
    "best_low": "5%",
    "best_high": "95%",
}
_TRIAL_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "trial": "trial",
    "study": "study",
    "val_rmse_median": "median val RMSE",
    "steps_median": "median steps to target",
    "n": "n",
    "n_diverged": "diverged",
    "status": "status",
}
_STUDY_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "target": "target",
    "trials": "trials",
    "studies": "studies",
    "studies_missed": "studies that missed",
    "steps_fewest": "fewest steps (all trials)",
    "steps_study_median": "median over studies",
    "steps_study_min": "fastest study",
    "steps_study_max": "slowest study",
}
_OPTIMUM_NAMES = {
    "mode": "mode",
    "batch_sizes": "batch sizes",
    "best": "best form (AIC)",
    "aic_constant": "AIC constant",
    "aic_linear": "AIC linear",
    "aic_sqrt": "AIC sqrt",
    "aic_surge": "AIC surge",
    "surge_peak": "surge peak B_noise",
    "note": "note",
}
_LEAD_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "horizon": "horizon",
    "lead": "lead",
    "n": "n",
    "rmse_mean": "mean RMSE",
    "rmse_ci_low": "95% CI low",
    "rmse_ci_high": "95% CI high",
    "persistence_rmse": "persistence RMSE",
}
_TARGET_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "target": "target",
    "n": "runs",
    "reached": "reached",
    "epochs_olympic": "epochs (olympic mean)",
    "seconds_olympic": "seconds (olympic mean)",
    "note": "note",
}
_PROBLEM_NAMES = {
    "kind": "kind",
    "run_id": "run id",
    "source": "source",
    "mode": "mode",
    "batch_size": "batch size",
    "repeat": "repeat",
    "status": "status",
    "error": "error",
}

_TUNED_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "base_learning_rate": "chosen base rate",
    "learning_rate": "effective rate",
    "trials_tried": "trials tried",
    "n": "n",
    "n_diverged": "diverged",
    "val_rmse_median": "median val RMSE",
    "test_rmse_mean": "mean test RMSE",
    "test_rmse_ci_low": "95% CI low",
    "test_rmse_ci_high": "95% CI high",
    "vs_best": "vs best batch size (Mann-Whitney)",
    "note": "note",
}
_SCALING_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "target": "target",
    "trials_tried": "trials tried",
    "n": "runs",
    "steps_base_learning_rate": "rate (fewest steps)",
    "steps_reached": "reached",
    "steps_median": "median steps",
    "seconds_base_learning_rate": "rate (least time)",
    "seconds_median": "median seconds",
}
_CRITICAL_NAMES = {
    "mode": "mode",
    "target": "target",
    "batch_sizes": "batch sizes fitted",
    "s_min": "S_min (steps)",
    "b_crit": "B_crit",
    "b_crit_ci_low": "95% CI low",
    "b_crit_ci_high": "95% CI high",
    "b_crit_20": "B_crit (20% excess)",
    "b_simple_median": "B_simple (median)",
    "b_simple_q1": "B_simple Q1",
    "b_simple_q3": "B_simple Q3",
    "b_simple_n": "runs with B_simple",
    "disagree": "disagree",
    "note": "note",
}


@dataclass(frozen=True)
class FigureEntry:
    """A figure: drawn into `stem`.png and `stem`.svg when `applies`, else left out of the page."""

    stem: str
    section: str
    caption: str
    draw: Callable[[Analysis], Figure]
    applies: Callable[[Analysis], bool] = lambda a: True


@dataclass(frozen=True)
class TableEntry:
    """A table of the analysis: shown under `heading` (with `names` as its column headers) and written as
    `csv`.csv when `applies`; `empty` says why when it has no rows."""

    name: str
    section: str
    frame: Callable[[Analysis], pd.DataFrame]
    names: dict[str, str]
    heading: str = ""
    caption: str = ""
    empty: str = ""
    csv: str | None = None
    applies: Callable[[Analysis], bool] = lambda a: True
    tuning_facets: bool = False  # the tuning tables: panels without the learning rate columns
    optional: bool = False  # its CSV is written only where it applies and has rows (as the tuning tables')
    all_columns: bool = False  # shown with every column (`names` renames some), as a search's dimensions vary


#: Sections in page order (a tuned sweep's answer first: `build` moves "detail" after the tuning ones).
SECTIONS: dict[str, str] = {
    "tuned": "Tuned per batch size",
    "target": "Time to target",
    "critical": "Critical batch size",
    "detail": "Figures",
}


def _steps(a: Analysis) -> bool:
    return a.results.has_target and a.steps_recorded


CATALOG: tuple[FigureEntry | TableEntry, ...] = (
    FigureEntry("tuned_rmse_by_batch_size", "tuned", CAPTIONS["tuned_rmse_by_batch_size"],
                f.tuned_rmse_by_batch_size, lambda a: a.tuning),
    FigureEntry("lr_batch_heatmap", "tuned", CAPTIONS["lr_batch_heatmap"], f.lr_batch_heatmap, lambda a: a.tuning),
    TableEntry("tuned", "tuned", lambda a: a.tuned, _TUNED_NAMES, csv="tuned", tuning_facets=True,
               empty="No tuned accuracy: {no_validation}.", applies=lambda a: a.tuning),
    FigureEntry("tuning_budget", "tuned", CAPTIONS["tuning_budget"], f.tuning_budget, lambda a: not a.budget.empty),
    TableEntry("tuning_budget", "tuned", lambda a: a.budget, _BUDGET_NAMES, csv="tuning_budget", tuning_facets=True,
               heading="Tuning budget: best of k trials", applies=lambda a: not a.budget.empty),
    FigureEntry("search_optimum", "tuned", CAPTIONS["search_optimum"], f.search_optimum, lambda a: not a.chosen.empty),
    TableEntry("chosen_trials", "tuned", lambda a: a.chosen, {}, csv="chosen_trials", tuning_facets=True,
               heading="The best trial's searched values", applies=lambda a: not a.chosen.empty, optional=True,
               all_columns=True),
    TableEntry("trials", "tuned", lambda a: a.trials, _TRIAL_NAMES, csv="trials", tuning_facets=True,
               heading="Every trial of the search (diverged ones kept)", applies=lambda a: not a.trials.empty,
               optional=True, all_columns=True),
    FigureEntry("optimal_rate", "tuned", CAPTIONS["optimal_rate"], f.optimal_rate,
                lambda a: a.tuning and not a.optimum.empty and bool(a.rate_fits)),
    TableEntry("optimal_rate", "tuned", lambda a: a.optimum, _OPTIMUM_NAMES, csv="optimal_rate", tuning_facets=True,
               heading="Optimal learning rate against batch size", applies=lambda a: a.tuning and not a.optimum.empty),
    FigureEntry("steps_to_target", "target", CAPTIONS["steps_to_target"], f.steps_to_target, _steps),
    FigureEntry("time_to_target", "target", CAPTIONS["time_to_target"], f.time_to_target_by_batch_size, _steps),
    TableEntry("tuned_to_target", "target", lambda a: a.scaling, _SCALING_NAMES, csv="tuned_to_target",
               tuning_facets=True, applies=_steps),
    TableEntry("studies", "target", lambda a: a.studies, _STUDY_NAMES, csv="studies", tuning_facets=True,
               heading="Steps to target over studies (AlgoPerf: a study scores its fastest trial; missed: inf)",
               applies=lambda a: not a.studies.empty, optional=True),
    FigureEntry("steps_budget", "target", CAPTIONS["steps_budget"], f.steps_budget, lambda a: not a.steps_budget.empty),
    TableEntry("steps_budget", "target", lambda a: a.steps_budget, _BUDGET_NAMES, csv="steps_budget",
               tuning_facets=True, heading="Tuning budget on steps to target: best of k trials",
               applies=lambda a: not a.steps_budget.empty, optional=True),
    FigureEntry("epochs_to_target", "target", CAPTIONS["epochs_to_target"],
                lambda a: f.time_to_target(a, "epochs"), lambda a: a.results.has_target),
    FigureEntry("seconds_to_target", "target", CAPTIONS["seconds_to_target"],
                lambda a: f.time_to_target(a, "seconds"), lambda a: a.results.has_target),
    TableEntry("time_to_target", "target", lambda a: a.target, _TARGET_NAMES, csv="time_to_target",
               empty="A target was set, but no run with it finished (ok or diverged).",
               applies=lambda a: a.results.has_target),
    FigureEntry("noise_scale", "critical", CAPTIONS["noise_scale"], f.noise_scale,
                lambda a: a.tuning or a.noise_measured),
    TableEntry("critical_batch_size", "critical", lambda a: a.critical, _CRITICAL_NAMES, csv="critical_batch_size",
               tuning_facets=True, applies=lambda a: not a.critical.empty),
    FigureEntry("rmse_by_batch_size", "detail", CAPTIONS["rmse_by_batch_size"], f.rmse_by_batch_size),
    FigureEntry("rmse_by_lead", "detail", CAPTIONS["rmse_by_lead"], f.rmse_by_lead, lambda a: not a.leads.empty),
    FigureEntry("throughput_by_batch_size", "detail", CAPTIONS["throughput_by_batch_size"], f.throughput_by_batch_size),
    FigureEntry("tradeoff", "detail", CAPTIONS["tradeoff"], f.tradeoff),
    FigureEntry("learning_curves", "detail", CAPTIONS["learning_curves"], f.learning_curves),
    TableEntry("accuracy", "detail", lambda a: a.accuracy, _ACCURACY_NAMES, csv="accuracy",
               heading="Accuracy per configuration (test RMSE)", empty="No successful run recorded a test RMSE."),
    TableEntry("accuracy_by_lead", "detail", lambda a: a.leads, _LEAD_NAMES, csv="accuracy_by_lead",
               heading="Accuracy per lead time (test RMSE)", applies=lambda a: not a.leads.empty, optional=True),
    TableEntry("speed", "detail", lambda a: a.speed, _SPEED_NAMES, csv="speed", caption=SPEED_CAPTION,
               heading="Training throughput per configuration", empty="No successful run recorded a throughput."),
)  # fmt: skip

FIGURES: tuple[FigureEntry, ...] = tuple(e for e in CATALOG if isinstance(e, FigureEntry))
TABLES: tuple[TableEntry, ...] = tuple(e for e in CATALOG if isinstance(e, TableEntry))


def figure(stem: str) -> FigureEntry:
    """The catalog entry of figure `stem`."""
    return next(e for e in FIGURES if e.stem == stem)
