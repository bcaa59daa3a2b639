"""Pairing two sets of runs (CPU vs GPU, TensorFlow vs JAX, fit vs scan, one model vs another): the
analysis behind `lstm-bench compare`, with no drawing or printing (`bench.report.compare` renders it, the
CLI prints it). Paired speed-ups with their intervals and accuracy differences per batch size, the batch
size from which B is faster, and warnings about the conditions each side was timed under.

Runs pair on their configuration and repeat (so repeat k of A meets repeat k of B, which has the same
seed), except for the comparison axes (`Column.compared` in `bench.schema`: device, backend, engine,
model, dataset) that the two sides share no value of: those are what the comparison is about. An axis
both sides hold a value of (models swept in both folders, say) stays in the key and splits the table
into series. run_id cannot pair runs: device, backend and engine are in its hash.

Speed compares like with like. A `scan` run that trained its repeats together (`trained_together`
> 1) reports one repeat's samples over the time all of them took, so when the two sides trained
repeats differently the speed-up is taken on machine throughput (samples/s x runs trained
together), and the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.load import FACET_CANDIDATES, join_columns
from bench.report.answer import MARGIN
from bench.report.stats import (
    BUSY_OTHER_SHARE,
    Interval,
    busy_runs,
    paired_difference,
    speed_interval,
    speedup,
)
from bench.schema import schema
from bench.vocabulary import MODE_ORDER, OK

#: The comparison axes and their columns; a pair's key is PAIR_KEY plus every axis the two sides share a value of.
COMPARED_AXES: dict[str, tuple[str, ...]] = schema().compared_axes
PAIR_KEY: tuple[str, ...] = schema().pair_key

PER_RUN = "samples/s per run"
MACHINE = "machine throughput (samples/s x runs trained together)"


@dataclass(frozen=True)
class Crossover:
    """Where B starts to win within one series (all settings fixed but batch size)."""

    series: str  # e.g. "stateful/streams, look_back=3"
    batch_size: int | None  # smallest batch size from which B is faster at every larger one; None if none
    verdict: str


def differing_axes(a: pd.DataFrame, b: pd.DataFrame) -> tuple[str, ...]:
    """The comparison axes the two sides share no value of: what the comparison is about."""
    out = []
    for axis, cols in COMPARED_AXES.items():
        present = [c for c in cols if c in a and c in b]
        values_a, values_b = (set(join_columns(runs, present)) for runs in (a, b))
        if values_a and values_b and not values_a & values_b:
            out.append(axis)
    return tuple(out)


def pair_key(differing: tuple[str, ...]) -> tuple[str, ...]:
    """The columns two runs share to pair when the sides differ in the `differing` axes."""
    return (*PAIR_KEY, *(c for axis, cols in COMPARED_AXES.items() if axis not in differing for c in cols))


def _series_columns(paired: pd.DataFrame, key: tuple[str, ...]) -> list[str]:
    # The axes besides batch size that vary over the pairs: each value combination is a series.
    candidates = [c for c in FACET_CANDIDATES if c in key]
    return ["mode", *[c for c in candidates if paired[c].astype("string").fillna("none").nunique() > 1]]


def _series_label(row: pd.Series, cols: list[str]) -> str:
    return ", ".join(str(row["mode"]) if c == "mode" else f"{c}={row[c]}" for c in cols)


def _ambiguous(ok: pd.DataFrame, dup: pd.Series, side: str) -> pd.Series:
    """Why runs of one side that share a key cannot pair: the axes they differ in, and how to compare those."""
    reasons = pd.Series("", index=ok.index[dup], dtype=object)
    for _, group in ok[dup].groupby("_key"):
        axes = [a for a, cols in COMPARED_AXES.items() if any(group[c].nunique(dropna=False) > 1 for c in cols)]
        how = f", differing in {' and '.join(axes)} (compare those with --by {axes[0]})" if axes else ""
        reasons[group.index] = f"ambiguous: {len(group)} ok runs in {side} share this configuration and repeat{how}"
    return reasons


def pair_runs(
    a: pd.DataFrame, b: pd.DataFrame, key: tuple[str, ...] | None = None, label_a: str = "A", label_b: str = "B"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pair ok runs of A and B on `key` (default: `pair_key` of the axes they differ in); returns (pairs with
    _a/_b columns, unpaired runs with their side's label and the reason)."""
    key = list(key if key is not None else pair_key(differing_axes(a, b)))
    if label_a == label_b:
        label_a, label_b = f"{label_a} (A)", f"{label_b} (B)"
    unpaired: list[pd.DataFrame] = []
    sides = {}
    for side, runs in ((label_a, a), (label_b, b)):
        runs = runs.assign(_key=join_columns(runs, key) if len(runs) else "")
        bad = runs[runs["status"] != OK]
        unpaired.append(bad.assign(side=side, reason="status " + bad["status"].astype(str)))
        ok = runs[runs["status"] == OK]
        dup = ok["_key"].duplicated(keep=False)
        unpaired.append(ok[dup].assign(side=side, reason=_ambiguous(ok, dup, side)))
        sides[side] = ok[~dup]
    merged = sides[label_a].merge(sides[label_b], on="_key", suffixes=("_a", "_b"), how="outer", indicator=True)
    for side, flag in ((label_a, "left_only"), (label_b, "right_only")):
        lonely = sides[side][sides[side]["_key"].isin(merged.loc[merged["_merge"] == flag, "_key"])]
        other = label_b if side == label_a else label_a
        unpaired.append(lonely.assign(side=side, reason=f"no ok run in {other} with the same configuration and repeat"))
    both = merged[merged["_merge"] == "both"]
    # the shared configuration columns, unsuffixed, joined in one go: a column at a time would fragment the frame
    shared = pd.DataFrame({c: both[f"{c}_a"] for c in (*key, "mode")}, index=both.index)
    pairs = pd.concat([both, shared], axis=1)
    cols = ["side", "run_id", "mode", "batch_size", "repeat", *COMPARED_AXES, "status", "reason"]
    lost = (
        pd.concat([u[cols] for u in unpaired if not u.empty], ignore_index=True)
        if any(not u.empty for u in unpaired)
        else pd.DataFrame(columns=cols)
    )
    return pairs.drop(columns="_merge"), lost


