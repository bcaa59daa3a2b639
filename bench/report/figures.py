"""The report's figures, one message each. Every function takes `Results` and returns a Figure.

Figures are built with `matplotlib.figure.Figure`, not pyplot, so nothing is registered with a
GUI or kept alive between calls. When the sweep varies more than batch size and stateful mode,
each figure gets one panel per combination of the other axes rather than over-plotting them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable

import matplotlib

# A notebook that chose a backend keeps it; anything else (CLI, tests, CI) gets Agg, never a GUI.
if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator  # noqa: E402

from bench.report.load import MODE_ORDER, Results  # noqa: E402
from bench.report.stats import olympic_mean  # noqa: E402

#: Most individual runs drawn as points per panel: beyond this they blur into a smear and the
#: vector output balloons; the boxes still summarise every run.
MAX_POINTS_PER_PANEL = 300
#: Label every configuration in the trade-off plot only up to this many points per panel.
MAX_POINT_LABELS = 30
PANEL_W, PANEL_H, MIN_WIDTH = 5.6, 3.9, 8.0
RMSE_LABEL = "test RMSE (series units, lower is better)"
SPS_LABEL = "training throughput (samples/s)"

_CB = sns.color_palette("colorblind")
MODE_COLORS: dict[str, tuple[float, float, float]] = {
    "stateful/streams": _CB[0],
    "stateful/sequential": _CB[1],
    "stateless": _CB[2],
}


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
    fig = Figure(figsize=(max(PANEL_W * ncols, MIN_WIDTH), PANEL_H * nrows + 1.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    groups = dict(tuple(frame.groupby(key, sort=False)))
    return fig, [(ax, label, groups[label]) for ax, label in zip(axes, order)]


def _cap(frame: pd.DataFrame, limit: int = MAX_POINTS_PER_PANEL) -> pd.DataFrame:
    # A fixed seed keeps the drawn subset, and so the figure, identical between reports.
    return frame if len(frame) <= limit else frame.sample(limit, random_state=0)


def _title(ax: Axes, label: str) -> None:
    if label:
        ax.set_title(label, fontsize=10)


def _legend(fig: Figure, handles: list, labels: list[str], title: str | None = None) -> None:
    if handles:
        # Below the panels: above them it would collide with the figure title.
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 6), frameon=False, title=title)


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


def rmse_by_batch_size(results: Results) -> Figure:
    """Test RMSE per batch size: boxes over repeats, every run as a point, stateful and stateless
    side by side, and the persistence forecast's RMSE as the baseline to beat."""
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


def throughput_by_batch_size(results: Results) -> Figure:
    """Training samples per second against batch size on log-log axes: median line, min-max band
    over repeats, individual runs as dots."""
    ok = _ok_with(results, "samples_per_sec", "a throughput")
    ok = ok[ok["samples_per_sec"] > 0]
    if ok.empty:
        raise NothingToPlot("no successful run recorded a positive throughput")
    modes = _modes(ok)
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(ok, results)
        for ax, label, sub in panels:
            for mode, g in sub.groupby("mode", sort=False):
                color = MODE_COLORS.get(mode, "0.4")
                agg = g.groupby("batch_size")["samples_per_sec"].agg(["median", "min", "max"]).sort_index()
                x = agg.index.to_numpy(dtype=np.float64)
                ax.fill_between(x, agg["min"], agg["max"], color=color, alpha=0.2, lw=0)
                ax.plot(x, agg["median"], color=color, marker="o", lw=2)
                pts = _cap(g)
                ax.scatter(pts["batch_size"], pts["samples_per_sec"], color=color, s=9, alpha=0.45, lw=0)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            log2_batch_ticks(ax, sub["batch_size"].to_numpy())
            ax.set_xlabel("batch size (log scale)")
            ax.set_ylabel(SPS_LABEL + ", log scale")
            _title(ax, label)
        handles, labels = _mode_handles(modes)
        _legend(fig, handles, labels)
        fig.suptitle("Training throughput by batch size (line: median; band: min-max over repeats)", fontsize=12)
    return fig


