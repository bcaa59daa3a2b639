"""`lstm-bench compare` rendered: the speed-up figure and the comparison page (index.html, summary.md,
comparison.csv) from the pairing analysis (`bench.report.pairing`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench.report.figures import MODE_COLORS, log2_batch_ticks
from bench.report.load import load_results
from bench.report.pairing import MACHINE, PER_RUN, Comparison, Crossover, compare_tables, condition_warnings
from bench.report.render import (
    Block,
    Bullets,
    Heading,
    Missing,
    Paragraph,
    Picture,
    Table,
    render_html,
    render_markdown,
    save_figure,
    write_text,
)

log = logging.getLogger(__name__)

__all__ = ["Comparison", "Crossover", "speedup_figure", "write_comparison"]


def speedup_figure(
    table: pd.DataFrame, crossovers: tuple[Crossover, ...], label_a: str, label_b: str, unit: str = "samples/s"
) -> Figure:
    """Speed-up of B over A by batch size (log-log), 1 = parity, each crossover marked."""
    palette = sns.color_palette("colorblind", max(3, table["series"].nunique()))
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=(8.0, 5.0), layout="constrained")
        ax = fig.subplots()
        for i, (series, g) in enumerate(table.groupby("series", sort=False)):
            mode = series.split(",")[0]
            color = (
                MODE_COLORS.get(mode, palette[i % len(palette)])
                if table["series"].nunique() <= 3
                else palette[i % len(palette)]
            )
            g = g.sort_values("batch_size")
            ax.fill_between(g["batch_size"], g["speedup_low"], g["speedup_high"], color=color, alpha=0.2, lw=0)
            ax.plot(g["batch_size"], g["speedup"], marker="o", lw=2, color=color, label=series)
        ax.axhline(1.0, color="0.2", lw=1.2, ls="--", label="parity")
        largest = table["batch_size"].max()
        for size in sorted({c.batch_size for c in crossovers if c.batch_size is not None}):
            ax.axvline(size, color="0.35", lw=1, ls=":")
            at_edge = size == largest  # keep the label inside the axes
            ax.annotate(
                f"crossover: {size}",
                (size, 1.0),
                xytext=(-6 if at_edge else 6, 10),
                textcoords="offset points",
                fontsize=9,
                ha="right" if at_edge else "left",
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        log2_batch_ticks(ax, table["batch_size"].to_numpy())
        ax.set_xlabel("batch size (log scale)")
        ax.set_ylabel(f"speed-up: {unit} {label_b} / {label_a} (log scale)")
        ax.set_title(
            f"{label_b} vs {label_a}: above 1, {label_b} trains faster (band: the speed-up's interval)", fontsize=11
        )
        ax.legend(loc="best", fontsize=9)
    return fig


def write_comparison(
    dir_a: Path, dir_b: Path, label_a: str = "A", label_b: str = "B", out: Path | None = None
) -> Comparison:
    """Compare the results folders `dir_a` and `dir_b`; writes index.html, summary.md, comparison.csv
    and speedup.png/.svg into `out` (default: `dir_b`/compare) and returns the Comparison."""
    a = load_results(dir_a).runs
    b = load_results(dir_b).runs
    target = Path(out) if out is not None else Path(dir_b) / "compare"
    target.mkdir(parents=True, exist_ok=True)
    table, crossovers, unpaired, (basis, why) = compare_tables(a, b, label_a, label_b)
    warnings = condition_warnings(a, b, label_a, label_b)
    unit = "samples/s" if basis == PER_RUN else "machine samples/s"
    table.to_csv(target / "comparison.csv", index=False)
    title = f"lstm-bench comparison: {label_b} ({Path(dir_b).name}) vs {label_a} ({Path(dir_a).name})"
    blocks: list[Block] = [Heading("Summary")]
    if warnings:
        blocks.append(Bullets(tuple(f"warning: {w}" for w in warnings)))
    if table.empty:
        blocks.append(
            Missing(
                f"No ok run of {label_a} shares a configuration and repeat with one of {label_b}: nothing to compare."
            )
        )
        (target / "speedup.png").unlink(missing_ok=True)
        (target / "speedup.svg").unlink(missing_ok=True)
    else:
        machine = (
            f" Speeds are machine throughput (samples/s x runs trained together): {why}." if basis == MACHINE else ""
        )
        blocks.append(
            Paragraph(
                f"Speed-up is the ratio of median {unit}, {label_b} over {label_a}, over the paired runs of each batch "
                f"size (a pair: same configuration and repeat, hence seed), with the interval the two sides' speed "
                f"intervals allow (interquartile range of the timed rounds, widened to the bootstrap interval over "
                f"repeats); where it holds 1 the two are indistinguishable. RMSE difference is the mean over pairs of "
                f"{label_b}'s test RMSE minus {label_a}'s. Pairs that differ in backend start from different initial "
                f"weights (each backend draws its own from the seed), so their RMSE difference is not a paired "
                f"comparison of one model.{machine}",
                note=True,
            )
        )
        blocks += [Paragraph(f"{c.series}: {c.verdict}.") for c in crossovers]
        fig = speedup_figure(table, crossovers, label_a, label_b, unit)
        blocks.append(
            Picture(
                "speedup",
                save_figure(fig, target, "speedup"),
                f"Speed-up of {label_b} over {label_a} by batch size; dashed: parity; dotted: crossover.",
            )
        )
        shown = table.rename(
            columns={
                "batch_size": "batch size",
                "sps_a": f"{unit} {label_a}",
                "sps_b": f"{unit} {label_b}",
                "speedup": "speed-up",
                "speedup_low": "speed-up low",
                "speedup_high": "speed-up high",
                "ratio_min": "min pair ratio",
                "ratio_max": "max pair ratio",
                "rmse_a": f"RMSE {label_a}",
                "rmse_b": f"RMSE {label_b}",
                "rmse_diff": f"RMSE {label_b} - {label_a}",
                "kernel_a": f"LSTM kernel {label_a}",
                "kernel_b": f"LSTM kernel {label_b}",
            }
        )
        blocks += [Heading("Per batch size"), Table(shown)]
    blocks.append(Heading(f"Unpaired runs ({len(unpaired)})"))
    blocks.append(Table(unpaired.astype(object)) if not unpaired.empty else Paragraph("Every run was paired."))
    write_text(target / "summary.md", render_markdown(title, blocks))
    write_text(target / "index.html", render_html(title, blocks))
    log.info("comparison written to %s", target / "index.html")
    return Comparison(label_a, label_b, table, crossovers, unpaired, target, basis, why, warnings)
