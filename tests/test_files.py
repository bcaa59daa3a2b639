"""Users' files as they have them: separators, decimal commas, thousands separators, encodings, a
byte-order mark, CRLF, quoted numbers, Parquet, a time column (named or detected), footer rows, outliers
and gaps; each mistake one line naming the file, the row and the column, and each hint, followed, reads
the file. The files are written byte for byte as the programs that make them write them."""

from __future__ import annotations

import codecs
import gzip
import re
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.datasets import load_series, resolve_dataset
from bench.datasets.files import HEAD_BYTES, sniff
from bench.errors import UserError
from clitools import run_in_process, write
from runspecs import run_scenario

VALUES = [1.5, 2.25, 3.0, 4.75, 5.5]


def load(tmp_path: Path, **ref: object):
    return load_series(resolve_dataset(ref, tmp_path))


def fails(tmp_path: Path, **ref: object) -> str:
    """The one-line message reading the dataset stops with."""
    with pytest.raises(UserError) as info:
        load(tmp_path, **ref)
    message = str(info.value)
    assert "\n" not in message
    return message


def follow(message: str) -> list[dict]:
    """The keys each option of a message's hint ('... add KEY: VALUE [with KEY: VALUE] or ...') adds."""
    hint = re.sub(r" \(reads [^)]*\)", "", message.rsplit(" add ", 1)[1])
    return [yaml.safe_load("{" + option.replace(" with ", ", ") + "}") for option in hint.split(" or ")]


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
    for key, value in (("sep", ";"), ("decimal", ","), ("thousands", ","), ("encoding", "cp1252")):
        with pytest.raises(UserError, match=f"'{key}' applies to CSV files only"):
            load(tmp_path, parquet="l.parquet", column="load", **{key: value})


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
    "thousands not a separator": (
        "i,v\n0,1\n",
        {"thousands": "_"},
        r"'thousands' must be one of ',', '\.', ' ', \"'\"",
    ),
    "thousands is the decimal": ("i,v\n0,1\n", {"thousands": "."}, r"'thousands' and 'decimal' are both '\.'; .*"),
    "time_format without %": ("i,v\n0,1\n", {"time_format": "dd.mm.yyyy"}, r"'time_format' must be a strftime"),
    "dayfirst not a bool": ("i,v\n0,1\n", {"dayfirst": "yes"}, r"'dayfirst' must be true or false, got 'yes'"),
    "both date keys": ("i,v\n0,1\n", {"dayfirst": True, "time_format": "%d"}, r"'time_format' or 'dayfirst', not"),
    "unknown encoding": ("i,v\n0,1\n", {"encoding": "utf-9"}, r"unknown encoding 'utf-9'; did you mean 'utf"),
    "bad outliers": ("i,v\n0,1\n", {"outliers": "trim"}, r"'outliers' must be one of warn, error, drop, clip, keep"),
    "dayfirst, no dates": ("i,v\n0,1\n", {"dayfirst": True}, r"g.csv: dayfirst reads the time column, and the first"),
    "format that does not fit": (
        "t,v\n2024-01-01,1\n2024-01-02,2\n",
        {"time": "t", "time_format": "%d.%m.%Y"},
        r"row 1, column 't': '2024-01-01' is not a date or time in the format %d.%m.%Y",
    ),
    "dates of no format": ("t,v\nJan 2020,1\n", {"time": "t"}, r"cannot tell the date format from 'Jan 2020'; give"),
    "detected time not increasing": (
        "t,v\n2024-01-03,1\n2024-01-02,2\n2024-01-01,3\n",
        {},
        r"row 2, column 't': '2024-01-02' does not come after '2024-01-03'; the time column 't' \(detected\) must",
    ),
    "day first told, every row": (  # 02.13.2020 reads only month first: one format for every row
        "t,v\n01.02.2020,1\n12.02.2020,2\n02.13.2020,3\n",
        {"dayfirst": True, "time": "t"},
        r"row 3, column 't': '02.13.2020' is not a date or time in the format %d.%m.%Y",
    ),
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


