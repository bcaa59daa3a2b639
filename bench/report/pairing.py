"""Pairing two results folders (CPU vs GPU, TensorFlow vs JAX, fit vs scan): the analysis behind
`lstm-bench compare`, with no drawing or printing (`bench.report.compare` renders it, the CLI prints it).
Paired speed-ups with their intervals and accuracy differences per batch size, the batch size from
which B is faster, and warnings about the conditions each side was timed under.

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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.load import FACET_CANDIDATES, join_columns
from bench.report.stats import BUSY_OTHER_SHARE, Interval, busy_runs, speed_interval, speedup
from bench.schema import schema
from bench.vocabulary import MODE_ORDER, OK

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

    `table`: one row per series and batch size: pairs, median speed of each side (`basis`: samples/s
    per run, or machine throughput when the sides trained repeats differently) with its interval
    (`stats.speed_interval`), `speedup` (ratio of B's median speed to A's; > 1: B is faster) with the
    interval the two sides' intervals allow, `verdict` (faster, slower, or indistinguishable where that
    interval holds 1), the min and max per-pair ratio, and `rmse_diff` (mean over pairs of B's minus A's
    test RMSE). `unpaired`: runs of either side left out of the table, with the reason. `warnings`: busy
    machines and conditions that differ between the sides.
    """

    label_a: str
    label_b: str
    table: pd.DataFrame
    crossovers: tuple[Crossover, ...]
    unpaired: pd.DataFrame
    out: Path
    basis: str = PER_RUN
    basis_note: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def crossover(self) -> int | None:
        """The crossover batch size when the comparison has one series, else None (see `crossovers`)."""
        return self.crossovers[0].batch_size if len(self.crossovers) == 1 else None


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
        runs = runs.assign(_key=join_columns(runs, key) if len(runs) else "")
        bad = runs[runs["status"] != OK]
        unpaired.append(bad.assign(side=side, reason="status " + bad["status"].astype(str)))
        ok = runs[runs["status"] == OK]
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
    both = merged[merged["_merge"] == "both"]
    # the shared configuration columns, unsuffixed, joined in one go: a column at a time would fragment the frame
    shared = pd.DataFrame({c: both[f"{c}_a"] for c in (*key, "mode")}, index=both.index)
    pairs = pd.concat([both, shared], axis=1)
    cols = ["side", "run_id", "mode", "batch_size", "repeat", "device", "backend", "engine", "status", "reason"]
    lost = (
        pd.concat([u[cols] for u in unpaired if not u.empty], ignore_index=True)
        if any(not u.empty for u in unpaired)
        else pd.DataFrame(columns=cols)
    )
    return pairs.drop(columns="_merge"), lost


def _crossover(series: str, g: pd.DataFrame, label_a: str, label_b: str) -> Crossover:
    """B wins at a batch size only where its speed-up interval lies above 1."""
    g = g.sort_values("batch_size")
    wins = (g["verdict"] == "faster").to_numpy()
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
        "speedup_low",
        "speedup_high",
        "verdict",
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
    speed_a, speed_b = (_side(pairs, side, basis[0])["samples_per_sec"] for side in ("a", "b"))
    derived = pd.DataFrame(
        {
            "series": [_series_label(r, series_cols) for _, r in pairs.iterrows()],
            "speed_a": speed_a,
            "speed_b": speed_b,
            "ratio": speed_b / speed_a,
            "rmse_delta": pairs["test_rmse_b"] - pairs["test_rmse_a"],
        },
        index=pairs.index,
    )
    pairs = pd.concat([pairs, derived], axis=1)  # in one go, not a column at a time (see `pair_runs`)
    rows = []
    for (series, bs), g in pairs.groupby(["series", "batch_size"], sort=False):
        sides = [speed_interval(_side(g, side, basis[0])) for side in ("a", "b")]
        a_, b_ = sides
        ratio = speedup(b_, a_) or Interval(np.nan, np.nan, np.nan)
        low, high = ratio.low, ratio.high
        rows.append(
            {
                "series": series,
                "batch_size": bs,
                "pairs": len(g),
                "sps_a": a_.value,
                "sps_b": b_.value,
                "speedup": ratio.value,
                "speedup_low": low,
                "speedup_high": high,
                "verdict": "faster" if low > 1 else "slower" if high < 1 else "indistinguishable",
                "ratio_min": g["ratio"].min(),
                "ratio_max": g["ratio"].max(),
                "rmse_a": g["test_rmse_a"].mean(),
                "rmse_b": g["test_rmse_b"].mean(),
                "rmse_diff": g["rmse_delta"].mean(),
                "kernel_a": _kernels(g["kernel_a"]),
                "kernel_b": _kernels(g["kernel_b"]),
            }
        )
    table = pd.DataFrame(rows)
    mode_rank = {f"{m}": i for i, m in enumerate(MODE_ORDER)}
    table = table.assign(_r=table["series"].map(lambda s: mode_rank.get(s.split(",")[0], 9)))
    table = table.sort_values(["_r", "series", "batch_size"]).drop(columns="_r").reset_index(drop=True)[cols]
    crossovers = tuple(_crossover(s, g, label_a, label_b) for s, g in table.groupby("series", sort=False))
    return table, crossovers, unpaired, basis


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
