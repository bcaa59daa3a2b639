"""The report: results databases in, figures, tables and a self-contained HTML page out.

Usable from the CLI (`lstm-bench report`) and from notebooks::

    from bench.report import load_results, tradeoff
    results = load_results("results/cpu", "results/gpu")
    tradeoff(results)
"""

from __future__ import annotations

from bench.report.build import write_report
from bench.report.figures import (
    NothingToPlot,
    learning_curves,
    rmse_by_batch_size,
    throughput_by_batch_size,
    time_to_target,
    tradeoff,
)
from bench.report.load import CONFIG_COLUMNS, Results, load_results
from bench.report.stats import accuracy_table, problem_table, speed_table, target_table

__all__ = [
    "CONFIG_COLUMNS",
    "NothingToPlot",
    "Results",
    "accuracy_table",
    "learning_curves",
    "load_results",
    "problem_table",
    "rmse_by_batch_size",
    "speed_table",
    "target_table",
    "throughput_by_batch_size",
    "time_to_target",
    "tradeoff",
    "write_report",
]
