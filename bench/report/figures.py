"""The report's figures, one message each. Every function takes `Results` and returns a Figure.

Figures are built with `matplotlib.figure.Figure`, not pyplot, so nothing is registered with a
GUI or kept alive between calls. When the sweep varies more than batch size and stateful mode,
each figure gets one panel per combination of the other axes rather than over-plotting them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import textwrap

import matplotlib

# A notebook that chose a backend keeps it; anything else (CLI, tests, CI) gets Agg, never a GUI.
if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from bench.report.analysis import Analysis, as_analysis  # noqa: E402
from bench.report.load import Results  # noqa: E402
from bench.report.stats import THROUGHPUT  # noqa: E402
from bench.search import SPACES  # noqa: E402
from bench.report.tuning import (  # noqa: E402
    NO_VALIDATION,
    chosen_runs,
    tuning_facets,
)
from bench.vocabulary import ATTEMPTED, MODE_ORDER, scope_label, target_label  # noqa: E402

#: Most individual runs drawn as points per panel: beyond this they blur into a smear and the
#: vector output balloons; the boxes still summarise every run.
MAX_POINTS_PER_PANEL = 300
#: Label every configuration in the trade-off plot only up to this many points per panel.
MAX_POINT_LABELS = 30
PANEL_W, PANEL_H, MIN_WIDTH = 5.6, 3.9, 8.0
RMSE_LABEL = "test RMSE (series units, lower is better)"
SPS_LABEL = f"training throughput ({THROUGHPUT})"

_CB = sns.color_palette("colorblind")
MODE_COLORS: dict[str, tuple[float, float, float]] = dict(zip(MODE_ORDER, _CB))


class NothingToPlot(ValueError):
    """The data hold nothing this figure could show; the message says what is missing."""


def _modes(frame: pd.DataFrame) -> list[str]:
    present = set(frame["mode"])
    return [m for m in MODE_ORDER if m in present] + sorted(present - set(MODE_ORDER))


def _panel_order(frame: pd.DataFrame, facets: tuple[str, ...], key: str) -> list[str]:
    firsts = frame.drop_duplicates(key)
    cols = [c for c in facets if c in firsts]
    if key != "panel":  # panels split by mode too: stateful before stateless, as in the legend
        firsts = firsts.assign(_rank=firsts["mode"].map({m: i for i, m in enumerate(MODE_ORDER)}))
        cols.append("_rank")
    return list(firsts.sort_values(cols, kind="stable")[key]) if cols else list(firsts[key])


def _grid(
    frame: pd.DataFrame, results: Results, key: str = "panel", ncols: int | None = None
) -> tuple[Figure, list[tuple[Axes, str, pd.DataFrame]]]:
    """A figure with one axes per value of `key`, laid out in rows of at most three panels
    (or as a row x column grid when exactly two axes vary)."""
    order = _panel_order(frame, results.facets, key)
    n = len(order)
    if ncols is None:
        if len(results.facets) == 2 and key == "panel":
            ncols = min(int(frame[results.facets[1]].nunique()), 4)
        else:
            ncols = min(n, 3)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    # At least MIN_WIDTH wide so a one-panel figure still has room for its title and legend.
    width, height = max(PANEL_W * ncols, MIN_WIDTH), PANEL_H * nrows + 1.2
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    fixed_layout(fig, nrows, ncols)
    for ax in axes[n:]:
        ax.set_visible(False)
    groups = dict(tuple(frame.groupby(key, sort=False)))
    return fig, [(ax, label, groups[label]) for ax, label in zip(axes, order)]


def _cap(frame: pd.DataFrame, limit: int = MAX_POINTS_PER_PANEL) -> pd.DataFrame:
    # A fixed seed keeps the drawn subset, and so the figure, identical between reports.
    return frame if len(frame) <= limit else frame.sample(limit, random_state=0)


#: Inches per character of a 10-point panel title (a generous average, so wrapped lines fit their panel).
TITLE_CHAR_IN = 0.085


def _title(ax: Axes, label: str) -> None:
    """A panel's title, wrapped to the panel's width in at most two lines (the rest cut with an ellipsis), so
    long labels neither overlap the next panel's nor leave the figure."""
    if not label:
        return
    width = ax.get_position().width * ax.figure.get_figwidth()
    chars = max(12, int(width / TITLE_CHAR_IN))
    lines = textwrap.wrap(label, chars, break_long_words=True) or [label]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: chars - 1] + "…"]
    # y given: matplotlib then skips placing the title above the tick labels, which measures every axis
    # at each save (~15% of drawing the report's figures); no figure has labels above its axes
    ax.set_title("\n".join(lines), fontsize=10, y=1.0)


#: Margins of a figure's grid of panels, in inches: fixed, so saving a figure lays it out once, without the
#: extra pass (a whole draw) constrained layout costs in every save.
MARGIN_IN = {"left": 1.0, "right": 0.3, "top": 0.95, "bottom": 1.05, "between_x": 1.1, "between_y": 0.95}


def fixed_layout(fig: Figure, nrows: int, ncols: int) -> None:
    """Place `fig`'s grid of panels within fixed margins (MARGIN_IN): room for the suptitle above, the axis
    labels between and the legend below."""
    width, height = fig.get_size_inches()
    m = MARGIN_IN
    panel_w = (width - m["left"] - m["right"] - m["between_x"] * (ncols - 1)) / ncols
    panel_h = (height - m["top"] - m["bottom"] - m["between_y"] * (nrows - 1)) / nrows
    fig.subplots_adjust(
        left=m["left"] / width,
        right=1 - m["right"] / width,
        top=1 - m["top"] / height,
        bottom=m["bottom"] / height,
        wspace=m["between_x"] / panel_w,
        hspace=m["between_y"] / panel_h,
    )


