"""Users' files as they have them: separators, decimal commas, a byte-order mark, CRLF, quoted numbers,
Parquet, a time column and gaps; each mistake one line naming the file, the row and the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.datasets import load_series, resolve_dataset
from bench.errors import UserError
from clitools import write
from runspecs import run_scenario

VALUES = [1.5, 2.25, 3.0, 4.75, 5.5]


def load(tmp_path: Path, **ref: object):
    return load_series(resolve_dataset(ref, tmp_path))


def test_a_european_export_reads_as_it_is(tmp_path: Path) -> None:
    rows = "".join(f"0{i + 1}.01.2024;{str(v).replace('.', ',')}\r\n" for i, v in enumerate(VALUES))
    (tmp_path / "export.csv").write_bytes(("\ufeffdatum; wert \r\n" + rows).encode())
    series = load(tmp_path, csv="export.csv", column="wert", decimal=",", time="datum")
    assert series.values.tolist() == VALUES and series.notes == ""


def test_the_separator_is_detected(tmp_path: Path) -> None:
    for name, sep in (("comma", ","), ("semicolon", ";"), ("tab", "\t"), ("pipe", "|")):
        write(tmp_path / f"{name}.csv", f"t{sep}v\n" + "".join(f"{i}{sep}{v}\n" for i, v in enumerate(VALUES)))
        assert load(tmp_path, csv=f"{name}.csv", column="v").values.tolist() == VALUES, name


def test_quoted_numbers_read_as_numbers(tmp_path: Path) -> None:
    write(tmp_path / "q.csv", '"v","w"\n' + "".join(f'"{v}","x"\n' for v in VALUES))
    assert load(tmp_path, csv="q.csv", column="v").values.tolist() == VALUES


def test_a_decimal_comma_without_decimal_key_is_explained(tmp_path: Path) -> None:
    write(tmp_path / "d.csv", "datum;wert\n2024-01-01;1,5\n2024-01-02;2,5\n")
    with pytest.raises(UserError, match=r"d.csv: row 1, column 'wert': '1,5' is not a number; .*decimal: ','"):
        load(tmp_path, csv="d.csv", column="wert")


def test_parquet_takes_the_same_keys(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=5, freq="h")
    pd.DataFrame({"time": times, "load": [1.5, np.nan, 3.0, 4.75, 5.5]}).to_parquet(tmp_path / "l.parquet")
    series = load(tmp_path, parquet="l.parquet", column="load", time="time", missing="interpolate")
    assert series.values.tolist() == [1.5, 2.25, 3.0, 4.75, 5.5]
    assert series.notes == "missing: interpolated 1 values in 'load'"
    with pytest.raises(UserError, match="'sep' applies to CSV files only"):
        load(tmp_path, parquet="l.parquet", column="load", sep=";")


@pytest.mark.parametrize(
    "missing,values,note",
    [
        ("drop", [1.5, 3.0, 5.5], "missing: dropped 2 rows with no value in 'v'"),
        ("interpolate", [1.5, 2.25, 3.0, 4.25, 5.5], "missing: interpolated 2 values in 'v'"),
        ("ffill", [1.5, 1.5, 3.0, 3.0, 5.5], "missing: forward-filled 2 values in 'v'"),
    ],
)
def test_gaps_are_repaired_only_when_asked_and_counted(tmp_path: Path, missing: str, values: list, note: str):
    write(tmp_path / "g.csv", "i,v\n0,1.5\n1,\n2,3.0\n3,NA\n4,5.5\n")
    series = load(tmp_path, csv="g.csv", column="v", missing=missing)
    assert series.values.tolist() == values and series.notes == note


BAD = {
    "gap by default": ("i,v\n0,1\n1,\n2,3\n", {}, r"g.csv: row 2, column 'v': missing value \(1 in all\); add missing"),
    "text": ("i,v\n0,1\n1,abc\n", {}, r"g.csv: row 2, column 'v': 'abc' is not a number"),
    "time not increasing": (
        "t,v\n2024-01-01,1\n2024-01-03,2\n2024-01-02,3\n",
        {"time": "t"},
        r"g.csv: row 3, column 't': '2024-01-02' does not come after '2024-01-03'; the time column must be strictly",
    ),
    "duplicate time": ("t,v\n2024-01-01,1\n2024-01-01,2\n", {"time": "t"}, r"row 2, column 't'.*strictly increasing"),
    "time not a date": ("t,v\n2024-01-01,1\nsoon,2\n", {"time": "t"}, r"row 2, column 't': 'soon' is not a date"),
    "ffill from nothing": ("i,v\n0,\n1,2\n", {"missing": "ffill"}, r"row 1, column 'v': the first value is missing"),
    "unknown column": ("i,wert\n0,1\n", {}, r"column 'v' not in .*g.csv; its columns are i, wert"),
    "unknown key": ("i,v\n0,1\n", {"decimals": ","}, r"a csv dataset has no key 'decimals'; did you mean 'decimal'"),
    "bad policy": ("i,v\n0,1\n", {"missing": "zero"}, r"'missing' must be one of error, drop, interpolate, ffill"),
    "long separator": ("i,v\n0,1\n", {"sep": ";;"}, r"'sep' must be one character"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_file_is_one_line(tmp_path: Path, case: str) -> None:
    text, extra, pattern = BAD[case]
    write(tmp_path / "g.csv", text)
    with pytest.raises(UserError, match=pattern) as info:
        load(tmp_path, csv="g.csv", column="v", **extra)
    assert "\n" not in str(info.value)


def test_a_repaired_gap_is_in_the_runs_notes(tmp_path: Path, workers) -> None:
    rows = "".join(f"{i};{'' if i in (7, 30) else f'{np.sin(i / 3):.4f}'.replace('.', ',')}\n" for i in range(80))
    write(tmp_path / "s.csv", "i;v\n" + rows)
    text = (
        "name: s\ndataset: {csv: s.csv, column: v, decimal: ',', missing: interpolate}\nepochs: 2\n"
        "backend: jax\nengine: scan\n"
    )
    (run,) = workers["jax"].submit(run_scenario, text, str(tmp_path)).result()
    assert run.status == "ok" and run.notes == "missing: interpolated 2 values in 'v'"
    assert "'missing': 'interpolate'" in run.spec.as_flat()["dataset_params"].replace('"', "'")
