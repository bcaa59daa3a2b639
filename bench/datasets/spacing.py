"""The spacing of a file's time column and the gaps in it: a weekly series with two years of rows missing
would otherwise train on windows that straddle the hole, as if the weeks were consecutive.

The usual spacing is found from the most common step between stamps (calendar months, quarters and years,
business days, or a fixed step such as a week or an hour), or given with `frequency:` (a pandas alias: `D`,
`W-SUN`, `MS`, `h`, `15min`). Steps longer than it are gaps, and `gaps:` says what to do with them: `error`
(the default: one line with the first gap and how many there are), `fill` (insert the missing stamps and
repair their values with the dataset's `missing:` choice) or `keep` (use the rows as they are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.errors import UserError

GAPS = ("error", "fill", "keep")
DAY_NS = 86_400 * 10**9
#: A step this many times the usual one is a gap where the stamps are not on a regular grid.
GAP_FACTOR = 1.5
#: Fixed steps with a name people use.
_NAMED = {pd.Timedelta(days=7): "weekly", pd.Timedelta(days=1): "daily", pd.Timedelta(hours=1): "hourly",
          pd.Timedelta(minutes=1): "minutely"}  # fmt: skip


@dataclass(frozen=True)
class Spacing:
    """The usual step between stamps: what `pd.date_range` takes, and how messages name it."""

    freq: str | pd.DateOffset | pd.Timedelta
    name: str
    typical_ns: int  # its length (a calendar month: 30.4 days), for stamps off the grid


@dataclass(frozen=True)
class Gaps:
    """Where the stamps skip steps: the missing stamps (None when the stamps are off any regular grid), the row
    after which each gap starts, and the grid the stamps lie on."""

    missing: pd.DatetimeIndex | None
    after_rows: np.ndarray
    grid: pd.DatetimeIndex | None


def frequency_spacing(value: str) -> Spacing:
    """The spacing a `frequency:` value names, or a one-line `UserError`."""
    try:
        offset = pd.tseries.frequencies.to_offset(value)
    except (ValueError, TypeError):
        raise UserError(
            f"dataset: 'frequency' must be a pandas frequency such as D, W-SUN, MS, h or 15min, got {value!r}"
        ) from None
    typical = pd.Timestamp("2001-01-01") + offset - pd.Timestamp("2001-01-01")
    return Spacing(offset, f"{value} (frequency)", int(typical.value))


def usual_spacing(times: pd.DatetimeIndex) -> Spacing | None:
    """The spacing most steps between `times` follow, or None with fewer than 3 stamps."""
    if len(times) < 3:
        return None
    steps = np.diff(times.as_unit("ns").asi8)
    values, counts = np.unique(steps, return_counts=True)
    mode = int(values[np.argmax(counts)])
    days = mode / DAY_NS
    for low, high, months, name in ((28, 31, 1, "monthly"), (89, 92, 3, "quarterly"), (365, 366, 12, "yearly")):
        if low <= days <= high:
            if (times.day == 1).all():
                return Spacing(f"{months}MS", name, int(months * 30.44 * DAY_NS))
            if times.is_month_end.all():
                return Spacing(f"{months}ME", name, int(months * 30.44 * DAY_NS))
            return Spacing(pd.DateOffset(months=months), name, int(months * 30.44 * DAY_NS))
    weekend = (times.day_of_week >= 5).any()
    if mode == DAY_NS and not weekend and (steps == 3 * DAY_NS).any():
        return Spacing("B", "business-day", DAY_NS)
    step = pd.Timedelta(mode)
    return Spacing(step, _NAMED.get(step, f"{step} apart"), mode)


def find_gaps(times: pd.DatetimeIndex, spacing: Spacing) -> Gaps:
    """The gaps in `times` at `spacing`: on its grid where every stamp lies on it, else steps over
    `GAP_FACTOR` times its typical length."""
    try:
        grid = pd.date_range(times[0], times[-1], freq=spacing.freq)
    except (ValueError, TypeError):
        grid = None
    if grid is not None and len(grid) <= 20 * len(times) and times.isin(grid).all():
        position = grid.get_indexer(times)
        return Gaps(grid.difference(times), np.flatnonzero(np.diff(position) > 1), grid)
    steps = np.diff(times.as_unit("ns").asi8)
    return Gaps(None, np.flatnonzero(steps > GAP_FACTOR * spacing.typical_ns), None)


def daylight_saving(stamps: pd.DatetimeIndex) -> bool:
    """Whether local stamps fall where a daylight-saving change moves the clock (1-3 am in March, April,
    October or November): a repeated or missing local hour there is the change, not the data."""
    return bool(len(stamps)) and bool(
        ((stamps.hour >= 1) & (stamps.hour <= 3) & stamps.month.isin([3, 4, 10, 11])).all()
    )


DST_HINT = (
    " (this looks like a daylight-saving change in local time: give UTC timestamps, or handle the hour with "
    "gaps: fill or keep)"
)


def _stamp(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%d") if t == t.normalize() else t.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")


def describe(times: pd.DatetimeIndex, spacing: Spacing, gaps: Gaps, name: str) -> str:
    """One line: how many gaps and stamps are missing, and the first gap."""
    first = int(gaps.after_rows[0])
    n_missing = f"{len(gaps.missing)} missing {spacing.name} stamps" if gaps.missing is not None else "missing stamps"
    where = f"the first after row {first + 1} ({_stamp(times[first])}), whose next row is {_stamp(times[first + 1])}"
    hint = DST_HINT if gaps.missing is not None and daylight_saving(gaps.missing) else ""
    count = f"{len(gaps.after_rows)} gap" + ("s" if len(gaps.after_rows) > 1 else "")
    return f"the time column '{name}' has {n_missing} in {count}, {where}{hint}"


def handle_gaps(
    times: pd.DatetimeIndex, columns: dict[str, np.ndarray], params: dict, name: str, path: str
) -> tuple[dict[str, np.ndarray], str]:
    """The columns with the gaps in `times` handled as `params['gaps']` says, and a note; a one-line `UserError`
    for gaps under `gaps: error`."""
    spacing = frequency_spacing(params["frequency"]) if "frequency" in params else usual_spacing(times)
    if spacing is None:
        return columns, ""
    gaps = find_gaps(times, spacing)
    if not len(gaps.after_rows):
        return columns, ""
    policy = params.get("gaps", "error")
    line = describe(times, spacing, gaps, name)
    if policy == "keep":
        return columns, f"gaps: kept {line.removeprefix('the time column ')}"
    if policy == "error":
        raise UserError(
            f"dataset: {path}: {line}; add gaps: fill (with missing: interpolate or ffill) to insert and repair "
            "them, gaps: keep to use the rows as they are, or frequency: to give the spacing"
        )
    if params.get("missing", "error") not in ("interpolate", "ffill"):
        raise UserError(
            f"dataset: {path}: gaps: fill inserts the stamps {line.removeprefix('the time column ')} with no values; "
            "add missing: interpolate or ffill to repair them"
        )
    if gaps.grid is None:
        raise UserError(
            f"dataset: {path}: the time column '{name}' is not on a regular {spacing.name} grid, so gaps: fill cannot "
            "tell which stamps are missing; give the spacing with frequency: (e.g. W-SUN), or use gaps: keep"
        )
    position = gaps.grid.get_indexer(times)
    filled = {}
    for column, values in columns.items():
        full = np.full(len(gaps.grid), np.nan)
        full[position] = values
        filled[column] = full
    return filled, f"gaps: inserted {len(gaps.missing)} missing {spacing.name} stamps"
