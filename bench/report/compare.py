"""`lstm-bench compare` rendered: the speed-up figure and the comparison page (index.html, summary.md,
comparison.csv) from the pairing analysis (`bench.report.pairing`)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bench.report.figures import MODE_COLORS, log2_batch_ticks, readable_log_ticks
from bench.report.load import load_results
from bench.errors import UserError
from bench.report.answer import MARGIN
from bench.report.pairing import (
    COMPARED_AXES,
    MACHINE,
    PER_RUN,
    Comparison,
    Crossover,
    compare_runs,
    condition_warnings,
)
from bench.report.stats import EQUIVALENCE_LEVEL
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

__all__ = ["Comparison", "Crossover", "compare_by", "speedup_figure", "write_comparison"]


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
        readable_log_ticks(ax, unit="x")
        log2_batch_ticks(ax, table["batch_size"].to_numpy())
        ax.set_xlabel("batch size (log scale)")
        ax.set_ylabel(f"speed-up: {unit} {label_b} / {label_a} (log scale)")
        ax.set_title(
            f"{label_b} vs {label_a}: above 1, {label_b} trains faster (band: the speed-up's interval)", fontsize=11
        )
        ax.legend(loc="best", fontsize=9)
    return fig


def write_comparison(
    dir_a: Path,
    dir_b: Path,
    label_a: str = "A",
    label_b: str = "B",
    out: Path | None = None,
    margin: float = MARGIN,
) -> Comparison:
    """Compare the results folders `dir_a` and `dir_b`; writes index.html, summary.md, comparison.csv
    and speedup.png/.svg into `out` (default: `dir_b`/compare) and returns the Comparison."""
    a = load_results(dir_a).runs
    b = load_results(dir_b).runs
    target = Path(out) if out is not None else Path(dir_b) / "compare"
    title = f"lstm-bench comparison: {label_b} ({Path(dir_b).name}) vs {label_a} ({Path(dir_a).name})"
    return write_pairing(a, b, label_a, label_b, target, title, margin)


def axis_levels(runs: pd.DataFrame, axis: str) -> list[str]:
    """The values of comparison axis `axis` in a runs table, sorted (the first of a pair is its side A)."""
    return sorted(set(runs[axis].astype(str)))


def compare_by(folder: Path, axis: str, out: Path | None = None, margin: float = MARGIN) -> list[Comparison]:
    """Compare every pair of levels of `axis` (backend, engine, device, model, dataset) inside one results
    folder; each pair is written to `out`/LEVEL_A-vs-LEVEL_B (default `out`: `folder`/compare/by-AXIS)."""
    if axis not in COMPARED_AXES:
        raise UserError(f"--by {axis}: compare along one of {', '.join(COMPARED_AXES)}")
    runs = load_results(folder).runs
    levels = axis_levels(runs, axis)
    if len(levels) < 2:
        raise UserError(
            f"--by {axis}: {folder} holds one {axis} ({', '.join(levels) or 'no runs'}); sweep {axis} in the "
            f"scenario, or compare two folders: lstm-bench compare DIR_A DIR_B"
        )
    root = Path(out) if out is not None else Path(folder) / "compare" / f"by-{axis}"
    comparisons = []
    for i, level_a in enumerate(levels):
        for level_b in levels[i + 1 :]:
            a, b = (runs[runs[axis].astype(str) == level] for level in (level_a, level_b))
            title = f"lstm-bench comparison in {Path(folder).name}: {axis} {level_b} vs {level_a}"
            target = root / _slug(f"{level_a}-vs-{level_b}")
            comparisons.append(write_pairing(a, b, level_a, level_b, target, title, margin, (axis,)))
    return comparisons


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def unpaired_counts(unpaired: pd.DataFrame) -> pd.Series:
    """How many runs were left unpaired for each reason, most first."""
    return (
        unpaired.groupby(["side", "reason"]).size().sort_values(ascending=False)
        if len(unpaired)
        else (pd.Series(dtype=int))
    )


def write_pairing(
    a: pd.DataFrame,
    b: pd.DataFrame,
    label_a: str,
    label_b: str,
    target: Path,
    title: str,
    margin: float = MARGIN,
    differing: tuple[str, ...] | None = None,
) -> Comparison:
    """Pair two runs tables and write the comparison page into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    pairing = compare_runs(a, b, label_a, label_b, margin, differing)
    table, crossovers, unpaired = pairing.table, pairing.crossovers, pairing.unpaired
    warnings = condition_warnings(a, b, label_a, label_b)
    unit = "samples/s" if pairing.basis == PER_RUN else "machine samples/s"
    table.to_csv(target / "comparison.csv", index=False)
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
        blocks.append(Bullets(pairing.sentences))
        machine = (
            f" Speeds are machine throughput (samples/s x runs trained together): {pairing.basis_note}."
            if pairing.basis == MACHINE
            else ""
        )
        compared = " and ".join(pairing.differing) or "nothing but the folder"
        blocks.append(
            Paragraph(
                f"The sides differ in {compared}; runs pair on everything else and their repeat, hence seed, so a "
                f"model starts from the same initial weights on every backend and engine. Speed-up is the ratio of "
                f"median {unit}, {label_b} over {label_a}, over the paired runs of each batch size, with the interval "
                f"the two sides' speed intervals allow (interquartile range of the timed rounds, widened to the "
                f"bootstrap interval over repeats); where it holds 1 the two are indistinguishable. The RMSE "
                f"difference is the mean over pairs of {label_b}'s test RMSE minus {label_a}'s, with its "
                f"{EQUIVALENCE_LEVEL:.0%} bootstrap interval over pairs; as in the Recommendation, it is within "
                f"margin where that interval lies inside {margin:.0%} of {label_a}'s RMSE either way, better or worse "
                f"where it lies below or above 0, and inconclusive otherwise.{machine}",
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
                "speed_verdict": "speed",
                "ratio_min": "min pair ratio",
                "ratio_max": "max pair ratio",
                "rmse_a": f"RMSE {label_a}",
                "rmse_b": f"RMSE {label_b}",
                "rmse_diff": f"RMSE {label_b} - {label_a}",
                "rmse_diff_low": "difference low",
                "rmse_diff_high": "difference high",
                "accuracy_verdict": "accuracy",
                "kernel_a": f"LSTM kernel {label_a}",
                "kernel_b": f"LSTM kernel {label_b}",
            }
        )
        blocks += [Heading("Per batch size"), Table(shown)]
    blocks.append(Heading(f"Unpaired runs ({len(unpaired)})"))
    if unpaired.empty:
        blocks.append(Paragraph("Every run was paired."))
    else:
        counts = unpaired_counts(unpaired)
        blocks.append(Bullets(tuple(f"{n} of {side}: {reason}" for (side, reason), n in counts.items())))
        blocks.append(Table(unpaired.astype(object)))
    write_text(target / "summary.md", render_markdown(title, blocks))
    write_text(target / "index.html", render_html(title, blocks))
    log.info("comparison written to %s", target / "index.html")
    return Comparison(label_a, label_b, pairing, target, warnings)
