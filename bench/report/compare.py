"""Compare two results folders (CPU vs GPU, TensorFlow vs JAX, fit vs scan): paired speed-ups and
accuracy differences per batch size, and the batch size from which B is faster.

Runs pair when they share their configuration but the fields a comparison may vary (device,
backend, engine, and steps_per_execution, which follows the engine: `Column.compared` in
`bench.schema`); the repeat is part of the key, so repeat k of A meets repeat k of B, which has the
same seed. run_id cannot pair them: device, backend and engine are in its hash.

Speed compares like with like. A `scan` run that trained its repeats together (`trained_together`
> 1) reports one repeat's samples over the time all of them took, so when the two sides trained
repeats differently the speed-up is taken on machine throughput (samples/s x runs trained
together), and the output says so.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
import seaborn as sns
from rich.console import Console
from rich.table import Table as RichTable

from bench.report.figures import MODE_COLORS, log2_batch_ticks
from bench.report.load import FACET_CANDIDATES, MODE_ORDER, load_results
from bench.report.render import (
    Block,
    Heading,
    Missing,
    Paragraph,
    Picture,
    Table,
    fmt,
    render_html,
    render_markdown,
    save_figure,
    write_text,
)
from bench.schema import schema

log = logging.getLogger(__name__)

#: What the two sides may differ in; the configuration but these, and the repeat, must match for two runs to pair.
COMPARED_COLUMNS: tuple[str, ...] = schema().compared
PAIR_KEY: tuple[str, ...] = schema().pair_key

PER_RUN = "samples/s per run"
MACHINE = "machine throughput (samples/s x runs trained together)"


@dataclass(frozen=True)
class Crossover:
    """Where B starts to win within one series (all settings fixed but batch size)."""

    series: str  # e.g. "stateful/streams, look_back=3"
    batch_size: int | None  # smallest batch size from which B is faster at every larger one; None if none
    verdict: str


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of B against A.

    `table`: one row per series and batch size: pairs, mean speed of each side (`basis`: samples/s
    per run, or machine throughput when the sides trained repeats differently), `speedup` (ratio
    of B's mean speed to A's over the paired runs; > 1: B is faster), the min and max per-pair
    ratio, and `rmse_diff` (mean over pairs of B's minus A's test RMSE). `unpaired`: runs of
    either side left out of the table, with the reason.
    """

    label_a: str
    label_b: str
    table: pd.DataFrame
    crossovers: tuple[Crossover, ...]
    unpaired: pd.DataFrame
    out: Path
    basis: str = PER_RUN
    basis_note: str = ""

    @property
    def crossover(self) -> int | None:
        """The crossover batch size when the comparison has one series, else None (see `crossovers`)."""
        return self.crossovers[0].batch_size if len(self.crossovers) == 1 else None

    def format_table(self, width: int = 120) -> str:
        """The table as plain text, then each series' crossover verdict and the number of unpaired runs."""
        console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
        console.print(self.to_rich_table())
        verdicts = [f"{c.series}: {c.verdict}" for c in self.crossovers] or ["no paired runs: nothing to compare"]
        tail = (
            f"{len(self.unpaired)} unpaired runs (see {self.out / 'summary.md'})"
            if len(self.unpaired)
            else "every run paired"
        )
        basis = (
            [f"speed-up on {self.basis}" + (f": {self.basis_note}" if self.basis_note else "")]
            if len(self.table)
            else []
        )
        return "\n".join([console.export_text().rstrip(), *basis, *verdicts, tail])

    def to_rich_table(self) -> RichTable:
        """The comparison table for the terminal."""
        unit = "samples/s" if self.basis == PER_RUN else "machine samples/s"
        t = RichTable(title=f"{self.label_b} vs {self.label_a}: speed-up = mean {unit} {self.label_b} / {self.label_a}")
        cols = ["series", "batch_size", "pairs", "sps_a", "sps_b", "speedup", "rmse_diff"]
        names = [
            "series",
            "batch size",
            "pairs",
            f"{unit} {self.label_a}",
            f"{unit} {self.label_b}",
            "speed-up",
            f"RMSE {self.label_b} - {self.label_a}",
        ]
        for n in names:
            t.add_column(n, justify="left" if n == "series" else "right")
        for rec in self.table[cols].itertuples(index=False):
            t.add_row(*(fmt(v) for v in rec))
        return t


