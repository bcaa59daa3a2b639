"""Users' files as they have them: CSV with any common separator, decimal commas, a byte-order mark,
CRLF line endings and quoted numbers, or Parquet; an optional time column; a policy for gaps.

A file dataset is `{csv: FILE, column: NAME}` (or `{parquet: FILE, ...}`), or with inputs besides the
target `{csv: FILE, target: NAME, features: [NAME, ...]}`, with optional `sep` (detected by default),
`decimal`, `time` and `missing`. Every problem is one line naming the file, the row and
the column. The file's content hash, computed while streaming it, identifies the data, so the same
file elsewhere gives the same run ids.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import UserError, closest

FORMATS = ("csv", "parquet")
#: What to do with a missing value of the series (an empty cell, NA): refuse, or repair and say how many.
MISSING = ("error", "drop", "interpolate", "ffill")
KEYS = (*FORMATS, "column", "target", "features", "sep", "decimal", "time", "missing")
#: Separators tried when `sep` is not given.
SEPARATORS = ",;\t|"
SNIFF_BYTES = 64 * 1024


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
    path = (base_dir / str(ref[fmt])).resolve()
    if not path.is_file():
        raise UserError(f"dataset: {fmt.upper()} file not found: {path}; paths are relative to the scenario file")
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
    if fmt == "parquet":
        for key in ("sep", "decimal"):
            if key in ref:
                raise UserError(f"dataset: '{key}' applies to CSV files only; remove it from the parquet dataset")
    for key in ("sep", "decimal"):
        if key in ref:
            value = ref[key]
            if not isinstance(value, str) or len(value) != 1:
                raise UserError(f"dataset: '{key}' must be one character (e.g. ';' or ','), got {value!r}")
            params[key] = value
    if "time" in ref:
        params["time"] = str(ref["time"]).strip()
    missing = ref.get("missing", "error")
    if missing not in MISSING:
        raise UserError(f"dataset: 'missing' must be one of {', '.join(MISSING)}, got {missing!r}")
    if missing != "error":
        params["missing"] = missing
    return fmt, params


def content_hash(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256, read in chunks (bounded memory for large files)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()[:16]
    except OSError as exc:
        raise UserError(f"dataset: cannot read {path} ({exc.strerror or exc}); check its permissions") from None


def detect_separator(path: Path) -> str:
    """The separator of a CSV file from its first lines (a single-column file reads as ',')."""
    with open(path, "rb") as fh:
        sample = fh.read(SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    lines = sample.splitlines()
    sample = "\n".join(lines[:-1] if len(lines) > 1 else lines)  # the last line may be cut short
    try:
        return csv.Sniffer().sniff(sample, delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","


def _frame(fmt: str, params: dict[str, Any]) -> pd.DataFrame:
    path = Path(params[fmt])
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            sep = params.get("sep") or detect_separator(path)
            frame = pd.read_csv(path, sep=sep, decimal=params.get("decimal", "."), encoding="utf-8-sig")
    except Exception as exc:  # pandas and pyarrow raise many types for malformed files
        detail = " ".join(str(exc).split())[:300]  # their messages span lines
        raise UserError(f"dataset: cannot read {fmt.upper()} {path} ({exc.__class__.__name__}: {detail})") from None
    frame.columns = [str(c).strip().lstrip("\ufeff").strip() for c in frame.columns]
    return frame


def _column(frame: pd.DataFrame, name: str, path: str) -> pd.Series:
    if name not in frame.columns:
        cols = ", ".join(map(str, frame.columns))
        match = closest(name, list(map(str, frame.columns)))
        hint = f"; did you mean '{match}'?" if match else ""
        raise UserError(f"dataset: column '{name}' not in {path}; its columns are {cols}{hint}")
    return frame[name]


def _numbers(raw: pd.Series, name: str, path: str, decimal: str) -> np.ndarray:
    """The column as floats (NaN where a value is missing); text that is not a number is an error."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = raw.notna().to_numpy() & np.isnan(values)
    if text.any():
        row = int(np.flatnonzero(text)[0])
        given = raw.iloc[row]
        hint = "; for a decimal comma add decimal: ','" if decimal == "." and "," in str(given) else ""
        raise UserError(f"dataset: {path}: row {row + 1}, column '{name}': {given!r} is not a number{hint}")
    inf = np.isinf(values)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise UserError(f"dataset: {path}: row {row + 1}, column '{name}': the value is infinite")
    return values


def _check_time(raw: pd.Series, name: str, path: str) -> pd.Series:
    times = pd.to_datetime(raw, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f"dataset: {path}: row {row + 1}, column '{name}': {raw.iloc[row]!r} is not a date or time")
    steps = np.diff(times.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise UserError(
            f"dataset: {path}: row {row + 1}, column '{name}': {raw.iloc[row]!r} does not come after "
            f"{raw.iloc[row - 1]!r}; the time column must be strictly increasing (sort the file or remove duplicates)"
        )
    return times


def read_file(fmt: str, params: dict[str, Any]) -> FileSeries:
    """The target and inputs a file dataset names, with their gaps handled by `missing`."""
    path = params[fmt]
    frame = _frame(fmt, params)
    target = params["column"]
    features = params.get("features", [target])
    names = [target, *(f for f in features if f != target)]
    columns = {n: _numbers(_column(frame, n, path), n, path, params.get("decimal", ".")) for n in names}
    if "time" in params:
        _check_time(_column(frame, params["time"], path), params["time"], path)
    columns, notes = _repair(columns, params.get("missing", "error"), path)
    inputs = np.column_stack([columns[f] for f in features]) if "features" in params else None
    return FileSeries(columns[target], notes, inputs)


def _repair(columns: dict[str, np.ndarray], policy: str, path: str) -> tuple[dict[str, np.ndarray], str]:
    """The columns with their gaps handled by `policy`, and a note saying how many values that touched."""
    gaps = {n: np.isnan(v) for n, v in columns.items()}
    total = sum(int(g.sum()) for g in gaps.values())
    if not total:
        return columns, ""
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
