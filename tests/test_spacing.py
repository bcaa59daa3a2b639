"""The spacing of a time column: gaps found, said in one line, and filled or kept as the user chooses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.datasets import load_series, resolve_dataset
from bench.errors import UserError


def csv(tmp_path: Path, stamps: pd.DatetimeIndex, fmt: str = "%Y-%m-%d", name: str = "s.csv") -> str:
    values = np.arange(len(stamps), dtype=float) * 0.5 + 10
    lines = "".join(f"{t.strftime(fmt)},{v}\n" for t, v in zip(stamps, values))
    (tmp_path / name).write_text("date,value\n" + lines)
    return name


def load(tmp_path: Path, **ref: object):
    return load_series(resolve_dataset({"column": "value", "time": "date", **ref}, tmp_path))


def fails(tmp_path: Path, **ref: object) -> str:
    with pytest.raises(UserError) as info:
        load(tmp_path, **ref)
    assert "\n" not in str(info.value)
    return str(info.value)


WEEKS = pd.date_range("2010-01-03", periods=600, freq="W-SUN")
HOLE = WEEKS[200:304]  # two years of rows missing


def test_a_weekly_series_with_two_years_missing_is_one_line_naming_the_first_gap(tmp_path: Path):
    name = csv(tmp_path, WEEKS.difference(HOLE))
    message = fails(tmp_path, csv=name)
    assert message == (
        f"dataset: {tmp_path / name}: the time column 'date' has 104 missing weekly stamps in 1 gap, the first after "
        "row 200 (2013-10-27), whose next row is 2015-11-01; add gaps: fill (with missing: interpolate or ffill) to "
        "insert and repair them, gaps: keep to use the rows as they are, or frequency: to "
        "give the spacing"
    )


def test_gaps_keep_uses_the_rows_and_gaps_fill_inserts_and_repairs_the_stamps(tmp_path: Path):
    name = csv(tmp_path, WEEKS.difference(HOLE))
    kept = load(tmp_path, csv=name, gaps="keep")
    assert len(kept.values) == 496 and "gaps: kept" in kept.notes
    filled = load(tmp_path, csv=name, gaps="fill", missing="interpolate")
    assert len(filled.values) == 600 and "gaps: inserted 104 missing weekly stamps" in filled.notes
    # the inserted weeks are interpolated between the values either side of the hole
    assert filled.values[199] == 10 + 199 * 0.5 and filled.values[304] == 10 + 200 * 0.5
    assert np.all(np.diff(filled.values[199:305]) > 0)
    assert "add missing: interpolate or ffill" in fails(tmp_path, csv=name, gaps="fill")


@pytest.mark.parametrize(
    "stamps",
    [
        pd.date_range("2000-01-01", periods=120, freq="MS"),  # calendar months: 28 to 31 days apart
        pd.date_range("2000-01-31", periods=120, freq="ME"),
        pd.date_range("2000-01-01", periods=40, freq="QS"),
        pd.bdate_range("2021-01-01", periods=300),  # business days: Friday to Monday is no gap
        pd.date_range("2021-01-01", periods=500, freq="h"),
    ],
    ids=["month-start", "month-end", "quarters", "business-days", "hours"],
)
def test_regular_calendars_have_no_gaps_and_one_missing_step_is_found(tmp_path: Path, stamps: pd.DatetimeIndex):
    fmt = "%Y-%m-%d %H:%M" if stamps.freqstr == "h" else "%Y-%m-%d"
    assert load(tmp_path, csv=csv(tmp_path, stamps, fmt)).notes == ""
    message = fails(tmp_path, csv=csv(tmp_path, stamps.delete(25), fmt, "holed.csv"))
    assert "has 1 missing" in message and "in 1 gap, the first after row 25 " in message


def test_a_skipped_local_hour_at_a_daylight_saving_change_gets_a_hint(tmp_path: Path):
    hours = pd.date_range("2021-03-27 00:00", periods=72, freq="h")
    local = hours.delete(26)  # 2021-03-28 02:00 does not exist in Central European time
    message = fails(tmp_path, csv=csv(tmp_path, local, "%Y-%m-%d %H:%M"))
    assert "daylight-saving change in local time: give UTC timestamps" in message
    assert "daylight-saving" not in fails(tmp_path, csv=csv(tmp_path, hours.delete(40), "%Y-%m-%d %H:%M", "b.csv"))
    autumn = pd.date_range("2021-10-30 00:00", periods=72, freq="h")
    repeated = autumn.insert(27, autumn[26])  # 2021-10-31 02:00 twice: the clock went back
    message = fails(tmp_path, csv=csv(tmp_path, repeated, "%Y-%m-%d %H:%M", "c.csv"))
    assert "must be strictly increasing" in message and "repeated at a daylight-saving change" in message


def test_frequency_gives_the_spacing_and_a_bad_one_is_named(tmp_path: Path):
    days = pd.date_range("2020-01-01", periods=60, freq="2D")
    name = csv(tmp_path, days)
    assert load(tmp_path, csv=name).notes == ""  # every other day is the usual spacing
    assert "has 59 missing D (frequency) stamps in 59 gaps" in fails(tmp_path, csv=name, frequency="D")
    assert "'frequency' must be a pandas frequency such as D, W-SUN" in fails(tmp_path, csv=name, frequency="fortnight")
    assert "'gaps' must be one of error, fill, keep" in fails(tmp_path, csv=name, gaps="close")
    (tmp_path / "plain.csv").write_text("value\n1\n2\n3\n4\n")
    assert "'gaps' needs a time column" in str(
        pytest.raises(
            UserError, load_series, resolve_dataset({"csv": "plain.csv", "column": "value", "gaps": "keep"}, tmp_path)
        ).value  # fmt: skip
    )