def german(value: float) -> str:
    return f"{value:,.1f}".translate(str.maketrans(",.", ".,"))


def test_an_excel_export_reads_by_following_each_hint(tmp_path: Path) -> None:
    # Excel on Windows, "CSV (semicolon delimited)": cp1252, ';', 1.234,5, day-first dates, CRLF
    values = [1000 + 1.5 * d for d in range(1, 21)]
    header = "Datum;Umsatz in €;Bemerkung ä"
    rows = [f"{d:02d}.01.2020;{german(v)};Lieferung" for d, v in zip(range(1, 21), values)]
    (tmp_path / "umsatz.csv").write_bytes("\r\n".join([header, *rows, ""]).encode("cp1252"))
    ref = {"csv": "umsatz.csv", "column": "Umsatz in €"}
    hints = [
        rf"umsatz.csv: byte {header.index('€')} \(the header\) is 0x80, which is not UTF-8 text; .* encoding: cp1252$",
        r"row 13, column 'Datum': '13.01.2020' is not a date read month first .* add dayfirst: true or time_format: ",
        r"row 1, column 'Umsatz in €': '1.001,5' is not a number; add decimal: ',' with thousands: '.' \(reads 1001.5",
    ]
    for hint in hints:
        message = fails(tmp_path, **ref)
        assert re.search(hint, message), message
        ref.update(follow(message)[0])
    series = load(tmp_path, **ref)
    assert series.values.tolist() == values and series.notes == "time: detected column 'Datum'"


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_a_byte_that_is_not_the_encoding_is_named_with_its_offset_and_row(tmp_path: Path, bom: bytes) -> None:
    text = "t,v,Kunde\n" + "".join(f"2024-01-{d:02d},{d},{'Müller' if d == 3 else 'Maier'}\n" for d in range(1, 6))
    (tmp_path / "n.csv").write_bytes(bom + text.encode("latin-1"))
    message = fails(tmp_path, csv="n.csv", column="v")
    assert f"n.csv: byte {len(bom) + text.index('ü')} (row 3) is 0xfc, which is not UTF-8 text" in message
    if bom:  # Excel's "CSV UTF-8" with one character pasted from elsewhere: only correcting it reads the file
        assert message.endswith("though the file starts as UTF-8 (a byte-order mark); correct it")
    else:
        assert load(tmp_path, csv="n.csv", column="v", **follow(message)[0]).values.tolist() == [1, 2, 3, 4, 5]


def test_utf16_is_suggested_and_its_separator_detected(tmp_path: Path) -> None:
    (tmp_path / "u.csv").write_bytes(
        ("t;v\r\n" + "".join(f"{i};{v}\r\n" for i, v in enumerate(VALUES))).encode("utf-16")
    )
    message = fails(tmp_path, csv="u.csv", column="v")
    assert "byte 0 (the header) is 0xff" in message and message.endswith("add encoding: utf-16")
    assert load(tmp_path, csv="u.csv", column="v", **follow(message)[0]).values.tolist() == VALUES


def test_a_libreoffice_export_reads_as_it_is(tmp_path: Path) -> None:
    # LibreOffice Calc, "Text CSV" with "Quote all text cells" (these numbers were typed as text): UTF-8, no mark
    rows = "".join(f'"2023-{m:02d}-01","{v}","Zähler 1"\n' for m, v in enumerate(VALUES, 1))
    (tmp_path / "lo.csv").write_bytes(('"Monat","Verbrauch (m³)","Notiz"\n' + rows).encode())
    series = load(tmp_path, csv="lo.csv", column="Verbrauch (m³)")
    assert series.values.tolist() == VALUES and series.notes == "time: detected column 'Monat'"