def _legend(fig: Figure, handles: list, labels: list[str], title: str | None = None) -> None:
    if handles:
        # Below the panels: above them it would collide with the figure title.
        fig.legend(
            handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.005), ncols=min(len(handles), 6),
            frameon=False, title=title, fontsize=9,
        )  # fmt: skip


def _ok_with(results: Results, column: str, what: str) -> pd.DataFrame:
    frame = results.ok[results.ok[column].notna()]
    if frame.empty:
        raise NothingToPlot(f"no successful run recorded {what}")
    return frame


def _mode_handles(modes: list[str]) -> tuple[list, list[str]]:
    handles = [Line2D([], [], color=MODE_COLORS.get(m, "0.4"), marker="s", ls="", markersize=9) for m in modes]
    return handles, list(modes)


def log2_batch_ticks(ax: Axes, values: np.ndarray) -> None:
    """Tick a log-scaled batch-size axis at the batch sizes measured, labelled as plain integers."""
    ticks = np.unique(values)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{int(t)}" for t in ticks])


#: Tick steps tried per decade on a log axis, coarse first, until at least 3 ticks fall on the data.
_LOG_STEPS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))


def readable_log_ticks(ax: Axes, which: str = "y", unit: str = "") -> None:
    """At least three labelled ticks on a log axis, none overlapping: the coarsest of 1, 1-2-5 and 1-9 steps
    per decade that gives three over the data drawn, else evenly spaced round numbers; minor ticks unlabelled.
    Labels are short ("90k", "1.2M", "0.5x" with `unit` "x"). Call it after drawing."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = sorted(ax.dataLim.intervaly if which == "y" else ax.dataLim.intervalx)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0):
        return
    if hi <= lo * 1.001:
        lo, hi = lo / 1.25, hi * 1.25
    ticks: list[float] = []
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for steps in _LOG_STEPS:
        ticks = [s * 10.0**k for k in decades for s in steps if lo <= s * 10.0**k <= hi]
        if len(ticks) >= 3:
            break
    if len(ticks) < 3:  # a narrow range: round numbers spread over it
        ticks = [t for t in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi]
    if len(ticks) < 3:
        ticks = [float(f"{v:.2g}") for v in (lo, math.sqrt(lo * hi), hi)]
    if len(ticks) > 8:  # keep every other one
        ticks = ticks[:: math.ceil(len(ticks) / 8)]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{_short(v)}{unit}"))
    axis.set_minor_formatter(NullFormatter())


def _short(v: float) -> str:
    """A tick value in a few characters: 90k, 1.45M, 0.005."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def rmse_by_batch_size(data: Analysis | Results) -> Figure:
    """Test RMSE per batch size: boxes over repeats, every run as a point, stateful and stateless
    side by side, and the persistence forecast's RMSE as the baseline to beat."""
    a = as_analysis(data)
    results = a.results
    ok = _ok_with(results, "test_rmse", "a test RMSE")
    modes = _modes(ok)
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(ok, results)
        for ax, label, sub in panels:
            order = sorted(sub["batch_size"].unique())
            hue_order = [m for m in modes if m in set(sub["mode"])]
            palette = {m: MODE_COLORS.get(m, (0.5, 0.5, 0.5)) for m in hue_order}
            sns.boxplot(
                data=sub,
                x="batch_size",
                y="test_rmse",
                hue="mode",
                order=order,
                hue_order=hue_order,
                palette=palette,
                showfliers=False,
                width=0.75,
                boxprops={"alpha": 0.55},
                legend=False,
                ax=ax,
            )
            state = np.random.get_state()
            np.random.seed(0)  # seaborn jitters the dots with NumPy's global generator: the same dots every report
            sns.stripplot(
                data=_cap(sub),
                x="batch_size",
                y="test_rmse",
                hue="mode",
                order=order,
                hue_order=hue_order,
                palette=palette,
                dodge=True,
                jitter=0.18,
                size=3.5,
                edgecolor="0.2",
                linewidth=0.5,
                legend=False,
                ax=ax,
            )
            np.random.set_state(state)
            for v in np.unique(sub["persistence_rmse"].dropna().round(6))[:3]:
                ax.axhline(v, color="0.15", ls="--", lw=1.3, zorder=0)
            ax.set_xlabel("batch size")
            ax.set_ylabel(RMSE_LABEL)
            _title(ax, label)
        handles, labels = _mode_handles(modes)
        if ok["persistence_rmse"].notna().any():
            handles.append(Line2D([], [], color="0.15", ls="--", lw=1.3))
            labels.append("persistence forecast")
        _legend(fig, handles, labels)
        fig.suptitle("Test RMSE by batch size (box: repeats; dots: individual runs)", fontsize=12)
    return fig


def _batch_colors(frame: pd.DataFrame) -> dict[float, tuple[float, float, float]]:
    """A viridis colour per batch size of `frame`, smallest first (the figures with a line per batch size)."""
    sizes = sorted(frame["batch_size"].unique())
    return dict(zip(sizes, sns.color_palette("viridis", len(sizes))))


def _batch_handles(colors: dict[float, tuple[float, float, float]]) -> tuple[list, list[str]]:
    return [Line2D([], [], color=c, marker="o", ms=4) for c in colors.values()], [f"batch {int(b)}" for b in colors]