def pareto_mask(speed: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True where no other point is at least as fast and as accurate and strictly better in one."""
    speed = np.asarray(speed, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    better_eq = (speed[None, :] >= speed[:, None]) & (error[None, :] <= error[:, None])
    strictly = (speed[None, :] > speed[:, None]) | (error[None, :] < error[:, None])
    return ~(better_eq & strictly).any(axis=1)


def config_means(results: Results) -> pd.DataFrame:
    """Mean test RMSE and mean samples/s per configuration (ok runs with both)."""
    ok = results.ok[results.ok["test_rmse"].notna() & results.ok["samples_per_sec"].notna()]
    return (
        ok.groupby(["config", "panel", "mode", "batch_size"], sort=False)
        .agg(rmse=("test_rmse", "mean"), sps=("samples_per_sec", "mean"), n=("test_rmse", "size"))
        .reset_index()
    )


def tradeoff(results: Results) -> Figure:
    """Mean test RMSE against mean throughput, one point per configuration labelled with its batch
    size; Pareto-optimal configurations (nothing both faster and more accurate) ringed and joined."""
    means = config_means(results)
    if means.empty:
        raise NothingToPlot("no successful run recorded both a test RMSE and a throughput")
    frame = means.merge(results.ok.drop_duplicates("config")[["config", *results.facets]], on="config")
    modes = _modes(frame)
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(frame, results)
        for ax, label, sub in panels:
            front = pareto_mask(sub["sps"].to_numpy(), sub["rmse"].to_numpy())
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
            ax.set_xscale("log")
            ax.set_xlabel("mean " + SPS_LABEL + ", log scale")
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


def learning_curves(results: Results) -> Figure:
    """Training loss by epoch, one line per batch size (mean over repeats, band: min-max),
    one panel per stateful mode (and per value of the other varying axes). Successful runs only."""
    ok = results.ok[["source", "run_id", "panel", "mode", "batch_size", *results.facets]]
    ep = results.epochs[results.epochs["loss"].notna()].merge(ok, on=["source", "run_id"])
    if ep.empty:
        raise NothingToPlot("no epoch losses recorded for successful runs")
    ep["curve_panel"] = [f"{p}, {m}" if p else m for p, m in zip(ep["panel"], ep["mode"])]
    agg = (
        ep.groupby(["curve_panel", "mode", "batch_size", "epoch"], sort=False)["loss"]
        .agg(["mean", "min", "max"])
        .reset_index()
    )
    agg = agg.merge(ep.drop_duplicates("curve_panel")[["curve_panel", *results.facets]], on="curve_panel")
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
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss (MSE, scaled units)" + (", log scale" if positive else ""))
            _title(ax, label)
        handles = [Line2D([], [], color=colors[b], lw=2.5) for b in sizes]
        _legend(fig, handles, [str(b) for b in sizes], title="batch size")
        fig.suptitle("Learning curves: training loss by epoch (line: mean; band: min-max over repeats)", fontsize=12)
    return fig


def time_to_target(results: Results, measure: str = "seconds") -> Figure:
    """Epochs or seconds (`measure`) each run needed to reach the scenario's target, by batch size.
    Runs that never reached it are drawn as crosses on a "not reached" line at the top; the bar
    is the olympic mean (fastest and slowest dropped). Ok and diverged runs both count."""
    if measure not in ("epochs", "seconds"):
        raise ValueError(f"measure must be 'epochs' or 'seconds', not {measure!r}")
    column = f"{measure}_to_target"
    runs = results.runs[results.runs["status"].isin(("ok", "diverged")) & results.runs["target_metric"].notna()]
    if runs.empty:
        raise NothingToPlot("no scenario set a target (target_metric), or no run with one finished")
    modes = _modes(runs)
    first = runs.iloc[0]
    target = (
        f"{first['target_metric']} <= {first['target_value']:g}" if runs["target_value"].nunique() == 1 else "target"
    )
    rng = np.random.default_rng(0)
    with sns.axes_style("whitegrid"):
        fig, panels = _grid(runs, results)
        for ax, label, sub in panels:
            order = sorted(sub["batch_size"].unique())
            present = [m for m in modes if m in set(sub["mode"])]
            width = 0.8 / len(present)
            reached = sub[column].dropna()
            top = float(reached.max()) * 1.15 if len(reached) else 1.0
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
                    score, _ = olympic_mean(values)
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


#: The report's figures in page order: file stem, builder.
FIGURES: tuple[tuple[str, Callable[[Results], Figure]], ...] = (
    ("rmse_by_batch_size", rmse_by_batch_size),
    ("throughput_by_batch_size", throughput_by_batch_size),
    ("tradeoff", tradeoff),
    ("learning_curves", learning_curves),
    ("epochs_to_target", lambda r: time_to_target(r, "epochs")),
    ("seconds_to_target", lambda r: time_to_target(r, "seconds")),
)
