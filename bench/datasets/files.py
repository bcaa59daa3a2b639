"""Users' files as spreadsheets write them: CSV with any common separator, decimal commas, thousands
separators, any encoding (UTF-8 with or without a byte-order mark by default), CRLF line endings and
quoted numbers, or Parquet; a time column, named or detected; a policy for gaps.

A file dataset is `{csv: FILE, column: NAME}` (or `{parquet: FILE, ...}`), or with inputs besides the
target `{csv: FILE, target: NAME, features: [NAME, ...]}`, with optional `sep` (detected by default),
`decimal`, `thousands`, `encoding`, `time` (a date-like first column is detected), `time_format`,
`dayfirst`, `missing` and `outliers`; which rows are data (footers, outliers) is `bench.datasets.rows`.
Every problem is one line naming the file, the row and the column. The file's content hash, computed
while streaming it, identifies the data, so the same file elsewhere gives the same run ids.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass
from encodings.aliases import aliases
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.datasets import panels, rows, spacing
from bench.errors import UserError, closest

FORMATS = ("csv", "parquet", "excel")
#: How messages name each format.
FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet", "excel": "Excel"}
#: Reading Excel needs a package of its own (`pip install 'lstm-bench[excel]'`).
EXCEL_INSTALL = "pip install 'lstm-bench[excel]'"
#: What to do with a missing value of the series (an empty cell, NA): refuse, or repair and say how many.
MISSING = ("error", "drop", "interpolate", "ffill")
#: What to do with a value far from the rest of its column: warn (a data check), stop, drop its row, clip it, keep it.
OUTLIERS = ("warn", "error", "drop", "clip", "keep")
CSV_ONLY = ("sep", "decimal", "thousands", "encoding")
KEYS = (*FORMATS, "column", "target", "features", *CSV_ONLY, "sheet", "time", "time_format", "dayfirst", "frequency",
        "gaps", "missing", "outliers")  # fmt: skip
#: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one).
ENCODING = "utf-8-sig"
#: Separators tried when `sep` is not given.
SEPARATORS = ",;\t|"
SNIFF_BYTES = 64 * 1024
#: How many of a file's first bytes `sniff` reads.
HEAD_BYTES = 8 * 1024
PARQUET = "a Parquet file"
SPREADSHEETS = (
    "an Excel workbook (a zip file)",
    "an Excel 97-2003 workbook or another old Office file",
    "an OpenDocument spreadsheet (a zip file)",
)
COMPRESSED = ("a gzip-compressed file", "an xz-compressed file", "a zstd-compressed file", "a bzip2-compressed file")
#: The first bytes of formats that are not text, and what a file starting so is.
SIGNATURES = (
    (b"PAR1", PARQUET),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", SPREADSHEETS[1]),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", COMPRESSED[0]),
    (b"\xfd7zXZ\x00", COMPRESSED[1]),
    (b"\x28\xb5\x2f\xfd", COMPRESSED[2]),
    (b"BZh91AY&SY", COMPRESSED[3]),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)
#: What a zip file is, told by its first entries (an OpenDocument file names its type first, uncompressed).
ZIP_KINDS = (
    (b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet", SPREADSHEETS[2]),
    (b"xl/", SPREADSHEETS[0]),
    (b"word/", "a Word document (a zip file)"),
)
#: Byte-order marks of text whose characters hold NUL bytes (UTF-32 LE's starts as UTF-16 LE's).
WIDE_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)


@dataclass(frozen=True)
class FileSeries:
    """The target read from a file, the inputs when they are more than the target's own past, and what
    was done to them (for the run's notes)."""

    values: np.ndarray
    notes: str = ""
    inputs: np.ndarray | None = None  # (n, features)


def file_format(ref: dict[str, Any]) -> str | None:
    """'csv' or 'parquet' when the dataset reference names a file, else None."""
    given = [f for f in FORMATS if f in ref]
    if len(given) > 1:
        raise UserError("dataset: give either 'csv' or 'parquet', not both")
    return given[0] if given else None


def resolve_file(ref: dict[str, Any], base_dir: Path) -> tuple[str, dict[str, Any]]:
    """The format and canonical parameters of a file dataset: absolute path, content hash, and the
    reading options that were given (defaults are left out, so the run ids of older scenarios stay).
    The content is read by `read_file` (the sweep's expansion loads every series before any run)."""
    fmt = file_format(ref)
    assert fmt is not None
    for key in ref:
        if key not in KEYS or (key in FORMATS and key != fmt):
            match = closest(key, KEYS)
            hint = f"did you mean '{match}'?" if match else f"its keys are {', '.join(KEYS)}"
            raise UserError(f"dataset: a {fmt} dataset has no key '{key}'; {hint}")
    if ("column" in ref) == ("target" in ref):
        raise UserError(
            f"dataset: a {fmt} dataset needs 'column: NAME' (one series) or 'target: NAME' with 'features', not "
            f"{'both' if 'column' in ref else 'neither'}"
        )
    if "features" in ref and "target" not in ref:
        raise UserError("dataset: 'features' goes with 'target: NAME' (the column to forecast), not 'column'")
    given = str(ref[fmt])
    path = (base_dir / given).resolve()
    if path.is_dir():
        raise UserError(_directory(path, given, fmt))
    if not path.is_file():
        raise UserError(f"dataset: {fmt.upper()} file not found: {path}; paths are relative to the scenario file")
    _check_kind(path, given, fmt, _encoding(ref["encoding"]) if "encoding" in ref else ENCODING)
    target = str(ref.get("column", ref.get("target"))).strip()
    # the target is stored as 'column' whichever key named it, so a univariate file keeps its run ids
    params: dict[str, Any] = {fmt: str(path), "column": target, "sha256": content_hash(path)}
    if "features" in ref:
        features = ref["features"]
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise UserError(f"dataset: 'features' must be a non-empty list of column names, got {features!r}")
        names = [f.strip() for f in features]
        if len(set(names)) != len(names):
            raise UserError(f"dataset: 'features' names a column twice: {names}")
        params["features"] = names
    return fmt, {**params, **_options(ref, fmt)}


def _directory(folder: Path, given: str, fmt: str) -> str:
    """One line for a file path that is a folder: a file of the format in it to give instead."""
    try:
        found = sorted(f.name for f in folder.iterdir() if f.suffix.lower() == f".{fmt}" and f.is_file())
    except OSError:
        found = []
    shown = f"{given.rstrip('/')}/"
    fix = f"give a .{fmt} file in it, e.g. {fmt}: {shown}{found[0]}" if found else f"give the path of a .{fmt} file"
    return f"dataset: {shown} is a directory, not a {FORMAT_NAMES[fmt]} file; {fix}"


def sniff(path: Path) -> str | None:
    """What a file is when its first bytes say it is not text (a workbook, an image, an archive, a Parquet
    file, binary data), e.g. 'a PNG image'; None for text (in any encoding, UTF-16 with a byte-order mark
    too) and for a file that cannot be read (reading it later says why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    for magic, what in SIGNATURES:
        if head.startswith(magic):
            return what
    if head.startswith(b"PK\x03\x04"):
        return next((what for name, what in ZIP_KINDS if name in head), "a zip archive")
    if head.startswith(WIDE_BOMS) or b"\0" not in head:
        return None
    even = head[: len(head) // 2 * 2]
    for order, text, zeros in (("LE", even[0::2], even[1::2]), ("BE", even[1::2], even[0::2])):
        if b"\0" not in text and zeros.count(0) >= 0.9 * len(zeros):  # ASCII as two bytes a character
            return f"UTF-16 {order} text without a byte-order mark"
    return f"binary data (a NUL byte at byte {head.index(0):,})"


def _check_kind(path: Path, given: str, fmt: str, encoding: str) -> None:
    """Refuse, from its first bytes, a file that is not of format `fmt`, saying what it is and what to do."""
    what = sniff(path)
    if fmt == "excel":
        if what in SPREADSHEETS[:2]:
            return
        if what == SPREADSHEETS[2]:
            raise UserError(f"dataset: {given} is {what}: save it as an Excel workbook (.xlsx) or export it as CSV")
        shown = "text" if what is None or what.startswith("UTF-16") else what
        raise UserError(f"dataset: {given} is {shown}, not an Excel workbook; if it is a CSV file, use csv: instead")
    if fmt == "parquet":
        if what == PARQUET:
            return
        if what is None or what.startswith("UTF-16"):
            raise UserError(
                f"dataset: {given} is text, not a Parquet file (those start with PAR1); if it is a CSV file, "
                "use csv: instead of parquet:"
            )
    elif what is None or (encoding.startswith(("utf-16", "utf-32")) and what.startswith(("UTF-16", "binary"))):
        return  # text, or text whose every character holds NUL bytes
    elif what == PARQUET:
        raise UserError(f"dataset: {given} is a Parquet file, not a CSV file: use parquet: instead of csv:")
    elif what.startswith("UTF-16"):
        raise UserError(f"dataset: {given} is {what}: add encoding: utf-16-{what.split()[1].lower()}")
    raise UserError(f"dataset: {given} looks like {what}, not a {FORMAT_NAMES[fmt]} file: {_fix(what, fmt)}")


def _fix(what: str, fmt: str) -> str:
    """What to do with a file `sniff` says is `what`, given as a `fmt` file."""
    if what in SPREADSHEETS[:2]:
        return f"read it with excel: FILE (sheet: NAME for another than the first; {EXCEL_INSTALL})"
    if what in SPREADSHEETS:
        return "export the sheet as CSV or Parquet (Save As in the spreadsheet program)"
    if what in COMPRESSED or what.endswith("archive"):
        return "extract the data file from it and give that"
    if what.startswith("binary"):
        return f"if it was a {FORMAT_NAMES[fmt]} file it is damaged; export the data as {FORMAT_NAMES[fmt]} again"
    return "give the data as a CSV or Parquet file"


def _options(ref: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The reading options given, checked; the defaults are left out."""
    params: dict[str, Any] = {}
    if fmt != "csv":
        for key in CSV_ONLY:
            if key in ref:
                raise UserError(f"dataset: '{key}' applies to CSV files only; remove it from the {fmt} dataset")
    if "sheet" in ref:
        if fmt != "excel":
            raise UserError(f"dataset: 'sheet' applies to Excel workbooks only; remove it from the {fmt} dataset")
        if not isinstance(ref["sheet"], (str, int)) or isinstance(ref["sheet"], bool):
            raise UserError(
                f"dataset: 'sheet' must be a sheet's name or its position (0 is the first), got {ref['sheet']!r}"
            )
        params["sheet"] = ref["sheet"]
    for key in ("sep", "decimal"):
        if key in ref:
            value = ref[key]
            if not isinstance(value, str) or len(value) != 1:
                raise UserError(f"dataset: '{key}' must be one character (e.g. ';' or ','), got {value!r}")
            params[key] = value
    if "thousands" in ref:
        params["thousands"] = _thousands(ref["thousands"], params.get("decimal", "."))
    if "encoding" in ref and (encoding := _encoding(ref["encoding"])) != ENCODING:
        params["encoding"] = encoding
    if "time" in ref:
        params["time"] = str(ref["time"]).strip()
    if "time_format" in ref and "dayfirst" in ref:
        raise UserError("dataset: give 'time_format' or 'dayfirst', not both (the format says where the day is)")
    if "time_format" in ref:
        value = ref["time_format"]
        if not isinstance(value, str) or "%" not in value:
            raise UserError(f"dataset: 'time_format' must be a strftime format such as '%d.%m.%Y', got {value!r}")
        params["time_format"] = value
    if "dayfirst" in ref:
        if not isinstance(ref["dayfirst"], bool):
            raise UserError(f"dataset: 'dayfirst' must be true or false, got {ref['dayfirst']!r}")
        if ref["dayfirst"]:
            params["dayfirst"] = True
    if "frequency" in ref:
        params["frequency"] = str(ref["frequency"]).strip()
        spacing.frequency_spacing(params["frequency"])
    for key, choices in (("missing", MISSING), ("outliers", OUTLIERS), ("gaps", spacing.GAPS)):
        value = ref.get(key, choices[0])
        if value not in choices:
            raise UserError(f"dataset: '{key}' must be one of {', '.join(choices)}, got {value!r}")
        if value != choices[0]:
            params[key] = value
    return params


def _thousands(value: Any, decimal: str) -> str:
    if value not in rows.THOUSANDS:
        shown = ", ".join(repr(t) for t in rows.THOUSANDS)
        raise UserError(f"dataset: 'thousands' must be one of {shown}, got {value!r}")
    if value == decimal:
        raise UserError(
            f"dataset: 'thousands' and 'decimal' are both {value!r}; for numbers like 1.002,5 give decimal: ',' "
            "with thousands: '.'"
        )
    return value


def _encoding(value: Any) -> str:
    """The codec's canonical name, so 'UTF8' and 'utf-8' give the same run ids."""
    try:
        return codecs.lookup(str(value)).name
    except LookupError:
        match = closest(str(value).lower(), {*aliases, *aliases.values(), "cp1252", "latin-1", "utf-8", "utf-16"})
        hint = f"did you mean '{match}'?" if match else "e.g. utf-8, cp1252 (Excel on Windows) or latin-1"
        raise UserError(f"dataset: unknown encoding {value!r}; {hint}") from None


def content_hash(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256, read in chunks (bounded memory for large files)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()[:16]
    except OSError as exc:
        raise UserError(f"dataset: cannot read {path} ({exc.strerror or exc}); check its permissions") from None


def detect_separator(path: Path, encoding: str = ENCODING) -> str:
    """The separator of a CSV file from its first lines (a single-column file reads as ',')."""
    with open(path, "rb") as fh:
        sample = fh.read(SNIFF_BYTES).decode(encoding, errors="replace")
    lines = sample.splitlines()
    sample = "\n".join(lines[:-1] if len(lines) > 1 else lines)  # the last line may be cut short
    try:
        return csv.Sniffer().sniff(sample, delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","


def _name(column: Any) -> str:
    return str(column).strip().lstrip("\ufeff").strip()


def _frame(fmt: str, params: dict[str, Any], numbers: list[str]) -> pd.DataFrame:
    """The file as a frame: the `numbers` columns as numbers, the others as text; a CSV's empty rows at its
    end dropped; a Parquet file's saved index (a DatetimeIndex) as its first column."""
    path = Path(params[fmt])
    encoding = params.get("encoding", ENCODING)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            if not isinstance(frame.index, pd.RangeIndex):
                frame = frame.reset_index()
        elif fmt == "excel":
            frame = rows.drop_trailing_empty(_excel(path, params.get("sheet", 0)))
        else:
            options = {"sep": params.get("sep") or detect_separator(path, encoding), "encoding": encoding}
            header = pd.read_csv(path, nrows=0, **options).columns
            # only number columns are parsed as numbers: thousands '.' would read 13.01.2020 as 13012020
            text = {c: str for c in header if _name(c) not in numbers}
            # only the columns the series needs (the first one is the time column or a footer's label), so memory
            # follows the numbers read, not the file; a missing column reads them all for its message
            needed = {*numbers, params.get("time")}
            names = {_name(c) for c in header}
            if needed - {None} <= names:
                options["usecols"] = [c for i, c in enumerate(header) if i == 0 or _name(c) in needed]
            frame = pd.read_csv(
                path, decimal=params.get("decimal", "."), thousands=params.get("thousands"), dtype=text, **options
            )
            frame = rows.drop_trailing_empty(frame)
    except UnicodeDecodeError:
        raise UserError(_decode_error(path, encoding)) from None
    except UserError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for malformed files
        detail = " ".join(str(exc).split())[:300]  # their messages span lines
        raise UserError(f"dataset: cannot read {fmt.upper()} {path} ({exc.__class__.__name__}: {detail})") from None
    frame.columns = [_name(c) for c in frame.columns]
    return frame


def _first_rows(fmt: str, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """The file's first rows with every column, as `bench.datasets.panels` reads them: a CSV's `frame` holds
    only the columns the series needs, so its first rows are read again, as text (`frame`'s where the other
    columns do not parse: the series' own were read)."""
    if fmt != "csv":
        return frame.head(panels.SAMPLE_ROWS)
    path = Path(params[fmt])
    encoding = params.get("encoding", ENCODING)
    sep = params.get("sep") or detect_separator(path, encoding)
    try:
        first = pd.read_csv(path, nrows=panels.SAMPLE_ROWS, dtype=str, sep=sep, encoding=encoding)
    except Exception:  # pandas raises many types for malformed rows
        return frame.head(panels.SAMPLE_ROWS)
    first.columns = [_name(c) for c in first.columns]
    return first


def _excel(path: Path, sheet: str | int) -> pd.DataFrame:
    """One sheet of a workbook; a missing reader or sheet is one line saying what to do."""
    engine = "xlrd" if sniff(path) == SPREADSHEETS[1] else "openpyxl"  # .xls, else .xlsx
    try:
        book = pd.ExcelFile(path, engine=engine)
    except ImportError:
        raise UserError(f"dataset: reading {path.name} needs the {engine} package: {EXCEL_INSTALL}") from None
    with book:
        names = book.sheet_names
        if (isinstance(sheet, str) and sheet not in names) or (isinstance(sheet, int) and not 0 <= sheet < len(names)):
            raise UserError(
                f"dataset: {path.name} has no sheet {sheet!r}; its sheets are {', '.join(map(repr, names))}"
            )
        return pd.read_excel(book, sheet_name=sheet)


def _undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """The offset of the first byte `encoding` cannot decode and the line breaks before it, or None."""
    # utf-8-sig counts offsets after its byte-order mark; utf-8 reads the same bytes (the mark as U+FEFF)
    decoder = codecs.getincrementaldecoder("utf-8" if encoding == "utf-8-sig" else encoding)()
    offset = lines = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(SNIFF_BYTES)
            pending = len(decoder.getstate()[0])  # bytes of a character cut at the last chunk's end
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                return at, lines + chunk[: max(at - offset, 0)].count(b"\n")
            if not chunk:
                return None
            lines += chunk.count(b"\n")
            offset += len(chunk)


def _decode_error(path: Path, encoding: str) -> str:
    """One line: where the file stops being `encoding` text, and an encoding that reads all of it."""
    found = _undecodable(path, encoding)
    if found is None:
        return f"dataset: cannot read CSV {path} as {encoding} text; give its encoding with encoding:"
    at, lines = found
    with open(path, "rb") as fh:
        start = fh.read(3)
        fh.seek(at)
        byte = fh.read(1)[0]
    shown = "UTF-8" if encoding.startswith("utf-8") else encoding
    where = f"dataset: {path}: byte {at} ({'the header' if lines == 0 else f'row {lines}'}) is 0x{byte:02x}"
    if start == codecs.BOM_UTF8:  # says it is UTF-8: no other encoding reads it as written
        return f"{where}, which is not UTF-8 text though the file starts as UTF-8 (a byte-order mark); correct it"
    # latin-1 decodes any bytes, so there is always a suggestion
    utf16 = start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    tried = ("utf-16", "latin-1") if utf16 else ("utf-8-sig", "cp1252", "latin-1")
    fits = next(e for e in tried if codecs.lookup(e).name != encoding and _undecodable(path, e) is None)
    excel = " (as Excel on Windows saves CSV)" if fits == "cp1252" else ""
    return f"{where}, which is not {shown} text; the file reads as {fits}{excel}: add encoding: {fits}"


def _column(frame: pd.DataFrame, name: str, path: str) -> pd.Series:
    if name not in frame.columns:
        cols = ", ".join(map(str, frame.columns))
        match = closest(name, list(map(str, frame.columns)))
        hint = f"; did you mean '{match}'?" if match else ""
        raise UserError(f"dataset: column '{name}' not in {path}; its columns are {cols}{hint}")
    return frame[name]


def _numbers(raw: pd.Series, name: str, path: str, decimal: str, thousands: str | None) -> np.ndarray:
    """The column as floats (NaN where a value is missing); text that is not a number is an error."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = raw.notna().to_numpy() & np.isnan(values)
    if text.any():
        row = int(np.flatnonzero(text)[0])
        given = raw.iloc[row]
        hint = rows.number_hint(str(given).strip(), decimal, thousands)
        raise UserError(f"dataset: {path}: row {row + 1}, column '{name}': {given!r} is not a number{hint}")
    inf = np.isinf(values)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise UserError(f"dataset: {path}: row {row + 1}, column '{name}': the value is infinite")
    return values


def _time(frame: pd.DataFrame, params: dict[str, Any], numbers: list[str], path: str) -> tuple[str, pd.Series | None]:
    """Check the time column, named or detected (see `bench.datasets.rows`); a note when it was detected, and
    the times (None without a time column)."""
    fmt, dayfirst = params.get("time_format"), params.get("dayfirst", False)
    name = params.get("time") or rows.detect_time(frame, numbers, fmt, dayfirst)
    if name is None:
        if fmt or dayfirst:
            key = f"time_format {fmt!r}" if fmt else "dayfirst"
            raise UserError(
                f"dataset: {path}: {key} reads the time column, and the first column '{frame.columns[0]}' holds no "
                "dates read so; name the time column with time:"
            )
        for key in ("frequency", "gaps"):
            if key in params:
                raise UserError(f"dataset: {path}: '{key}' needs a time column, and none was found; name it with time:")
        return "", None
    times, used = rows.read_times(_column(frame, name, path), fmt, dayfirst, name, path)
    detected = "time" not in params
    rows.check_times(frame, name, times, used, fmt is None, detected, path)
    return (f"time: detected column '{name}'" if detected else ""), times


def read_file(fmt: str, params: dict[str, Any]) -> FileSeries:
    """The target and inputs a file dataset names, checked row by row, with their gaps handled by `missing`."""
    path = params[fmt]
    target = params["column"]
    features = params.get("features", [target])
    names = [target, *(f for f in features if f != target)]
    frame = _frame(fmt, params, names)
    stacked = panels.stacked_series(_first_rows(fmt, params, frame), names, params.get("time_format"),
                                    params.get("dayfirst", False), params.get("time"))  # fmt: skip
    if stacked is not None:
        raise UserError(stacked.message(path))
    time_note, times = _time(frame, params, names, path)
    decimal, thousands = params.get("decimal", "."), params.get("thousands")
    columns = {n: _numbers(_column(frame, n, path), n, path, decimal, thousands) for n in names}
    rows.check_footer(frame, columns, path)
    outliers, outlier_note, gap_note = params.get("outliers", OUTLIERS[0]), "", ""
    if outliers == "error":
        rows.check_outliers(columns, path)
    if times is not None:  # named after its column
        columns, gap_note = spacing.handle_gaps(pd.DatetimeIndex(times), columns, params, str(times.name), path)
    if outliers in ("drop", "clip"):  # after the gaps, which need the rows aligned with their times
        columns, outlier_note = rows.treat_outliers(columns, outliers)
    columns, repair_note = _repair(columns, params.get("missing", "error"), path)
    inputs = np.column_stack([columns[f] for f in features]) if "features" in params else None
    notes = (time_note, outlier_note, gap_note, repair_note)
    return FileSeries(columns[target], "; ".join(n for n in notes if n), inputs)


def _repair(columns: dict[str, np.ndarray], policy: str, path: str) -> tuple[dict[str, np.ndarray], str]:
    """The columns with their gaps handled by `policy`, and a note saying how many values that touched."""
    gaps = {n: np.isnan(v) for n, v in columns.items()}
    total = sum(int(g.sum()) for g in gaps.values())
    if not total:
        return columns, ""
    empty = [n for n, g in gaps.items() if g.all()]
    if empty:  # no policy can repair a column with nothing in it
        raise UserError(f"dataset: {path}: column '{empty[0]}' has no value in any row; remove it from features")
    where = ", ".join(f"'{n}'" for n, g in gaps.items() if g.any())
    if policy == "error":
        row, name = min((int(np.flatnonzero(g)[0]), n) for n, g in gaps.items() if g.any())
        raise UserError(
            f"dataset: {path}: row {row + 1}, column '{name}': missing value ({total} in all); "
            "add missing: drop, interpolate or ffill to the dataset to repair gaps"
        )
    if policy == "drop":
        keep = ~np.any(np.column_stack(list(gaps.values())), axis=1)
        dropped = int((~keep).sum())
        return {n: v[keep] for n, v in columns.items()}, f"missing: dropped {dropped} rows with no value in {where}"
    out = {}
    for name, values in columns.items():
        if policy == "ffill" and gaps[name][0]:
            raise UserError(
                f"dataset: {path}: row 1, column '{name}': the first value is missing, so ffill has nothing to "
                "carry forward; use missing: drop or interpolate"
            )
        series = pd.Series(values)
        filled = series.ffill() if policy == "ffill" else series.interpolate(method="linear", limit_direction="both")
        out[name] = filled.to_numpy(dtype=np.float64)
    verb = "forward-filled" if policy == "ffill" else "interpolated"
    return out, f"missing: {verb} {total} values in {where}"