def _series_columns(paired: pd.DataFrame) -> list[str]:
    # The axes besides batch size that vary over the pairs: each value combination is a series.
    candidates = [c for c in FACET_CANDIDATES if c in PAIR_KEY]
    return ["mode", *[c for c in candidates if paired[c].astype("string").fillna("none").nunique() > 1]]


def _series_label(row: pd.Series, cols: list[str]) -> str:
    return ", ".join(str(row["mode"]) if c == "mode" else f"{c}={row[c]}" for c in cols)


def pair_runs(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pair ok runs of A and B on PAIR_KEY; returns (pairs with _a/_b columns, unpaired runs with reasons)."""
    key = list(PAIR_KEY)
    unpaired: list[pd.DataFrame] = []
    sides = {}
    for side, runs in (("A", a), ("B", b)):
        runs = runs.assign(_key=runs[key].astype("string").fillna("none").agg("|".join, axis=1) if len(runs) else "")
        bad = runs[runs["status"] != "ok"]
        unpaired.append(bad.assign(side=side, reason="status " + bad["status"].astype(str)))
        ok = runs[runs["status"] == "ok"]
        dup = ok["_key"].duplicated(keep=False)
        unpaired.append(
            ok[dup].assign(side=side, reason=f"ambiguous: several ok runs in {side} share this configuration")
        )
        sides[side] = ok[~dup]
    merged = sides["A"].merge(sides["B"], on="_key", suffixes=("_a", "_b"), how="outer", indicator=True)
    for side, flag in (("A", "left_only"), ("B", "right_only")):
        lonely = sides[side][sides[side]["_key"].isin(merged.loc[merged["_merge"] == flag, "_key"])]
        other = "B" if side == "A" else "A"
        unpaired.append(lonely.assign(side=side, reason=f"no ok run in {other} with the same configuration and repeat"))
    pairs = merged[merged["_merge"] == "both"].copy()
    for c in (*key, "mode"):
        pairs[c] = pairs[f"{c}_a"]
    cols = ["side", "run_id", "mode", "batch_size", "repeat", "device", "backend", "engine", "status", "reason"]
    lost = (
        pd.concat([u[cols] for u in unpaired if not u.empty], ignore_index=True)
        if any(not u.empty for u in unpaired)
        else pd.DataFrame(columns=cols)
    )
    return pairs.drop(columns="_merge"), lost


def _crossover(series: str, g: pd.DataFrame, label_a: str, label_b: str) -> Crossover:
    g = g.sort_values("batch_size")
    wins = (g["speedup"] > 1.0).to_numpy()
    sizes = g["batch_size"].to_numpy()
    if wins.all():
        return Crossover(series, None, f"{label_b} is faster at every batch size measured")
    if not wins[-1]:
        return Crossover(series, None, f"{label_b} is not faster at the largest batch size measured ({sizes[-1]})")
    first = int(np.flatnonzero(~wins)[-1]) + 1  # after the last batch size where A still won
    return Crossover(
        series,
        int(sizes[first]),
        f"{label_b} is faster from batch size {sizes[first]} on (slower or equal up to {sizes[first - 1]})",
    )


def speed_basis(pairs: pd.DataFrame, label_a: str, label_b: str) -> tuple[str, str]:
    """(basis, why): per-run samples/s when both sides trained repeats alike, else machine throughput."""
    tt_a, tt_b = pairs["trained_together_a"].fillna(1), pairs["trained_together_b"].fillna(1)
    if (tt_a == tt_b).all():
        return PER_RUN, ""
    show = lambda s: "/".join(str(int(v)) for v in sorted(s.unique()))  # noqa: E731
    return MACHINE, (
        f"the sides trained repeats differently ({label_a}: {show(tt_a)} at a time, {label_b}: {show(tt_b)}), "
        "so per-run samples/s would compare a share of the machine with all of it"
    )


def compare_tables(
    a: pd.DataFrame, b: pd.DataFrame, label_a: str = "A", label_b: str = "B"
) -> tuple[pd.DataFrame, tuple[Crossover, ...], pd.DataFrame, tuple[str, str]]:
    """The comparison table, crossovers, unpaired runs and speed basis of two runs tables (as `load_results` gives)."""
    pairs, unpaired = pair_runs(a, b)
    cols = [
        "series",
        "batch_size",
        "pairs",
        "sps_a",
        "sps_b",
        "speedup",
        "ratio_min",
        "ratio_max",
        "rmse_a",
        "rmse_b",
        "rmse_diff",
        "kernel_a",
        "kernel_b",
    ]
    if pairs.empty:
        return pd.DataFrame(columns=cols), (), unpaired, (PER_RUN, "")
    basis = speed_basis(pairs, label_a, label_b)
    series_cols = _series_columns(pairs)
    pairs["series"] = [_series_label(r, series_cols) for _, r in pairs.iterrows()]
    for side in ("a", "b"):
        scale = pairs[f"trained_together_{side}"].fillna(1) if basis[0] == MACHINE else 1
        pairs[f"speed_{side}"] = pairs[f"samples_per_sec_{side}"] * scale
    pairs["ratio"] = pairs["speed_b"] / pairs["speed_a"]
    pairs["rmse_delta"] = pairs["test_rmse_b"] - pairs["test_rmse_a"]
    table = (
        pairs.groupby(["series", "batch_size"], sort=False)
        .agg(
            pairs=("ratio", "size"),
            sps_a=("speed_a", "mean"),
            sps_b=("speed_b", "mean"),
            ratio_min=("ratio", "min"),
            ratio_max=("ratio", "max"),
            rmse_a=("test_rmse_a", "mean"),
            rmse_b=("test_rmse_b", "mean"),
            rmse_diff=("rmse_delta", "mean"),
            kernel_a=("kernel_a", _kernels),
            kernel_b=("kernel_b", _kernels),
        )
        .reset_index()
    )
    table["speedup"] = table["sps_b"] / table["sps_a"]
    mode_rank = {f"{m}": i for i, m in enumerate(MODE_ORDER)}
    table = table.assign(_r=table["series"].map(lambda s: mode_rank.get(s.split(",")[0], 9)))
    table = table.sort_values(["_r", "series", "batch_size"]).drop(columns="_r").reset_index(drop=True)[cols]
    crossovers = tuple(_crossover(s, g, label_a, label_b) for s, g in table.groupby("series", sort=False))
    return table, crossovers, unpaired, basis


def _kernels(values: pd.Series) -> str:
    """The LSTM kernels a group of runs recorded (`bench.kernels`); runs before results schema 4 recorded none."""
    return ", ".join(sorted(set(values.dropna()))) or "not recorded"


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
            ax.fill_between(g["batch_size"], g["ratio_min"], g["ratio_max"], color=color, alpha=0.2, lw=0)
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
            f"{label_b} vs {label_a}: above 1, {label_b} trains faster (band: min-max over pairs)", fontsize=11
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
    unit = "samples/s" if basis == PER_RUN else "machine samples/s"
    table.to_csv(target / "comparison.csv", index=False)
    title = f"lstm-bench comparison: {label_b} ({Path(dir_b).name}) vs {label_a} ({Path(dir_a).name})"
    blocks: list[Block] = [Heading("Summary")]
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
                f"Speed-up is the ratio of mean {unit}, {label_b} over {label_a}, over the paired runs of each batch "
                f"size (a pair: same configuration and repeat, hence seed); RMSE difference is the mean over pairs of "
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
    return Comparison(label_a, label_b, table, crossovers, unpaired, target, basis, why)