def rmse_by_lead(data: Analysis | Results) -> Figure:
    """Multi-step forecasts: mean test RMSE against lead time, one line per batch size and mode, with the
    persistence forecast's RMSE at each lead as the baseline."""
    a = as_analysis(data)
    table = a.leads
    if table.empty:
        raise NothingToPlot("no successful run forecast more than one step (horizon > 1)")
    colors = _batch_colors(table)
    styles = dict(zip(MODE_ORDER, ("-", "--", ":")))
    naive_by_panel = dict(tuple(a.lead_persistence.groupby("panel", sort=False)))
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(table, a.results)
        for ax, label, sub in panels:
            for (mode, bs), g in sub.groupby(["mode", "batch_size"], sort=True):
                g = g.sort_values("lead")
                ax.plot(g["lead"], g["rmse_mean"], color=colors[bs], ls=styles.get(mode, "-"), marker="o", ms=3.5)
                ax.fill_between(g["lead"], g["rmse_ci_low"], g["rmse_ci_high"], color=colors[bs], alpha=0.12, lw=0)
            naive = naive_by_panel[label].sort_values("lead")
            ax.plot(naive["lead"], naive["persistence_rmse"], color="0.15", ls="--", lw=1.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("lead time (steps ahead)")
            ax.set_ylabel(RMSE_LABEL)
            _title(ax, label)
        handles, labels = _batch_handles(colors)
        modes = [m for m in MODE_ORDER if m in set(table["mode"])]
        if len(modes) > 1:
            handles += [Line2D([], [], color="0.3", ls=styles.get(m, "-")) for m in modes]
            labels += modes
        handles.append(Line2D([], [], color="0.15", ls="--", lw=1.3))
        labels.append("persistence forecast")
        _legend(fig, handles, labels)
        fig.suptitle("Test RMSE by lead time (mean over repeats; band: 95% bootstrap CI)", fontsize=12)
    return fig


def throughput_by_batch_size(data: Analysis | Results) -> Figure:
    """Training samples per second against batch size on log-log axes: the speed table's median and its
    interval (`stats.speed_interval`) as line and band, each run's median round as a dot (the same statistic).
    Runs of several trials trained together were timed as one program, so they share one panel."""
    a = as_analysis(data)
    lines = a.throughput
    if lines.points.empty:
        raise NothingToPlot(lines.reason)
    ok, together = lines.points, lines.together
    results = dataclasses.replace(a.results, facets=lines.facets)
    modes = _modes(ok)
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(ok, results)
        for ax, label, sub in panels:
            for mode, g in sub.groupby("mode", sort=False):
                color = MODE_COLORS.get(mode, "0.4")
                line = lines.lines[(lines.lines["panel"] == g["panel"].iloc[0]) & (lines.lines["mode"] == mode)]
                line = line.sort_values("batch_size")
                x = line["batch_size"].to_numpy(dtype=np.float64)
                ax.fill_between(x, line["sps_low"], line["sps_high"], color=color, alpha=0.2, lw=0)
                ax.plot(x, line["sps_median"], color=color, marker="o", lw=2)
                pts = _cap(g)
                ax.scatter(pts["batch_size"], pts["samples_per_sec"], color=color, s=9, alpha=0.45, lw=0)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            log2_batch_ticks(ax, sub["batch_size"].to_numpy())
            readable_log_ticks(ax)
            ax.set_xlabel("batch size (log scale)")
            ax.set_ylabel(SPS_LABEL + ", log scale")
            _title(ax, label)
        handles, labels = _mode_handles(modes)
        _legend(fig, handles, labels)
        shared = f"\n{', '.join(together)}: trained together, timed as one program" if together else ""
        fig.suptitle(f"Training throughput (dots: runs; line: their median; band: interval){shared}", fontsize=12)
    return fig


def tradeoff(data: Analysis | Results) -> Figure:
    """Mean test RMSE against median throughput, one point per configuration labelled with its batch
    size; Pareto-optimal configurations (nothing both faster and more accurate) ringed and joined."""
    a = as_analysis(data)
    results, frame = a.results, a.tradeoff
    if frame.empty:
        raise NothingToPlot("no successful run recorded both a test RMSE and a throughput")
    modes = _modes(frame)
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(frame, results)
        for ax, label, sub in panels:
            front = sub["pareto"].to_numpy(dtype=bool)
            for mode, g in sub.groupby("mode", sort=False):
                ax.scatter(
                    g["sps"], g["rmse"], color=MODE_COLORS.get(mode, "0.4"), s=42, zorder=3, edgecolor="0.2", lw=0.5
                )
            opt = sub[front].sort_values("sps")
            ax.scatter(opt["sps"], opt["rmse"], s=170, facecolor="none", edgecolor="black", lw=1.6, zorder=4)
            ax.plot(opt["sps"], opt["rmse"], color="black", lw=1, ls=":", zorder=2)
            to_label = sub if len(sub) <= MAX_POINT_LABELS else sub[front]
            for _, r in to_label.iterrows():
                ax.annotate(
                    f"{int(r['batch_size'])}",
                    (r["sps"], r["rmse"]),
                    xytext=(6, 5),
                    textcoords="offset points",
                    fontsize=8.5,
                    zorder=5,
                )
            # a log axis would drop a configuration timed at 0 samples/s without a word: linear then
            sps = sub["sps"].dropna()
            log_x = bool(len(sps) and (sps > 0).all())
            if log_x:
                ax.set_xscale("log")
                readable_log_ticks(ax, "x")
            ax.set_xlabel("median " + SPS_LABEL + (", log scale" if log_x else ""))
            ax.set_ylabel("mean " + RMSE_LABEL)
            ax.annotate(
                "better",
                xy=(0.97, 0.05),
                xytext=(0.80, 0.20),
                xycoords="axes fraction",
                textcoords="axes fraction",
                fontsize=9,
                color="0.3",
                arrowprops={"arrowstyle": "->", "color": "0.3"},
            )
            _title(ax, label)
        handles, labels = _mode_handles(modes)
        handles.append(Line2D([], [], marker="o", ls=":", color="black", markerfacecolor="none", markersize=11))
        labels.append("Pareto-optimal")
        _legend(fig, handles, labels)
        fig.suptitle("Accuracy vs speed per configuration (numbers: batch size)", fontsize=12)
    return fig


def learning_curves(data: Analysis | Results) -> Figure:
    """Training loss by epoch, one line per batch size (mean over repeats, band: min-max),
    one panel per stateful mode (and per value of the other varying axes). Successful runs only."""
    a = as_analysis(data)
    results, agg = a.results, a.learning_curves
    if agg.empty:
        raise NothingToPlot("no epoch losses recorded for successful runs")
    sizes = sorted(agg["batch_size"].unique())
    colors = dict(zip(sizes, sns.color_palette("viridis", len(sizes))))
    positive = bool((agg["min"] > 0).all())
    ncols = min(3, agg["curve_panel"].nunique())
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(agg, results, key="curve_panel", ncols=ncols)
        for ax, label, sub in panels:
            for bs, g in sub.groupby("batch_size"):
                g = g.sort_values("epoch")
                ax.fill_between(g["epoch"], g["min"], g["max"], color=colors[bs], alpha=0.18, lw=0)
                ax.plot(g["epoch"], g["mean"], color=colors[bs], lw=1.8)
            if positive:
                ax.set_yscale("log")
                readable_log_ticks(ax)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss (MSE, scaled units)" + (", log scale" if positive else ""))
            _title(ax, label)
        handles = [Line2D([], [], color=colors[b], lw=2.5) for b in sizes]
        _legend(fig, handles, [str(b) for b in sizes], title="batch size")
        fig.suptitle("Learning curves: training loss by epoch (line: mean; band: min-max over repeats)", fontsize=12)
    return fig


def time_to_target(data: Analysis | Results, measure: str = "seconds") -> Figure:
    """Epochs or seconds (`measure`) each run needed to reach the scenario's target, by batch size.
    Runs that never reached it are drawn as crosses on a "not reached" line at the top; the bar
    is the olympic mean (fastest and slowest dropped). Ok and diverged runs both count."""
    a = as_analysis(data)
    results = a.results
    if measure not in ("epochs", "seconds"):
        raise ValueError(f"measure must be 'epochs' or 'seconds', not {measure!r}")
    column = f"{measure}_to_target"
    runs = results.runs[results.runs["status"].isin(ATTEMPTED) & results.runs["target_metric"].notna()]
    if runs.empty:
        raise NothingToPlot("no scenario set a target (target_metric), or no run with one finished")
    modes = _modes(runs)
    first = runs.iloc[0]
    target = (
        target_label(first["target_metric"], first["target_value"]) if runs["target_value"].nunique() == 1 else "target"
    )
    rng = np.random.default_rng(0)
    olympic = {
        (r.panel, r.mode, r.batch_size): getattr(r, f"{measure}_olympic") for r in a.target.itertuples(index=False)
    }
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(runs, results)
        for ax, label, sub in panels:
            order = sorted(sub["batch_size"].unique())
            present = [m for m in modes if m in set(sub["mode"])]
            width = 0.8 / len(present)
            reached = sub[column].dropna()
            # the "not reached" row's height; 1 where nothing reached the target later than 0 (ylim (0, 0) is singular)
            top = float(reached.max()) * 1.15 if len(reached) and reached.max() > 0 else 1.0
            missed_any = False
            for j, mode in enumerate(present):
                color = MODE_COLORS.get(mode, "0.4")
                for i, bs in enumerate(order):
                    values = sub.loc[(sub["mode"] == mode) & (sub["batch_size"] == bs), column].to_numpy(
                        dtype=np.float64
                    )
                    if not len(values):
                        continue
                    x = i - 0.4 + width * (j + 0.5)
                    jitter = rng.uniform(-width * 0.25, width * 0.25, len(values))
                    hit = ~np.isnan(values)
                    ax.scatter(x + jitter[hit], values[hit], color=color, s=22, edgecolor="0.2", lw=0.5, zorder=3)
                    if (~hit).any():
                        missed_any = True
                        ax.scatter(
                            x + jitter[~hit],
                            np.full((~hit).sum(), top),
                            color=color,
                            marker="X",
                            s=55,
                            edgecolor="0.1",
                            lw=0.6,
                            zorder=3,
                        )
                    score = olympic.get((sub["panel"].iloc[0], mode, bs), np.nan)
                    if np.isfinite(score):
                        ax.hlines(score, x - width * 0.4, x + width * 0.4, color="0.1", lw=2.2, zorder=4)
            ax.set_ylim(0, top * 1.1)
            if missed_any:
                # The "not reached" row gets its own tick label, where no marker can cover it.
                ax.axhline(top, color="0.5", lw=0.8, ls=":")
                base = [t for t in ax.get_yticks() if 0 <= t <= top / 1.15]
                ax.set_yticks([*base, top], [f"{t:g}" for t in base] + ["not reached"])
            ax.grid(axis="x", visible=False)
            ax.set_xticks(range(len(order)), [str(b) for b in order])
            ax.set_xlim(-0.6, len(order) - 0.4)
            ax.set_xlabel("batch size")
            ax.set_ylabel("epochs to target" if measure == "epochs" else "seconds to target (s)")
            _title(ax, label)
        handles, labels = _mode_handles(modes)
        handles += [Line2D([], [], color="0.1", lw=2.2), Line2D([], [], marker="X", ls="", color="0.4", markersize=8)]
        labels += ["olympic mean", "did not reach target"]
        _legend(fig, handles, labels)
        fig.suptitle(f"{measure.capitalize()} to reach {target}, by batch size (lower is better)", fontsize=12)
    return fig


def _cells(frame: pd.DataFrame, results: Results) -> tuple[Figure, list[tuple[Axes, str, pd.DataFrame]]]:
    """One axes per tuning panel (the facets without the learning rate) and mode, for a frame with
    `tuning_panel` and `mode` columns."""
    frame = frame.assign(cell=[scope_label(p, m) for p, m in zip(frame["tuning_panel"], frame["mode"])])
    layout = frame[["cell", "mode", *tuning_facets(results.facets)]]
    fig, panels = _grid(layout, results, key="cell", ncols=min(3, frame["cell"].nunique()))
    groups = dict(tuple(frame.groupby("cell", sort=False)))
    return fig, [(ax, label, groups[label]) for ax, label, _ in panels]


def _rate(value: float) -> str:
    return f"{value:.3g}"


def tuned_rmse_by_batch_size(data: Analysis | Results) -> Figure:
    """Test RMSE per batch size at the base learning rate chosen on validation (lowest median validation
    RMSE) for that batch size: box over the chosen rate's runs, mean with its bootstrap CI, the chosen rate
    written above each box. One panel per tuning panel and mode; never chosen on the test set."""
    a = as_analysis(data)
    results = a.results
    if not a.validation:
        raise NothingToPlot(NO_VALIDATION)
    table = a.tuned
    table = table[table["base_learning_rate"].notna() & (table["n"] > 0)] if not table.empty else table
    if table.empty:
        raise NothingToPlot("no batch size has a learning rate chosen on validation with a successful test RMSE")
    ok = results.ok[results.ok["test_rmse"].notna()]
    runs = chosen_runs(ok, results.facets, table)
    with sns.axes_style("whitegrid"):
        fig, cells = _cells(table, results)
        for ax, label, sub in cells:
            sub = sub.sort_values("batch_size")
            mode = sub["mode"].iloc[0]
            color = MODE_COLORS.get(mode, "0.4")
            in_cell = runs[(runs["tuning_panel"] == sub["tuning_panel"].iloc[0]) & (runs["mode"] == mode)]
            data = [
                in_cell.loc[in_cell["batch_size"] == bs, "test_rmse"].to_numpy(dtype=np.float64)
                for bs in sub["batch_size"]
            ]
            pos = np.arange(len(data), dtype=np.float64)
            ax.boxplot(
                data,
                positions=pos,
                widths=0.5,
                patch_artist=True,
                showfliers=False,
                boxprops={"facecolor": (*color, 0.45), "edgecolor": "0.25"},
                medianprops={"color": "0.1"},
            )
            rng = np.random.default_rng(0)
            for i, x in enumerate(data):
                shown = x if len(x) <= MAX_POINTS_PER_PANEL else rng.choice(x, MAX_POINTS_PER_PANEL, replace=False)
                ax.scatter(
                    i + rng.uniform(-0.12, 0.12, len(shown)),
                    shown,
                    color=color,
                    s=12,
                    edgecolor="0.2",
                    lw=0.4,
                    zorder=3,
                )
            for i, row in enumerate(sub.itertuples(index=False)):
                if np.isfinite(row.test_rmse_ci_low):
                    m, lo, hi = row.test_rmse_mean, row.test_rmse_ci_low, row.test_rmse_ci_high
                    ax.errorbar(i + 0.33, m, yerr=[[m - lo], [hi - m]], fmt="D", color="0.1", ms=4, capsize=3, zorder=4)
            for i, (x, rate) in enumerate(zip(data, sub["base_learning_rate"])):
                ax.annotate(
                    "lr " + _rate(rate),
                    (i, float(np.max(x))),
                    xytext=(0, 5),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                    zorder=5,
                )
            for v in np.unique(in_cell["persistence_rmse"].dropna().round(6))[:3]:
                ax.axhline(v, color="0.15", ls="--", lw=1.3, zorder=0)
            ax.margins(y=0.12)
            ax.set_xticks(pos, [str(int(b)) for b in sub["batch_size"]])
            ax.set_xlim(-0.6, len(data) - 0.4)
            ax.set_xlabel("batch size")
            ax.set_ylabel(RMSE_LABEL)
            _title(ax, label)
        handles, labels = _mode_handles(_modes(table))
        handles.append(Line2D([], [], marker="D", color="0.1", ls="", markersize=5))
        labels.append("mean, 95% bootstrap CI")
        if ok["persistence_rmse"].notna().any():
            handles.append(Line2D([], [], color="0.15", ls="--", lw=1.3))
            labels.append("persistence forecast")
        _legend(fig, handles, labels)
        fig.suptitle(
            "Test RMSE at the learning rate chosen on validation for each batch size (label: chosen base rate)",
            fontsize=12,
        )
    return fig


def optimal_rate(data: Analysis | Results) -> Figure:
    """The learning rate chosen on validation against batch size, log-log, per tuning panel and mode, with the
    form that fits it best by AIC (`bench.report.optimum`) drawn through it."""
    a = as_analysis(data)
    rates = a.rates[pd.to_numeric(a.rates.get("learning_rate"), errors="coerce") > 0] if len(a.rates) else a.rates
    if rates.empty or a.optimum.empty:
        raise NothingToPlot("no learning rate was chosen on validation at three or more batch sizes")
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(rates, a.results, key="tuning_panel")
        for ax, panel, sub in panels:
            titles = []
            modes = list(dict.fromkeys(sub["mode"]))
            for i, (mode, g) in enumerate(sub.groupby("mode", sort=False)):
                color = MODE_COLORS.get(mode, "0.4")
                dodge = 2 ** (0.08 * (i - (len(modes) - 1) / 2))  # modes side by side where their rates coincide
                ax.scatter(g["batch_size"] * dodge, g["learning_rate"], color=color, s=36, edgecolor="0.2", zorder=3)
                fit = a.rate_fits.get((panel, mode))
                if fit is not None:
                    b = np.geomspace(g["batch_size"].min(), g["batch_size"].max(), 100)
                    ax.plot(b, fit.predict(b), color=color, lw=1.6)
                    titles.append(f"{mode}: {fit.form}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            log2_batch_ticks(ax, sub["batch_size"].to_numpy())
            readable_log_ticks(ax)
            ax.set_xlabel("batch size")
            ax.set_ylabel("learning rate chosen on validation")
            _title(ax, " | ".join(x for x in (str(panel), "; ".join(titles)) if x))
        handles, labels = _mode_handles(_modes(rates))
        _legend(fig, handles, labels)
        fig.suptitle("Optimal learning rate by batch size (line: the best form by AIC)", fontsize=12)
    return fig


def tuning_budget(data: Analysis | Results) -> Figure:
    """Best-of-k validation RMSE against the number of trials k, per batch size (`bench.report.budget`): the
    bootstrap median and 5-95% band, one panel per tuning panel and mode."""
    a = as_analysis(data)
    if a.budget.empty:
        raise NothingToPlot("no batch size tried two or more trials with a validation split")
    return _budget(a, a.budget, "best validation RMSE of k trials", "Tuning budget: best of k trials", log=False)


def steps_budget(data: Analysis | Results) -> Figure:
    """Best-of-k fewest median steps to the target against the number of trials k, per batch size."""
    a = as_analysis(data)
    if a.steps_budget.empty:
        raise NothingToPlot("no batch size tried two or more trials with a target")
    return _budget(a, a.steps_budget, "fewest steps to target of k trials", "Tuning budget on steps to target",
                   log=True)  # fmt: skip


def _budget(a: Analysis, table: pd.DataFrame, ylabel: str, title: str, log: bool) -> Figure:
    colors = _batch_colors(table)
    with sns.axes_style("whitegrid"):
        fig, cells = _cells(table, a.results)
        for ax, label, sub in cells:
            for bs, g in sub.groupby("batch_size", sort=True):
                g = g.sort_values("k")
                finite = np.isfinite(g["best_median"])
                ax.plot(g["k"][finite], g["best_median"][finite], color=colors[bs], marker="o", ms=3)
                band = np.isfinite(g["best_low"]) & np.isfinite(g["best_high"])
                ax.fill_between(g["k"][band], g["best_low"][band], g["best_high"][band], color=colors[bs], alpha=0.12,
                                lw=0)  # fmt: skip
            shown = sub[["best_median", "best_low", "best_high"]].to_numpy(dtype=np.float64)
            if log and (shown[np.isfinite(shown)] > 0).all():  # a log axis cannot show 0 steps
                ax.set_yscale("log")
                readable_log_ticks(ax)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("trials")
            ax.set_ylabel(ylabel)
            _title(ax, label)
        _legend(fig, *_batch_handles(colors))
        fig.suptitle(f"{title} (bootstrap median; band: 5-95%; a missing point: not reached)", fontsize=12)
    return fig


def search_optimum(data: Analysis | Results) -> Figure:
    """The searched values of the trial chosen on validation against batch size: one panel per searched
    dimension, a line per tuning panel and mode (categorical dimensions on a categorical axis)."""
    a = as_analysis(data)
    table = a.chosen
    if table.empty:
        raise NothingToPlot("no search trial was chosen on validation")
    dims = [c for c in table.columns if c not in ("tuning_panel", "mode", "batch_size", "trial", "val_rmse_median")
            and c not in tuning_facets(a.results.facets)]  # fmt: skip
    layout = pd.DataFrame({"dimension": dims, "mode": table["mode"].iloc[0]})  # mode: `_grid`'s ordering key
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(layout, a.results, key="dimension", ncols=min(3, len(dims)))
        for ax, dim, _ in panels:
            numeric = pd.to_numeric(table[dim], errors="coerce").notna().all() and table[dim].dtype != bool
            levels = sorted({str(v) for v in table[dim]})
            for (panel, mode), g in table.groupby(["tuning_panel", "mode"], sort=False):
                g = g.sort_values("batch_size")
                y = pd.to_numeric(g[dim]) if numeric else [levels.index(str(v)) for v in g[dim]]
                ax.plot(g["batch_size"], y, color=MODE_COLORS.get(mode, "0.4"), marker="o", ms=5,
                        label=scope_label(panel, mode))  # fmt: skip
            if numeric and (pd.to_numeric(table[dim]) > 0).all() and dim in SPACES and SPACES[dim].log:
                ax.set_yscale("log")
                readable_log_ticks(ax)
            if not numeric:
                ax.set_yticks(range(len(levels)), levels)
            ax.set_xscale("log", base=2)
            log2_batch_ticks(ax, table["batch_size"].to_numpy())
            ax.set_xlabel("batch size")
            ax.set_ylabel(dim)
            _title(ax, dim)
        handles, labels = _mode_handles(_modes(table))
        _legend(fig, handles, labels)
        fig.suptitle("The best trial's searched values by batch size (chosen on validation)", fontsize=12)
    return fig


def lr_batch_heatmap(data: Analysis | Results) -> Figure:
    """Median validation RMSE over batch size x base learning rate, cells annotated; the rate chosen per
    batch size outlined. Without a validation split the test RMSE is shown instead, said so in the title
    and colour bar, and nothing is outlined (a choice on the test set would be optimistic)."""
    a = as_analysis(data)
    results = a.results
    validation = a.validation
    scores = a.rate_grid
    if scores.empty:
        raise NothingToPlot(f"no successful run recorded a {'validation' if validation else 'test'} RMSE")
    if scores.groupby(["tuning_panel", "mode"])["base_learning_rate"].nunique().max() < 2:
        raise NothingToPlot("only one learning rate was tried, so there is no learning rate x batch size grid")
    what = "median validation RMSE" if validation else "median TEST RMSE (no validation split)"
    with sns.axes_style("white"):
        fig, cells = _cells(scores, results)
        for ax, label, sub in cells:
            # one row per trial (a search's trials may share a rate), ordered by rate
            grid = sub.pivot_table(index=["base_learning_rate", "trial_key"], columns="batch_size", values="median",
                                   aggfunc="first")  # fmt: skip
            grid = grid.sort_index().sort_index(axis=1)
            trial_of = dict(zip(sub["trial_key"], sub["trial"]))
            values = grid.to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            if not len(finite):
                ax.set_axis_off()
                _title(ax, label + " (every run diverged)")
                continue
            lo, hi = float(finite.min()), float(finite.max())
            norm = LogNorm(lo, hi) if lo > 0 and hi / lo > 10 else Normalize(lo, hi if hi > lo else lo + 1e-12)
            cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="0.85")
            image = ax.imshow(
                np.ma.masked_invalid(values), cmap=cmap, norm=norm, origin="lower", aspect="auto", interpolation="none"
            )
            for (r, c), v in np.ndenumerate(values):
                if np.isnan(v):
                    continue
                if np.isinf(v):
                    ax.text(c, r, "diverged", ha="center", va="center", fontsize=7.5, color="0.2")
                    continue
                rgba = cmap(norm(v))
                dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
            if validation:
                cell = a.rates[
                    (a.rates["tuning_panel"] == sub["tuning_panel"].iloc[0]) & (a.rates["mode"] == sub["mode"].iloc[0])
                ]
                for rate, key, bs in zip(cell["base_learning_rate"], cell["trial_key"], cell["batch_size"]):
                    if np.isfinite(rate) and bs in grid.columns and (rate, key) in grid.index:
                        c, r = list(grid.columns).index(bs), list(grid.index).index((rate, key))
                        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.2))
            ax.set_xticks(range(values.shape[1]), [str(int(b)) for b in grid.columns])
            rows = [f"{r:g}" if not np.isfinite(trial_of[k]) else f"{r:.3g} (trial {int(trial_of[k])})"
                    for r, k in grid.index]  # fmt: skip
            ax.set_yticks(range(values.shape[0]), rows)
            ax.set_xlabel("batch size")
            ax.set_ylabel("base learning rate" if rows and "trial" not in rows[0] else "base learning rate (trial)")
            fig.colorbar(image, ax=ax, label=what)
            _title(ax, label)
        title = (
            "Median validation RMSE by batch size and base learning rate (outlined: the rate chosen per batch size)"
            if validation
            else "Median TEST RMSE by batch size and learning rate: no validation split, so no rate is chosen"
        )
        fig.suptitle(title, fontsize=12)
    return fig


