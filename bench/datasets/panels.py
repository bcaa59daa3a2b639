"""Files that hold several series in their rows (a long panel: `series, date, value`), told apart from one
series, so such a file is never read as one concatenated series.

The sign is unambiguous: a column of dates in which dates repeat, and a column of labels that, with the
date, names every row once. One series has each date once; a year and a month column (numbers) or a label
that cycles with the season never qualify, since neither is a column of dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandas.api.types import is_numeric_dtype

from bench.datasets import rows

#: Rows of a file read to look for a panel (a panel shows itself in its first series or two).
SAMPLE_ROWS = 10_000
#: Fewest rows a series of a panel has on average.
MIN_ROWS_PER_SERIES = 3


@dataclass(frozen=True)
class Stacked:
    """The columns that show a file holds several series: `label` tells them apart, `time` repeats."""

    label: str
    time: str
    labels: tuple[str, ...]  # the distinct labels in the rows read, in order
    whole: bool  # the rows read were the whole file

    def message(self, path: str) -> str:
        shown = ", ".join(repr(v) for v in self.labels[:3]) + (", ..." if len(self.labels) > 3 else "")
        count = f"{len(self.labels):,}" if self.whole else f"{len(self.labels):,} in the first {SAMPLE_ROWS:,} rows"
        return (
            f"dataset: {path}: the rows hold several series, told apart by column '{self.label}' ({count}: "
            f"{shown}), each with its own '{self.time}' dates: read as one they would run together; "
            "lstm-bench reads one series per dataset: give one series' rows per file, or the series as columns "
            "of a wide file with column: NAME"
        )


def _dates(raw: pd.Series, fmt: str | None, dayfirst: bool) -> pd.Series | None:
    """The column as timestamps when it holds dates (`rows.detect_time`'s rule), else None."""
    if rows.detect_time(raw.to_frame(), [], fmt, dayfirst) is None:
        return None
    return rows.read_times(raw, fmt, dayfirst, str(raw.name), "")[0]


def _labels(raw: pd.Series) -> pd.Series | None:
    """The column as stripped text when every row has a label and some label is not a number (a column of
    numbers, such as an hour of the day beside a date, is a time or a value, not a series' name)."""
    if is_numeric_dtype(raw) or raw.isna().any():
        return None
    text = raw.astype("string").str.strip()
    return text if pd.to_numeric(text, errors="coerce").isna().any() else None


def stacked_series(
    frame: pd.DataFrame, numbers: list[str], fmt: str | None, dayfirst: bool, time: str | None = None
) -> Stacked | None:
    """The label and date columns of `frame` (its first rows) that show it holds several series, or None. The
    `numbers` columns (the series and its features) are neither; the column named with `time:` counts as dates
    whatever it holds (years as whole numbers, say)."""
    frame = frame.head(SAMPLE_ROWS)
    others = [c for c in frame.columns if str(c) not in numbers]
    dates = {c: d for c in others if (d := _dates(frame[c], fmt, dayfirst)) is not None}
    if time in others and time not in dates:
        dates[time] = frame[time].astype("string").str.strip()  # compared as written: repeats are what count
    labels = {c: t for c in others if c not in dates and (t := _labels(frame[c])) is not None}
    for time, stamps in dates.items():
        if not stamps.duplicated().any():
            continue  # one series: each date once
        for label, names in labels.items():
            distinct = names.unique()
            pairs = pd.DataFrame({"label": names.to_numpy(), "time": stamps.to_numpy()})
            if 2 <= len(distinct) <= len(frame) // MIN_ROWS_PER_SERIES and not pairs.duplicated().any():
                return Stacked(str(label), str(time), tuple(map(str, distinct)), len(frame) < SAMPLE_ROWS)
    return None
