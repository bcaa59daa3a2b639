"""The report: results databases in, figures, tables and a self-contained HTML page out.

Usable from the CLI (`lstm-bench report`) and from notebooks::

    from bench.report import analyse, load_results, tradeoff
    analysis = analyse(load_results("results/cpu", "results/gpu"))
    tradeoff(analysis)                       # any figure draws from the analysis
    print(analysis.answer.text())            # the recommendation and its warnings
    analysis.speed                           # and every table
"""

from __future__ import annotations

from bench.report.analysis import Analysis, analyse
from bench.report.answer import Answer
from bench.report.build import Written, write_report
from bench.report.catalog import CATALOG, FigureEntry, TableEntry
from bench.report.figures import (
    NothingToPlot,
    learning_curves,
    lr_batch_heatmap,
    noise_scale,
    rmse_by_batch_size,
    steps_to_target,
    throughput_by_batch_size,
    time_to_target,
    time_to_target_by_batch_size,
    tradeoff,
    tuned_rmse_by_batch_size,
)
from bench.report.load import CONFIG_COLUMNS, Results, load_results
from bench.report.stats import accuracy_table, problem_table, speed_table, target_table
from bench.report.tuning import (
    critical_batch_size,
    critical_table,
    fit_scaling,
    select_rates,
    target_choices,
    target_scaling_table,
    tuned_table,
)

__all__ = [
    "CATALOG",
    "CONFIG_COLUMNS",
    "Analysis",
    "Answer",
    "FigureEntry",
    "TableEntry",
    "Written",
    "analyse",
    "NothingToPlot",
    "Results",
    "accuracy_table",
    "critical_batch_size",
    "critical_table",
    "fit_scaling",
    "learning_curves",
    "load_results",
    "lr_batch_heatmap",
    "noise_scale",
    "problem_table",
    "rmse_by_batch_size",
    "select_rates",
    "speed_table",
    "steps_to_target",
    "target_choices",
    "target_scaling_table",
    "target_table",
    "throughput_by_batch_size",
    "time_to_target",
    "time_to_target_by_batch_size",
    "tradeoff",
    "tuned_rmse_by_batch_size",
    "tuned_table",
    "write_report",
]