def _to_target_scaling(a: Analysis, column: str) -> Figure:
    """Median `column` (steps_to_target or seconds_to_target) against batch size, log-log, at the rate
    with the fewest median per batch size; for steps also perfect scaling and the S(B) fit."""
    steps = column == "steps_to_target"
    results = a.results
    choices = a.steps_choices if steps else a.seconds_choices
    if choices.empty:
        raise NothingToPlot(f"no run with a target recorded {column}")
    attempts = results.runs[results.runs["status"].isin(ATTEMPTED) & results.runs["target_metric"].notna()]
    runs = chosen_runs(attempts, results.facets, choices)
    target = choices["target"].iloc[0] if choices["target"].nunique() == 1 else "the target"
    unit = "optimizer steps" if steps else "training seconds"
    with sns.axes_style("whitegrid"):
        fig, cells = _cells(choices, results)
        for ax, label, sub in cells:
            sub = sub.sort_values("batch_size")
            mode = sub["mode"].iloc[0]
            color = MODE_COLORS.get(mode, "0.4")
            hit = sub[sub["median"].notna()]
            log_y = bool((hit["median"] > 0).all())  # a median of 0 (met before training) has no place on a log axis
            in_cell = runs[(runs["tuning_panel"] == sub["tuning_panel"].iloc[0]) & (runs["mode"] == mode)]
            reached = in_cell[in_cell[column].notna() & ((in_cell[column] > 0) | (not log_y))]
            ax.scatter(reached["batch_size"], reached[column], color=color, s=10, alpha=0.45, lw=0)
            ax.plot(hit["batch_size"], hit["median"], color=color, marker="o", lw=2, label=f"median {unit}")
            for _, r in hit.iterrows():
                ax.annotate(
                    "lr " + _rate(r["base_learning_rate"]),
                    (r["batch_size"], r["median"]),
                    xytext=(5, 5),
                    textcoords="offset points",
                    fontsize=7.5,
                )
            sizes = sub["batch_size"].to_numpy(dtype=np.float64)
            if steps and len(hit):
                b0, s0 = float(hit["batch_size"].iloc[0]), float(hit["median"].iloc[0])
                xs = sizes[sizes >= b0]
                ax.plot(xs, s0 * b0 / xs, color="0.35", ls="--", lw=1.2, label="perfect scaling from the smallest")
                fit = a.fits.get((sub["tuning_panel"].iloc[0], mode))
                if fit is not None:
                    xx = np.geomspace(sizes.min(), sizes.max(), 200)
                    ax.plot(
                        xx,
                        fit.steps(xx),
                        color="0.1",
                        lw=1.4,
                        label=f"S_min(1 + B_crit/B): S_min {fit.s_min:,.0f}, {fit.describe()}",
                    )
            missed = sub.loc[sub["median"].isna(), "batch_size"]
            if len(missed):
                ax.text(
                    0.02,
                    0.03,
                    "not reached at any rate: " + ", ".join(str(int(b)) for b in missed),
                    transform=ax.transAxes,
                    fontsize=8,
                    color="0.25",
                )
            ax.set_xscale("log", base=2)
            if log_y:
                ax.set_yscale("log")
            log2_batch_ticks(ax, sizes)
            ax.set_xlim(sizes.min() / 1.4, sizes.max() * 1.4)  # room for the rate labels
            ax.set_xlabel("batch size (log scale)")
            ax.set_ylabel(f"median {unit} to target" + (", log scale" if log_y else ""))
            if log_y:
                readable_log_ticks(ax)
            ax.legend(fontsize=7.5, loc="best")
            _title(ax, label)
        measure = "Steps" if steps else "Time"
        fig.suptitle(
            f"{measure} to reach {target} by batch size, at the learning rate fastest for each (label: base rate)",
            fontsize=12,
        )
    return fig