@pytest.mark.parametrize("writer", ["csv", "parquet"])
def test_a_pandas_frame_with_a_datetime_index_reads(tmp_path: Path, writer: str) -> None:
    frame = pd.DataFrame({"load": VALUES}, index=pd.date_range("2024-03-31", periods=5, freq="h", tz="Europe/Berlin"))
    getattr(frame, f"to_{writer}")(tmp_path / f"f.{writer}")  # the index is the first column, unnamed
    series = load(tmp_path, **{writer: f"f.{writer}"}, column="load")
    name = "Unnamed: 0" if writer == "csv" else "index"
    assert series.values.tolist() == VALUES and series.notes == f"time: detected column '{name}'"


@pytest.mark.parametrize(
    "value,hint",
    [
        ("1,5", "decimal: ',' (reads 1.5)"),
        ("1,002.5", "thousands: ',' (reads 1002.5)"),
        ("1.002,5", "decimal: ',' with thousands: '.' (reads 1002.5)"),
        ("1,002", "decimal: ',' (reads 1.002) or thousands: ',' (reads 1002)"),  # either: the hint gives both
        ("1 002,5", "decimal: ',' with thousands: ' ' (reads 1002.5)"),
        ("1'002.5", 'thousands: "\'" (reads 1002.5)'),
    ],
)
def test_each_number_hint_followed_reads_the_file(tmp_path: Path, value: str, hint: str) -> None:
    # quoted, as a spreadsheet quotes a cell holding the separator
    write(tmp_path / "n.csv", "t,v\n" + "".join(f'2024-01-{d:02d},"{value}"\n' for d in range(1, 4)))
    message = fails(tmp_path, csv="n.csv", column="v")
    assert message.endswith(f"n.csv: row 1, column 'v': {value!r} is not a number; add {hint}")
    reads = [float(r) for r in re.findall(r"\(reads ([^)]*)\)", hint)]
    assert [load(tmp_path, csv="n.csv", column="v", **keys).values[0] for keys in follow(message)] == reads