def _crossover(series: str, g: pd.DataFrame, label_a: str, label_b: str) -> Crossover:
    """B wins at a batch size only where its speed-up interval lies above 1."""
    g = g.sort_values("batch_size")
    wins = (g["speed_verdict"] == "faster").to_numpy()
    sizes = g["batch_size"].to_numpy()
    if wins.all():
        return Crossover(series, None, f"{label_b} is faster at every batch size measured")
    if not wins[-1]:
        return Crossover(
            series, None, f"{label_b} is not shown faster at the largest batch size measured ({sizes[-1]})"
        )
    first = int(np.flatnonzero(~wins)[-1]) + 1  # after the last batch size where B did not win
    return Crossover(
        series,
        int(sizes[first]),
        f"{label_b} is faster from batch size {sizes[first]} on (slower or indistinguishable up to {sizes[first - 1]})",
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


#: The comparison table's columns: the series label, then the axes it is made of, then per batch size the
#: speed of each side, the speed-up and its verdict, and the test RMSE of each side, the difference and its verdict.
TABLE_COLUMNS = (
    "series",
    "batch_size",
    "pairs",
    "sps_a",
    "sps_b",
    "speedup",
    "speedup_low",
    "speedup_high",
    "speed_verdict",
    "ratio_min",
    "ratio_max",
    "rmse_a",
    "rmse_b",
    "rmse_diff",
    "rmse_diff_low",
    "rmse_diff_high",
    "accuracy_verdict",
    "kernel_a",
    "kernel_b",
)


@dataclass(frozen=True)
class Pairing:
    """What pairing two runs tables gives (`compare_runs`); `Comparison` adds where it was written."""

    table: pd.DataFrame
    crossovers: tuple[Crossover, ...]
    unpaired: pd.DataFrame
    basis: str
    basis_note: str
    differing: tuple[str, ...]  # the comparison axes the sides share no value of
    sentences: tuple[str, ...]  # one per series: speed and accuracy verdicts over its batch sizes


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of B against A, as written to `out`.

    `table`: one row per series and batch size: pairs, median speed of each side (`basis`: samples/s
    per run, or machine throughput when the sides trained repeats differently) with its interval
    (`stats.speed_interval`), `speedup` (ratio of B's median speed to A's; > 1: B is faster) with the
    interval the two sides' intervals allow and its `speed_verdict`, the min and max per-pair ratio, and
    the test RMSE of each side with B's minus A's over pairs, its interval and `accuracy_verdict`.
    `unpaired`: runs of either side left out of the table, with the reason. `warnings`: busy machines
    and conditions that differ between the sides.
    """

    label_a: str
    label_b: str
    pairing: Pairing
    out: Path
    warnings: tuple[str, ...] = ()

    @property
    def table(self) -> pd.DataFrame:
        return self.pairing.table

    @property
    def crossovers(self) -> tuple[Crossover, ...]:
        return self.pairing.crossovers

    @property
    def unpaired(self) -> pd.DataFrame:
        return self.pairing.unpaired

    @property
    def basis(self) -> str:
        return self.pairing.basis

    @property
    def basis_note(self) -> str:
        return self.pairing.basis_note

    @property
    def crossover(self) -> int | None:
        """The crossover batch size when the comparison has one series, else None (see `crossovers`)."""
        return self.crossovers[0].batch_size if len(self.crossovers) == 1 else None


def speed_verdict(ratio: Interval) -> str:
    """faster / slower where the speed-up's interval lies above / below 1, else indistinguishable."""
    return "faster" if ratio.low > 1 else "slower" if ratio.high < 1 else "indistinguishable"


def accuracy_verdict(diff: Interval | None, rmse_a: float, margin: float) -> str:
    """B's test RMSE against A's by the Recommendation's equivalence rule: `within margin` when the
    difference's 90% interval lies inside +-margin x A's RMSE, else `better` / `worse` when it lies below /
    above 0, else `inconclusive` (also with fewer than 2 pairs)."""
    if diff is None or not np.isfinite(diff.low) or not np.isfinite(diff.high):
        return "inconclusive"
    band = margin * abs(rmse_a)
    if -band <= diff.low and diff.high <= band:
        return "within margin"
    return "better" if diff.high < 0 else "worse" if diff.low > 0 else "inconclusive"


def compare_runs(
    a: pd.DataFrame,
    b: pd.DataFrame,
    label_a: str = "A",
    label_b: str = "B",
    margin: float = MARGIN,
    differing: tuple[str, ...] | None = None,
) -> Pairing:
    """Pair two runs tables (as `load_results` gives) and summarise each series and batch size; `differing`
    (default: the axes the sides share no value of) are left out of the pairing key."""
    differing = differing_axes(a, b) if differing is None else differing
    key = pair_key(differing)
    pairs, unpaired = pair_runs(a, b, key, label_a, label_b)
    if pairs.empty:
        return Pairing(pd.DataFrame(columns=TABLE_COLUMNS), (), unpaired, PER_RUN, "", differing, ())
    basis = speed_basis(pairs, label_a, label_b)
    series_cols = _series_columns(pairs, key)
    speed_a, speed_b = (_side(pairs, side, basis[0])["samples_per_sec"] for side in ("a", "b"))
    derived = pd.DataFrame(
        {
            "series": [_series_label(r, series_cols) for _, r in pairs.iterrows()],
            "speed_a": speed_a,
            "speed_b": speed_b,
            "ratio": speed_b / speed_a,
        },
        index=pairs.index,
    )
    pairs = pd.concat([pairs, derived], axis=1)  # in one go, not a column at a time (see `pair_runs`)
    rows = []
    for (series, bs), g in pairs.groupby(["series", "batch_size"], sort=False):
        a_, b_ = (speed_interval(_side(g, side, basis[0])) for side in ("a", "b"))
        ratio = speedup(b_, a_) or Interval(np.nan, np.nan, np.nan)
        rmse_a, rmse_b = g["test_rmse_a"].to_numpy(np.float64), g["test_rmse_b"].to_numpy(np.float64)
        diff = paired_difference(rmse_a, rmse_b)
        rows.append(
            {
                "series": series,
                **{c: g[c].iloc[0] for c in series_cols if c != "mode"},
                "batch_size": bs,
                "pairs": len(g),
                "sps_a": a_.value,
                "sps_b": b_.value,
                "speedup": ratio.value,
                "speedup_low": ratio.low,
                "speedup_high": ratio.high,
                "speed_verdict": speed_verdict(ratio),
                "ratio_min": g["ratio"].min(),
                "ratio_max": g["ratio"].max(),
                "rmse_a": rmse_a.mean(),
                "rmse_b": rmse_b.mean(),
                "rmse_diff": float(np.mean(rmse_b - rmse_a)),
                "rmse_diff_low": np.nan if diff is None else diff.low,
                "rmse_diff_high": np.nan if diff is None else diff.high,
                "accuracy_verdict": accuracy_verdict(diff, rmse_a.mean(), margin),
                "kernel_a": _kernels(g["kernel_a"]),
                "kernel_b": _kernels(g["kernel_b"]),
            }
        )
    table = pd.DataFrame(rows).astype({"batch_size": int, "pairs": int})
    axes = [c for c in series_cols if c != "mode"]
    mode_rank = {f"{m}": i for i, m in enumerate(MODE_ORDER)}
    table = table.assign(_r=table["series"].map(lambda s: mode_rank.get(s.split(",")[0], 9)))
    table = table.sort_values(["_r", "series", "batch_size"]).drop(columns="_r").reset_index(drop=True)
    table = table[[TABLE_COLUMNS[0], *axes, *TABLE_COLUMNS[1:]]]
    crossovers = tuple(_crossover(s, g, label_a, label_b) for s, g in table.groupby("series", sort=False))
    sentences = tuple(_sentence(s, g, label_a, label_b) for s, g in table.groupby("series", sort=False))
    return Pairing(table, crossovers, unpaired, *basis, differing, sentences)


def _where(g: pd.DataFrame, column: str) -> str:
    """`faster at every batch size`, or `slower at 1 to 256 and 1024, faster at 512`: a verdict column over the
    batch sizes (a run of neighbouring measured sizes with one verdict reads as a range)."""
    g = g.sort_values("batch_size")
    verdicts = g[column].tolist()
    if len(set(verdicts)) == 1:
        return f"{verdicts[0]} at every batch size"
    spans: dict[str, list[str]] = {}
    start = 0
    for i in range(1, len(verdicts) + 1):
        if i == len(verdicts) or verdicts[i] != verdicts[start]:
            first, last = g["batch_size"].iloc[start], g["batch_size"].iloc[i - 1]
            spans.setdefault(verdicts[start], []).append(f"{first}" if first == last else f"{first} to {last}")
            start = i
    return ", ".join(f"{v} at {' and '.join(parts)}" for v, parts in spans.items())


def _sentence(series: str, g: pd.DataFrame, label_a: str, label_b: str) -> str:
    """One series' answer: how B's speed and test RMSE compare with A's over its batch sizes."""
    speeds = f"{g['speedup'].min():.3g}x" + (
        f" to {g['speedup'].max():.3g}x" if g["speedup"].max() != g["speedup"].min() else ""
    )
    lo, hi = g["rmse_diff"].min(), g["rmse_diff"].max()
    diffs = f"{lo:+.3g}" + (f" to {hi:+.3g}" if hi != lo else "")
    return (
        f"{series}: {label_b} is {_where(g, 'speed_verdict')} (speed-up {speeds}) and {_where(g, 'accuracy_verdict')} "
        f"on test RMSE ({label_b} - {label_a}: {diffs})"
    )


def _kernels(values: pd.Series) -> str:
    """The LSTM kernels a group of runs recorded (`bench.kernels`); runs before results schema 4 recorded none."""
    return ", ".join(sorted(set(values.dropna()))) or "not recorded"


def _side(pairs: pd.DataFrame, side: str, basis: str) -> pd.DataFrame:
    """One side's speed columns of a group of pairs, scaled to machine throughput on that basis."""
    scale = pairs[f"trained_together_{side}"].fillna(1) if basis == MACHINE else 1
    cols = {"samples_per_sec": pairs[f"samples_per_sec_{side}"] * scale}
    for c in ("sps_median", "sps_q1", "sps_q3"):
        if f"{c}_{side}" in pairs:
            cols[c] = pd.to_numeric(pairs[f"{c}_{side}"], errors="coerce") * scale
    return pd.DataFrame(cols)


#: The sides' conditions differ when their median share of CPU used by other processes differs by more than this.
CONDITIONS_DIFFER = 0.1


def condition_warnings(a: pd.DataFrame, b: pd.DataFrame, label_a: str, label_b: str) -> tuple[str, ...]:
    """Busy machines on either side, and conditions that differ between the sides (ok runs)."""
    out = []
    medians = {}
    for label, runs in ((label_a, a), (label_b, b)):
        ok = runs[runs["status"] == OK]
        if "other_cpu_share" not in ok or ok["other_cpu_share"].isna().all():
            continue
        busy = busy_runs(ok)
        if busy.any():
            out.append(
                f"{label}: {int(busy.sum())} of {len(ok)} runs were timed on a busy machine (other processes used "
                f"more than {BUSY_OTHER_SHARE:.0%} of the CPU): their speeds, and the speed-ups, are not trustworthy"
            )
        medians[label] = (
            float(pd.to_numeric(ok["other_cpu_share"], errors="coerce").median()),
            float(pd.to_numeric(ok["load_per_core"], errors="coerce").median()),
        )
    if len(medians) == 2:
        (oa, la), (ob, lb) = medians[label_a], medians[label_b]
        if abs(oa - ob) > CONDITIONS_DIFFER:
            out.append(
                f"the sides ran under different conditions: other processes used {oa:.0%} of the CPU during "
                f"{label_a}'s runs and {ob:.0%} during {label_b}'s (median; load per core {la:.2f} and {lb:.2f})"
            )
    return tuple(out)
