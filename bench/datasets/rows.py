"""Which rows of a user's file are data: the time column (named or detected) read with one format for
every row, footer rows, trailing empty rows, and values far from the rest of their column.

Pure functions of the frame and its columns; each problem raises a one-line `UserError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
import warnings

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype
from pandas.tseries.api import guess_datetime_format

from bench.datasets.spacing import daylight_saving
from bench.errors import UserError

#: A value this many scaled MADs from its column's median is refused unless `outliers: keep`.
OUTLIER_MADS = 20.0
MAD_SCALE = 1.4826  # the MAD of normal data times this is its standard deviation
#: The first non-empty values a date format is guessed from (a units row may come first).
GUESS_FROM = 5
#: Time stamps parsed at once (bounds the memory a long column's parsing takes).
PARSE_ROWS = 100_000
#: A first column is the time column when at least this many values are dates and at most
#: max(1, DETECT_SLACK of them) are not (a footer, a units row).
DETECT_MIN = 3
DETECT_SLACK = 0.1
#: Thousands separators: 1,002.5 (English), 1.002,5 (German), 1 002,5 (French), 1'002.5 (Swiss).
THOUSANDS = (",", ".", " ", "'")


def drop_trailing_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without the rows at its end where every cell is empty (`;;` as spreadsheets export
    formatted but empty rows): they hold no value, so they are neither data nor gaps to repair."""
    filled = np.flatnonzero(frame.notna().any(axis=1).to_numpy())
    return frame.iloc[: filled[-1] + 1 if len(filled) else 0]


def _parse(text: pd.Series, fmt: str) -> pd.Series:
    # in UTC: an export in local time changes its offset (+01:00, +02:00) with daylight saving. In parts:
    # pandas parses through a Python string per value, ~120 bytes a row at once for a whole column
    parts = [
        pd.to_datetime(text.iloc[i : i + PARSE_ROWS], format=fmt, errors="coerce", utc=True)
        for i in range(0, len(text), PARSE_ROWS)
    ]
    return pd.concat(parts) if len(parts) > 1 else parts[0] if parts else pd.to_datetime(text, utc=True)


def _swapped(fmt: str) -> str:
    return fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")


def _month_first(fmt: str) -> bool:
    """01.02.2020 read as January 2nd (a date that starts with its year, ISO 8601, has no other reading)."""
    return "%d" in fmt and "%m" in fmt and fmt.index("%m") < fmt.index("%d") and not fmt.startswith("%Y")


def guess_format(text: pd.Series, dayfirst: bool) -> str | None:
    """The one strftime format that reads most of the column, guessed from its first values as pandas
    guesses: month first unless a value says otherwise (13.01.2020) or `dayfirst`, which then holds for
    every row; a date that starts with its year is never day first."""
    candidates: list[str] = []
    # pandas warns that 13.01.2020 reads day-first unasked: fine, as one format reads every row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for value in text.dropna().head(GUESS_FROM):
            fmt = guess_datetime_format(value, dayfirst=dayfirst)
            if dayfirst and fmt and fmt.startswith("%Y"):
                fmt = guess_datetime_format(value)
            if fmt and fmt not in candidates and not (dayfirst and _month_first(fmt)):
                candidates.append(fmt)
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    return max(candidates, key=lambda f: int(_parse(text, f).notna().sum()))  # ties: the first value's


def _text(raw: pd.Series) -> pd.Series:
    return raw.astype("string").str.strip()


def read_times(raw: pd.Series, fmt: str | None, dayfirst: bool, name: str, path: str) -> tuple[pd.Series, str | None]:
    """The column as timestamps (NaT where a value is not a date in the column's one format) and that
    format; None for a column that already holds dates or numbers (an index, epoch seconds)."""
    if is_datetime64_any_dtype(raw):
        return raw, None
    if is_numeric_dtype(raw) and fmt is None:
        return pd.to_datetime(raw, errors="coerce"), None
    text = _text(raw)
    fmt = fmt or guess_format(text, dayfirst)
    if fmt is not None:
        return _parse(text, fmt), fmt
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == text.notna().sum():
        return pd.to_datetime(numbers, errors="coerce"), None
    # reading each value as it comes would read 12.01 and 13.01 with different day/month orders
    first = text.dropna().iloc[0] if text.notna().any() else ""
    raise UserError(
        f"dataset: {path}: column '{name}': cannot tell the date format from {first!r}; "
        "give it with time_format: (strftime codes, e.g. '%d.%m.%Y %H:%M')"
    )