def test_day_first_dates_are_read_one_way_as_the_user_says(tmp_path: Path) -> None:
    write(tmp_path / "d.csv", "Datum;Wert\n" + "".join(f"{d:02d}.01.2020;{d}\n" for d in range(1, 21)))
    message = fails(tmp_path, csv="d.csv", column="Wert")
    assert "d.csv: row 13, column 'Datum': '13.01.2020' is not a date read month first" in message
    options = follow(message)
    assert options == [{"dayfirst": True}, {"time_format": "%d.%m.%Y"}]
    for keys in options:
        assert load(tmp_path, csv="d.csv", column="Wert", **keys).values.tolist() == list(range(1, 21))
    # a date that starts with its year is never day first
    write(tmp_path / "iso.csv", "t,v\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 21)))
    assert len(load(tmp_path, csv="iso.csv", column="v", dayfirst=True)) == 20


MONTHS = "".join(f"1949-{m:02d},{100 + m}\n" for m in range(1, 13))
DAYS = "".join(f"2024-01-{d:02d};{d},5;{d}\n" for d in range(1, 13))
TWO_DAYS = len("2024-01-01;1,5;1\n2024-01-02;2,5;2\n")
# a row is shown by the columns the series reads (the time column and the value; not 'Menge')
FOOTERS = {
    "total": ("Month,Passengers\n" + MONTHS + "Total,31234.5\n", {}, r"row 13 \('Total', 31234.5\) is not data: "),
    "average": ("Datum;Wert;Menge\n" + DAYS + "Average;6,5;\n", {"decimal": ","}, r"row 13 \('Average', 6.5\)"),
    "empty row inside": (
        "Datum;Wert;Menge\n" + DAYS[:TWO_DAYS] + ";;\n" + DAYS[TWO_DAYS:],
        {"decimal": ","},
        r"row 3 \(empty\)",
    ),
    "units row": ("Datum;Wert;Menge\n;kWh;Stk\n" + DAYS, {"decimal": ","}, r"row 1 \('', 'kWh'\) is not data"),
    "named time column": ("Month,Passengers\n" + MONTHS + "Total,31234.5\n", {"time": "Month"}, r"row 13, column"),
    "total, no time column": (
        "i,v\n" + MONTHS.replace("1949-", "") + "Total,1278\n",
        {},
        r"row 13 \('Total', \.\.\.\)",
    ),
    "sum, no label": (
        "i,v\n" + MONTHS.replace("1949-", "") + "13,1278\n",
        {},
        r"row 13, column 'v': 1278.0 is the sum",
    ),
}


@pytest.mark.parametrize("case", sorted(FOOTERS))
def test_a_row_that_is_not_data_is_named_and_the_file_reads_without_it(tmp_path: Path, case: str) -> None:
    text, extra, pattern = FOOTERS[case]
    column = "Wert" if "Wert" in text else text.split("\n")[0].split(",")[1]
    write(tmp_path / "f.csv", text)
    message = fails(tmp_path, csv="f.csv", column=column, **extra)
    assert re.search(pattern, message) and "remove the row" in message, message
    row = int(re.search(r"row (\d+)", message).group(1))
    lines = text.splitlines(keepends=True)
    write(tmp_path / "f.csv", "".join(lines[:row] + lines[row + 1 :]))
    assert len(load(tmp_path, csv="f.csv", column=column, **extra)) == 12


@pytest.mark.parametrize("sep,end", [(",", ",,\n"), (";", ";;\r\n;;\r\n")])
def test_empty_rows_at_the_end_are_not_gaps(tmp_path: Path, sep: str, end: str) -> None:
    rows = "".join(f"{i}{sep}{v}{sep}1\r\n" for i, v in enumerate(VALUES))
    (tmp_path / "e.csv").write_bytes(f"i{sep}v{sep}w\r\n{rows}{end}".encode())
    series = load(tmp_path, csv="e.csv", column="v", missing="interpolate")
    assert series.values.tolist() == VALUES and series.notes == ""


def test_a_first_column_of_whole_numbers_is_not_a_time_column(tmp_path: Path) -> None:
    write(
        tmp_path / "ids.csv", "id,v\n" + "".join(f"{i},{v}\n" for i, v in zip((1005, 1003, 1009, 1001, 1002), VALUES))
    )
    series = load(tmp_path, csv="ids.csv", column="v")  # as years, 1003 after 1005 would not be in order
    assert series.values.tolist() == VALUES and series.notes == ""


def test_an_outlier_is_a_warning_and_stops_drops_clips_or_stays_as_the_user_says(tmp_path: Path) -> None:
    from bench.datasets.checks import check_series
    from bench.windows import prepare

    values = [10.0 + i % 5 for i in range(30)]
    values[17] = 1250.0  # 12.50 typed without its decimal point
    flags = [1e6 if i == 5 else 0.0 for i in range(30)]  # mostly constant (MAD 0): left to the data checks
    rows = "".join(f"2024-01-{i + 1:02d},{v},{f}\n" for i, (v, f) in enumerate(zip(values, flags)))
    write(tmp_path / "o.csv", "t,v,flag\n" + rows)
    ref = {"csv": "o.csv", "target": "v", "features": ["v", "flag"]}
    warned = load(tmp_path, **ref)  # read as it is, and said before anything runs
    assert warned.values.tolist() == values
    (check,) = [c for c in check_series(warned, prepare(warned.values, 0.3, False, "minmax"), [2], [1], False)
                if c.code == "outlier"]  # fmt: skip
    assert check.message.startswith("1 value far from the rest of its column, the first at point 18 of column 'v': "
                                    "1250 is 835 MADs from the median 12")  # fmt: skip
    message = fails(tmp_path, **ref, outliers="error")
    assert "o.csv: row 18, column 'v': 1250.0 is 835 MADs from the column's median 12 " in message
    assert follow(message) == [{"outliers": "keep"}]
    kept = load(tmp_path, **ref, outliers="keep")
    assert kept.values.tolist() == values and kept.inputs[5, 1] == 1e6
    assert kept.spec.params["outliers"] == "keep"
    assert not [c for c in check_series(kept, prepare(kept.values, 0.3, False, "minmax"), [2], [1], False)
                if c.code == "outlier"]  # fmt: skip
    dropped = load(tmp_path, **ref, outliers="drop")
    assert len(dropped.values) == 29 and 1250.0 not in dropped.values and "outliers: dropped 1 rows" in dropped.notes
    clipped = load(tmp_path, **ref, outliers="clip")
    median, mad = 12.0, 1.4826 * 1.0
    assert clipped.values[17] == pytest.approx(median + 20 * mad) and "clipped 1 values" in clipped.notes


def test_the_packaged_series_read_as_files(tmp_path: Path) -> None:
    for name, column in (("airline", "Passengers"), ("shampoo", "Sales"), ("sunspots", "SUNACTIVITY")):
        (path,) = (p for p in resources.files("bench.datasets").iterdir() if p.name.startswith(name))
        read = load(tmp_path, csv=str(path), column=column)
        assert read.values.tolist() == load(tmp_path, name=name).values.tolist(), name


def test_new_options_are_stored_only_when_given(tmp_path: Path) -> None:
    write(tmp_path / "o.csv", "t,v\n2024-01-01,1\n")
    bare = resolve_dataset({"csv": "o.csv", "column": "v"}, tmp_path).params
    assert set(bare) == {"csv", "column", "sha256"}
    defaults = {"encoding": "UTF-8-SIG", "dayfirst": False, "outliers": "warn", "gaps": "error"}
    assert resolve_dataset({"csv": "o.csv", "column": "v", **defaults}, tmp_path).params == bare
    given = {"encoding": "Windows-1252", "thousands": "'", "time_format": "%Y-%m-%d", "outliers": "keep"}
    params = resolve_dataset({"csv": "o.csv", "column": "v", **given}, tmp_path).params
    assert params == {**bare, **given, "encoding": "cp1252"}  # the codec's own name: one run id for both spellings


def xlsx(path: Path) -> None:
    """A workbook's first entries, in the order Excel writes them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("[Content_Types].xml", "_rels/.rels", "xl/_rels/workbook.xml.rels", "xl/workbook.xml"):
            z.writestr(name, "<x/>")


def ods(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<x/>")


def archive(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.csv", "v\n1\n")


NOT_TEXT = {
    "xlsx as csv": (
        "data.xlsx",
        xlsx,
        "csv",
        "data.xlsx looks like an Excel workbook (a zip file), not a CSV file: read it with excel: FILE",
    ),
    "xlsx as parquet": (
        "data.xlsx",
        xlsx,
        "parquet",
        "data.xlsx looks like an Excel workbook (a zip file), not a Parquet",
    ),
    "xls": (
        "old.csv",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
        "csv",
        "old.csv looks like an Excel 97-2003 workbook",
    ),
    "ods": ("s.ods", ods, "csv", "s.ods looks like an OpenDocument spreadsheet (a zip file), not a CSV file: export"),
    "zip": (
        "a.zip",
        archive,
        "csv",
        "a.zip looks like a zip archive",
    ),
    "png": (
        "plot.png",
        b"\x89PNG\r\n\x1a\n" + bytes(64),
        "csv",
        "plot.png looks like a PNG image, not a CSV file: give",
    ),
    "jpeg": ("p.csv", b"\xff\xd8\xff\xe0" + bytes(64), "csv", "p.csv looks like a JPEG image"),
    "gif": ("p.csv", b"GIF89a" + bytes(64), "csv", "p.csv looks like a GIF image"),
    "pdf": ("r.csv", b"%PDF-1.7\n%\xe2\xe3\n", "csv", "r.csv looks like a PDF document, not a CSV file"),
    "gzip": (
        "v.csv.gz",
        gzip.compress(b"v\n1\n2\n"),
        "csv",
        "v.csv.gz looks like a gzip-compressed file, not a CSV file: extract",
    ),
    "nul": (
        "n.csv",
        b"v\n" + b"1\n" * 617 + b"2\x00\n",
        "csv",
        "n.csv looks like binary data (a NUL byte at byte 1,237), not a CSV file: if it was a CSV file it is damaged",
    ),
    "parquet as csv": (
        "p.parquet",
        lambda p: pd.DataFrame({"v": VALUES}).to_parquet(p),
        "csv",
        "p.parquet is a Parquet file, not a CSV file: use parquet: instead of csv:",
    ),
    "csv as parquet": (
        "t.parquet",
        b"v\n1\n2\n",
        "parquet",
        "t.parquet is text, not a Parquet file (those start with PAR1); if it is a CSV file, use csv: instead of "
        "parquet:",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_TEXT))
def test_a_file_that_is_not_what_its_key_says_is_named_from_its_first_bytes(tmp_path: Path, case: str) -> None:
    name, content, fmt, message = NOT_TEXT[case]
    if isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    else:
        content(tmp_path / name)
    assert f"dataset: {message}" in fails(tmp_path, **{fmt: name, "column": "v"})


def test_only_the_first_bytes_are_sniffed(tmp_path: Path) -> None:
    (tmp_path / "late.csv").write_bytes(b"v\n" + b"1\n" * HEAD_BYTES + b"\x00")
    (tmp_path / "early.csv").write_bytes(b"v\n" + b"1\n" * 100 + b"\x00")
    assert sniff(tmp_path / "late.csv") is None
    assert sniff(tmp_path / "early.csv") == "binary data (a NUL byte at byte 202)"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_named_and_its_hint_reads_it(tmp_path: Path, codec: str) -> None:
    (tmp_path / "u.csv").write_bytes(("t;v\r\n" + "".join(f"{i};{v}\r\n" for i, v in enumerate(VALUES))).encode(codec))
    message = fails(tmp_path, csv="u.csv", column="v")
    order = codec[-2:].upper()
    assert message == f"dataset: u.csv is UTF-16 {order} text without a byte-order mark: add encoding: {codec}"
    assert load(tmp_path, csv="u.csv", column="v", **follow(message)[0]).values.tolist() == VALUES


def test_a_data_path_that_is_a_directory_names_a_file_in_it(tmp_path: Path) -> None:
    write(tmp_path / "data" / "sales.csv", "v\n1\n")
    write(tmp_path / "data" / "notes.txt", "-")
    assert fails(tmp_path, csv="data", column="v") == (
        "dataset: data/ is a directory, not a CSV file; give a .csv file in it, e.g. csv: data/sales.csv"
    )
    assert fails(tmp_path, parquet="data/", column="v") == (
        "dataset: data/ is a directory, not a Parquet file; give the path of a .parquet file"
    )


def test_a_workbook_stops_the_run_before_anything_is_written(tmp_path: Path, cli) -> None:
    xlsx(tmp_path / "sales.xlsx")
    write(tmp_path / "s.yaml", "name: s\ndataset: {csv: sales.xlsx, column: v}\nepochs: 1\n")
    ran = cli("run", "s.yaml")
    assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.strip().splitlines() == [
        "error: s.yaml:2: dataset: sales.xlsx looks like an Excel workbook (a zip file), not a CSV file: "
        "read it with excel: FILE (sheet: NAME for another than the first; pip install 'lstm-bench[excel]')"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml", "sales.xlsx"]


def test_an_excel_workbook_reads_by_sheet_and_each_mistake_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    dates = pd.date_range("2024-01-01", periods=12, freq="MS")
    with pd.ExcelWriter(tmp_path / "sales.xlsx") as book:
        pd.DataFrame({"month": dates, "v": VALUES * 2 + VALUES[:2]}).to_excel(book, sheet_name="Summary", index=False)
        pd.DataFrame({"month": dates, "v": np.arange(12.0)}).to_excel(book, sheet_name="Detail", index=False)
    first = load(tmp_path, excel="sales.xlsx", column="v")
    assert first.values.tolist() == VALUES * 2 + VALUES[:2] and first.spec.label == "sales:v"
    assert load(tmp_path, excel="sales.xlsx", column="v", sheet="Detail").values.tolist() == list(range(12))
    assert load(tmp_path, excel="sales.xlsx", column="v", sheet=1).values.tolist() == list(range(12))
    assert "sales.xlsx has no sheet 'Totals'; its sheets are 'Summary', 'Detail'" in fails(
        tmp_path, excel="sales.xlsx", column="v", sheet="Totals"
    )
    assert "'decimal' applies to CSV files only" in fails(tmp_path, excel="sales.xlsx", column="v", decimal=",")
    write(tmp_path / "plain.csv", "v\n1\n2\n")
    assert "'sheet' applies to Excel workbooks only" in fails(tmp_path, csv="plain.csv", column="v", sheet=0)
    assert "plain.csv is text, not an Excel workbook; if it is a CSV file, use csv: instead" in fails(
        tmp_path, excel="plain.csv", column="v"
    )


def test_reading_excel_without_its_package_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    xlsx(tmp_path / "sales.xlsx")

    def missing(*args, **kwargs):
        raise ImportError("Missing optional dependency 'openpyxl'")

    monkeypatch.setattr(pd, "ExcelFile", missing)
    message = fails(tmp_path, excel="sales.xlsx", column="v")
    assert message == "dataset: reading sales.xlsx needs the openpyxl package: pip install 'lstm-bench[excel]'"


# --- memory while reading -----------------------------------------------------------------------------

#: Bytes a row a series may take while it is read, above what the process held before: a time stamp and a
#: value are 16 bytes as numbers; reading them cost 143 (166 with a value that is text: the error path).
READ_BYTES_PER_ROW = 200
MEASURE = """
import sys
from pathlib import Path
import psutil
from bench.datasets import load_series, resolve_dataset
from bench.errors import UserError
def read(path):
    return len(load_series(resolve_dataset({"csv": path, "column": "value", "time": "time"}, Path("."))).values)
read(sys.argv[2])  # what the first file of any size costs: the modules the readers import
before = psutil.Process().memory_info().rss
try:
    n = read(sys.argv[1])
except UserError as exc:
    n = str(exc)
# the peak of this program's memory (ru_maxrss would keep the parent's from before exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak * 1024 - before, "|", n)
"""


def big_csv(path: Path, rows: int, bad_row: int | None = None) -> Path:
    """A minute series with a time stamp, a value and three text columns the series does not use."""
    times = pd.date_range("2000-01-01", periods=rows, freq="min").strftime("%Y-%m-%d %H:%M:%S")
    values = np.round(np.sin(np.arange(rows) / 50.0), 5).astype(str)
    if bad_row is not None:
        values[bad_row] = "n/a?"
    text = "station-north-0001-sensor-block"
    with open(path, "w") as fh:
        fh.write("time,value,site,sensor,comment\n")
        fh.writelines(f"{t},{v},{text},{text},{text}\n" for t, v in zip(times, values))
    return path


def peak_while_reading(path: Path) -> tuple[int, str]:
    import subprocess
    import sys

    if not Path("/proc/self/status").exists():
        pytest.skip("the peak memory of a process is read from Linux's /proc")

    small = big_csv(path.with_name("small.csv"), 100)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(small)], capture_output=True, text=True, check=True
    )
    grown, _, read = out.stdout.strip().partition(" | ")
    return int(grown), read


def test_reading_a_large_file_takes_memory_by_its_rows_not_its_size(tmp_path: Path) -> None:
    rows = 600_000
    path = big_csv(tmp_path / "big.csv", rows)
    grown, read = peak_while_reading(path)
    assert read == str(rows)
    # 46 MB of file, 9.6 MB of numbers: the text columns nobody asked for are not read
    assert grown <= READ_BYTES_PER_ROW * rows, f"{grown / rows:.0f} bytes a row"


def test_a_large_file_malformed_near_its_end_is_one_line_within_the_same_memory(tmp_path: Path) -> None:
    rows = 600_000
    grown, read = peak_while_reading(big_csv(tmp_path / "bad.csv", rows, bad_row=rows - 10))
    assert read.startswith("dataset:") and f"row {rows - 9}" in read and "'n/a?' is not a number" in read
    assert grown <= READ_BYTES_PER_ROW * rows, f"{grown / rows:.0f} bytes a row"


def _long(order: str) -> str:
    """Three monthly series of 24 points as a long file, series after series or date after date."""
    dates = [f"{y}-{m:02d}-01" for y in (2020, 2021) for m in range(1, 13)]
    rows = [(s, d, f"{i + 10 * k}") for k, s in enumerate(("gdp", "cpi", "unemp")) for i, d in enumerate(dates)]
    if order == "dates":
        rows.sort(key=lambda r: r[1])
    return "series_id,date,value\n" + "".join(f"{s},{d},{v}\n" for s, d, v in rows)


@pytest.mark.parametrize("order", ["series", "dates"])
@pytest.mark.parametrize("time", [None, "date"])
def test_a_long_panel_is_refused_naming_the_column_that_tells_the_series_apart(tmp_path: Path, order, time):
    # read as one series, it ran as 72 points of three series run together (with time: 'does not come after')
    write(tmp_path / "long.csv", _long(order))
    message = fails(tmp_path, csv="long.csv", column="value", **({"time": time} if time else {}))
    assert (
        message.startswith("dataset: ")
        and (
            "the rows hold several series, told apart by column 'series_id' (3: 'gdp', 'cpi', 'unemp'), each with its "
            "own 'date' dates"
        )
        in message
    ), message
    assert "give one series' rows per file" in message
    frame = pd.read_csv(tmp_path / "long.csv")
    frame.to_parquet(tmp_path / "long.parquet")
    assert "told apart by column 'series_id'" in fails(tmp_path, parquet="long.parquet", column="value")


def test_a_panel_of_years_is_refused_when_the_year_is_named_the_time(tmp_path: Path):
    firms = "".join(f"{f},{y},{i * 1.5 + k}\n" for k, f in enumerate(("GM", "US Steel", "GE")) for i, y in
                    enumerate(range(1935, 1955)))  # fmt: skip
    write(tmp_path / "grunfeld.csv", "invest_firm,year,invest\n" + firms)
    message = fails(tmp_path, csv="grunfeld.csv", column="invest", time="year")
    assert "told apart by column 'invest_firm' (3: 'GM', 'US Steel', 'GE'), each with its own 'year' dates" in message


def test_one_series_with_labels_or_split_time_columns_is_not_a_panel(tmp_path: Path):
    months = [f"{y}-{m:02d}-01" for y in (2020, 2021) for m in range(1, 13)]
    regime = "".join(f"{d},{'before' if i < 12 else 'after'},{i}\n" for i, d in enumerate(months))
    write(tmp_path / "regime.csv", "date,regime,v\n" + regime)  # labels in blocks, but each date once
    assert len(load(tmp_path, csv="regime.csv", column="v").values) == 24
    split = "".join(f"{y},{m},{'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[m - 1]},{m + y}\n"
                    for y in range(2000, 2004) for m in range(1, 13))  # fmt: skip
    write(tmp_path / "split.csv", "year,month,name,v\n" + split)  # no column of dates: a year and a month
    assert len(load(tmp_path, csv="split.csv", column="v").values) == 48


def test_a_long_panel_stops_the_command_in_one_line(tmp_path: Path):
    write(tmp_path / "long.csv", _long("series"))
    write(tmp_path / "s.yaml", "name: p\ndataset: {csv: long.csv, column: value}\nlook_back: 3\nbatch_size: 1\n")
    ran = run_in_process("validate", tmp_path / "s.yaml", cwd=tmp_path)
    err = ran.stderr.strip()
    assert ran.returncode == 2 and "told apart by column 'series_id'" in err and "\n" not in err, err