def steps_to_target(data: Analysis | Results) -> Figure:
    """Median optimizer steps to the target against batch size (log-log) at the base learning rate that
    gets there in the fewest median steps, with perfect scaling from the smallest batch size and the fit
    S(B) = S_min (1 + B_crit / B) (McCandlish et al. 2018) with a bootstrap CI of B_crit."""
    return _to_target_scaling(as_analysis(data), "steps_to_target")


def time_to_target_by_batch_size(data: Analysis | Results) -> Figure:
    """Median training seconds to the target against batch size (log-log), at the base learning rate that
    gets there in the least median time for each batch size."""
    return _to_target_scaling(as_analysis(data), "seconds_to_target")


def noise_scale(data: Analysis | Results) -> Figure:
    """The gradient noise scale B_simple over training (x: optimizer steps), one line per batch size (median
    over runs per epoch), with the batch sizes tried as dotted horizontal lines: a batch size below the
    curve is in the regime where larger batches still cut steps. Runs at the rate chosen on validation when
    there is a validation split, otherwise every rate pooled."""
    a = as_analysis(data)
    results, curves = a.results, a.noise_curves
    if curves.frame.empty:
        raise NothingToPlot(curves.reason)
    agg, sizes, pooled = curves.frame, list(curves.sizes), curves.pooled
    colors = dict(zip(sizes, sns.color_palette("viridis", len(sizes))))
    with sns.axes_style("whitegrid"):
        fig, cells = _cells(agg, results)
        for ax, label, sub in cells:
            for bs, g in sub.groupby("batch_size"):
                g = g.sort_values("x")
                ax.plot(g["x"], g["b"], color=colors[bs], lw=1.8, marker="o" if len(g) < 3 else None, ms=3)
            ax.set_xscale("log")
            ax.set_yscale("log")
            readable_log_ticks(ax)
            readable_log_ticks(ax, "x")
            trans = blended_transform_factory(ax.transAxes, ax.transData)
            for bs in sizes:
                ax.axhline(bs, color=colors[bs], ls=":", lw=1.1, zorder=0)
                ax.text(1.0, bs, f" B={int(bs)}", transform=trans, fontsize=7, va="center", ha="left", color="0.25")
            ax.set_xlabel("optimizer steps (log scale)")
            ax.set_ylabel("B_simple (examples), log scale")
            _title(ax, label)
        handles = [Line2D([], [], color=colors[b], lw=2.5) for b in sizes]
        labels = [str(int(b)) for b in sizes]
        handles.append(Line2D([], [], color="0.4", ls=":", lw=1.1))
        labels.append("batch sizes tried")
        _legend(fig, handles, labels, title="batch size")
        which = "every learning rate pooled" if pooled else "runs at the rate chosen on validation"
        fig.suptitle(f"Gradient noise scale B_simple over training (median per batch size; {which})", fontsize=12)
    return fig