def detect_time(frame: pd.DataFrame, numbers: list[str], fmt: str | None, dayfirst: bool) -> str | None:
    """The first column when it holds dates with one format (besides at most a few other rows) and is not
    one of the `numbers` columns; else None. Whole numbers are an index, a count or an id (1005 would read
    as a year), not dates."""
    name = str(frame.columns[0])
    raw = frame[name]
    if name in numbers or is_numeric_dtype(raw):
        return None
    if is_datetime64_any_dtype(raw):
        dates, total = int(raw.notna().sum()), len(raw)
    else:
        text = _text(raw).dropna()
        if text.str.fullmatch(r"[+-]?\d+").all():
            return None
        fmt = fmt or guess_format(text, dayfirst)
        if fmt is None:
            return None
        # day-first dates read month-first fail from the 13th on: still the time column, told how to read it
        tries = (fmt, _swapped(fmt)) if _month_first(fmt) else (fmt,)
        dates, total = max(int(_parse(text, f).notna().sum()) for f in tries), len(text)
    return name if dates >= DETECT_MIN and total - dates <= max(1, int(DETECT_SLACK * total)) else None


def _cells(frame: pd.DataFrame, row: int) -> str:
    values = ["" if pd.isna(v) else v.item() if isinstance(v, np.generic) else v for v in frame.iloc[row]]
    return "(empty)" if all(v == "" for v in values) else repr(tuple(values))


def check_times(
    frame: pd.DataFrame, name: str, times: pd.Series, fmt: str | None, guessed: bool, detected: bool, path: str
) -> None:
    """Every row has a time and the times strictly increase; else one line naming the first row that does
    not, with the fix: day-first dates read month-first, a footer or empty row, an unsorted file."""
    raw = frame[name]
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = raw.iloc[row]
        where = f"dataset: {path}: row {row + 1}"
        if guessed and fmt and _month_first(fmt) and _parse(_text(raw.iloc[[row]]), _swapped(fmt)).notna().all():
            raise UserError(
                f"{where}, column '{name}': {value!r} is not a date read month first ({fmt}, as the first rows "
                f"allow); if the day comes first add dayfirst: true or time_format: '{_swapped(fmt)}'"
            )
        if detected:
            raise UserError(
                f"{where} {_cells(frame, row)} is not data: column '{name}' (detected as the time column) holds "
                f"{'no date' if pd.isna(value) else repr(value)}; remove the row, or if '{name}' is not the time "
                "column name it with time:"
            )
        shown = "missing" if pd.isna(value) else f"{value!r} is not a date or time"
        raise UserError(
            f"{where}, column '{name}': {shown}{f' in the format {fmt}' if fmt else ''}; remove the row if it is "
            "not data (a footer), else correct it"
        )
    steps = np.diff(pd.DatetimeIndex(times).asi8)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        which = f"the time column '{name}' (detected)" if detected else "the time column"
        repeated = steps[row - 1] == 0 and daylight_saving(pd.DatetimeIndex(times.iloc[[row]]))
        hint = " (a local hour repeated at a daylight-saving change: give UTC timestamps)" if repeated else ""
        raise UserError(
            f"dataset: {path}: row {row + 1}, column '{name}': {raw.iloc[row]!r} does not come after "
            f"{raw.iloc[row - 1]!r}; {which} must be strictly increasing (sort the file or remove duplicates){hint}"
        )


@dataclass(frozen=True)
class Outlier:
    """A value more than OUTLIER_MADS scaled MADs from its column's median."""

    row: int  # 0-based
    column: str
    value: float
    median: float
    mad: float

    @property
    def mads(self) -> float:
        return abs(self.value - self.median) / self.mad


def find_outliers(columns: dict[str, np.ndarray]) -> list[Outlier]:
    """Every value more than OUTLIER_MADS scaled MADs from its column's median, by row. A column whose MAD is 0
    (mostly constant) is not checked: the data checks flag constant columns."""
    found = []
    for name, values in columns.items():
        present = values[~np.isnan(values)]
        if not len(present):
            continue
        median = float(np.median(present))
        mad = MAD_SCALE * float(np.median(np.abs(present - median)))
        if mad > 0:
            far = np.abs(values - median) > OUTLIER_MADS * mad  # NaN compares False
            found += [Outlier(int(i), name, float(values[i]), median, mad) for i in np.flatnonzero(far)]
    return sorted(found, key=lambda o: (o.row, o.column))


def check_outliers(columns: dict[str, np.ndarray], path: str) -> None:
    """`outliers: error`: stop at the first value far from the rest of its column (a unit slip or a typo would
    silently change every figure)."""
    found = find_outliers(columns)
    if found:
        o = found[0]
        raise UserError(
            f"dataset: {path}: row {o.row + 1}, column '{o.column}': {o.value!r} is {o.mads:.0f} MADs from the "
            f"column's median {o.median:g} (a unit slip or a typo?); correct or remove the row, or if the value is "
            "real add outliers: keep"
        )


def treat_outliers(columns: dict[str, np.ndarray], policy: str) -> tuple[dict[str, np.ndarray], str]:
    """`outliers: drop` removes the rows of far values, `clip` pulls each to OUTLIER_MADS MADs of its median;
    with a note saying how many."""
    found = find_outliers(columns)
    if not found:
        return columns, ""
    if policy == "drop":
        keep = np.ones(len(next(iter(columns.values()))), dtype=bool)
        keep[[o.row for o in found]] = False
        return {n: v[keep] for n, v in columns.items()}, f"outliers: dropped {int((~keep).sum())} rows"
    out = {n: v.copy() for n, v in columns.items()}
    for o in found:
        bound = OUTLIER_MADS * o.mad
        out[o.column][o.row] = float(np.clip(o.value, o.median - bound, o.median + bound))
    return out, f"outliers: clipped {len(found)} values to {OUTLIER_MADS:g} MADs of their column's median"


#: A last row labelled so is a total, not data.
TOTAL_LABELS = re.compile(r"^\s*(total|totals|sum|summe|gesamt|insgesamt|grand total|average|mean)\b", re.IGNORECASE)


def check_footer(frame: pd.DataFrame, columns: dict[str, np.ndarray], path: str) -> None:
    """A last row that totals the rest is an error: its first cell reads like "Total", or its value equals the
    sum of the rows above (a footer the spreadsheet added)."""
    first = frame.columns[0]
    label = frame[first].iloc[-1] if len(frame) else None
    if isinstance(label, str) and str(first) not in columns and TOTAL_LABELS.match(label):
        raise UserError(f"dataset: {path}: row {len(frame)} ({label!r}, ...) is not data: a total row; remove the row")
    for name, values in columns.items():
        above = values[:-1]
        if len(values) >= 4 and np.isfinite(values[-1]) and np.isfinite(above).all() and np.abs(above).sum() > 0:
            total = float(above.sum())
            if abs(values[-1] - total) <= 1e-6 * max(1.0, abs(total)):
                raise UserError(
                    f"dataset: {path}: row {len(values)}, column '{name}': {float(values[-1])!r} is the sum of the "
                    "rows above (a total row); remove the row"
                )


def _reads_as(text: str, decimal: str, thousands: str | None) -> bool:
    group = rf"|\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+" if thousands else ""
    return re.fullmatch(rf"[+-]?(?:\d+{group})(?:{re.escape(decimal)}\d+)?", text) is not None


def number_hint(text: str, decimal: str, thousands: str | None) -> str:
    """How to read `text` as a number: for each value it can mean, the fewest key changes that read it so
    ('1,5' wants decimal: ',', '1,002.5' thousands: ',', '1.002,5' both; '1,002' is 1.002 or 1002)."""
    best: dict[float, tuple[int, str]] = {}
    for d in ".,":
        for t in (None, *THOUSANDS):
            if t == d or (d, t) == (decimal, thousands) or not _reads_as(text, d, t):
                continue
            keys = [f"decimal: {d!r}"] if d != decimal else []
            keys += [f"thousands: {t!r}"] if t and t != thousands else []
            hint = " with ".join(keys) + (" without thousands" if thousands and not t else "")
            value = float(text.replace(t or "", "").replace(d, "."))
            if value not in best or len(keys) < best[value][0]:
                best[value] = (len(keys), f"{hint} (reads {value:.15g})")
    options = [hint for _, hint in sorted(best.values())]
    return "; add " + " or ".join(options) if options else ""
