"""Built-in and user series: a registry of named loaders, and users' files (`bench.datasets.files`).

Every series is deterministic given its parameters, so a dataset spec (name + parameters,
plus the content hash of a CSV) identifies the data exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np
import pandas as pd

from bench.datasets.files import FORMATS, file_format, read_file, resolve_file
from bench.datasets.files import KEYS as FILE_KEYS
from bench.errors import UserError, closest


@dataclass(frozen=True)
class DatasetSpec:
    """A fully resolved dataset reference: a name and its parameters (canonical, hashable)."""

    name: str
    params_json: str = "{}"

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    @property
    def identity_json(self) -> str:
        """The parameters that define the data: a CSV is its column and content hash, not its path,
        so the same file elsewhere (another machine, a moved project) gives the same run ids."""
        p = self.params
        for fmt in FORMATS:
            p.pop(fmt, None)
        return json.dumps(p, sort_keys=True)

    @property
    def source(self) -> str:
        """Where the data were read from (a file's path), or '' for built-in series."""
        return str(self.params.get(self.name, "")) if self.name in FORMATS else ""

    @property
    def features(self) -> tuple[str, ...]:
        """The input columns, in order: `features` when given, else the series itself (univariate)."""
        p = self.params
        if "features" in p:
            return tuple(p["features"])
        if self.name in FORMATS:
            return (p["column"],)
        entry = _REGISTRY.get(self.name)
        return entry.columns if entry is not None and entry.columns else (self.name,)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def label(self) -> str:
        """Short name for tables and plots: the dataset name, or the file's stem and column."""
        p = self.params
        if self.name in FORMATS:
            return f"{Path(p[self.name]).stem}:{p['column']}"
        return self.name


@dataclass(frozen=True)
class Series:
    """A series in its original units: the target `values` (n,) and the model's `inputs` (n, features),
    and what reading it changed (repaired gaps)."""

    spec: DatasetSpec
    values: np.ndarray = field(repr=False)
    notes: str = ""
    inputs: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.inputs is None:  # univariate: the target's own past is the one input
            object.__setattr__(self, "inputs", self.values[:, None])

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class DatasetInfo:
    """What `lstm-bench datasets` lists."""

    name: str
    description: str
    defaults: dict[str, Any]
    length: int | None  # None when the length is a parameter


def _packaged_csv(filename: str, column: str) -> np.ndarray:
    with resources.files("bench.datasets").joinpath(filename).open("r") as fh:
        return pd.read_csv(fh)[column].to_numpy(dtype=np.float64)


def _sine(length: int, period: float, noise: float, seed: int) -> np.ndarray:
    t = np.arange(length, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(length)


def _mackey_glass(
    length: int, tau: int, beta: float, gamma: float, n: float, x0: float, sample_every: int
) -> np.ndarray:
    # Euler integration with dt=0.1 of dx/dt = beta x(t-tau) / (1 + x(t-tau)^n) - gamma x(t),
    # sampled every `sample_every` time units after discarding a transient of 10*tau.
    dt = 0.1
    lag = int(round(tau / dt))
    per_sample = int(round(sample_every / dt))
    warm = 10 * lag
    steps = warm + length * per_sample
    x = np.empty(steps + lag + 1)
    x[: lag + 1] = x0
    for i in range(lag, steps + lag):
        xt = x[i - lag]
        x[i + 1] = x[i] + dt * (beta * xt / (1.0 + xt**n) - gamma * x[i])
    return x[lag + 1 + warm :: per_sample][:length].copy()


def _lagged_covariate(length: int, lag: int, gain: float, noise: float, seed: int) -> dict[str, np.ndarray]:
    """A target driven by a covariate's past: y[t] = gain * x[t - lag] + noise, x an AR(1) process.

    The target's own past says little about x[t - lag], so a model that sees x (look_back >= lag)
    should beat one that sees only y by far: the test that covariates are really used."""
    rng = np.random.default_rng(seed)
    x = np.zeros(length + lag)
    shocks = rng.standard_normal(length + lag)
    for t in range(1, length + lag):
        x[t] = 0.3 * x[t - 1] + shocks[t]
    y = gain * x[:length] + noise * rng.standard_normal(length)
    return {"y": y, "x": x[lag:]}


def _ar(length: int, coefficients: list[float], noise: float, seed: int, burn_in: int = 200) -> np.ndarray:
    coef = np.asarray(coefficients, dtype=np.float64)
    rng = np.random.default_rng(seed)
    eps = noise * rng.standard_normal(length + burn_in)
    x = np.zeros(length + burn_in)
    p = len(coef)
    for t in range(p, length + burn_in):
        x[t] = coef @ x[t - p : t][::-1] + eps[t]
    return x[burn_in:]


@dataclass(frozen=True)
class _Loader:
    info: DatasetInfo
    load: Callable[..., Any]  # an array, or for several columns a dict of them (the target first)
    columns: tuple[str, ...] = ()  # a multivariate loader's columns; its default features


_REGISTRY: dict[str, _Loader] = {
    "airline": _Loader(
        DatasetInfo("airline", "monthly international airline passengers (thousands), 1949-1960", {}, 144),
        lambda: _packaged_csv("airline_passengers.csv", "Passengers"),
    ),
    "shampoo": _Loader(
        DatasetInfo("shampoo", "monthly shampoo sales over 3 years", {}, 36),
        lambda: _packaged_csv("shampoo_sales.csv", "Sales"),
    ),
    "sunspots": _Loader(
        DatasetInfo("sunspots", "yearly mean sunspot number, 1700-2008", {}, 309),
        lambda: _packaged_csv("sunspots_yearly.csv", "SUNACTIVITY"),
    ),
    "sine": _Loader(
        DatasetInfo(
            "sine",
            "sine wave with optional Gaussian noise",
            {"length": 1000, "period": 50.0, "noise": 0.0, "seed": 0},
            None,
        ),
        _sine,
    ),
    "mackey_glass": _Loader(
        DatasetInfo(
            "mackey_glass",
            "chaotic Mackey-Glass delay equation (tau 17)",
            {"length": 1000, "tau": 17, "beta": 0.2, "gamma": 0.1, "n": 10.0, "x0": 1.2, "sample_every": 1},
            None,
        ),
        _mackey_glass,
    ),
    "lagged_covariate": _Loader(
        DatasetInfo(
            "lagged_covariate",
            "two columns: y = gain * x[t - lag] + noise, with x an AR(1) process (features y and x)",
            {"length": 2000, "lag": 3, "gain": 2.0, "noise": 0.1, "seed": 0},
            None,
        ),
        _lagged_covariate,
        ("y", "x"),
    ),
    "ar": _Loader(
        DatasetInfo(
            "ar",
            "autoregressive process x[t] = sum c_i x[t-i] + noise",
            {"length": 1000, "coefficients": [0.6, -0.3], "noise": 1.0, "seed": 0},
            None,
        ),
        _ar,
    ),
}


def list_datasets() -> list[DatasetInfo]:
    """Every built-in dataset, in registry order."""
    return [entry.info for entry in _REGISTRY.values()]


def _check_params(name: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    for key in given:
        if key not in defaults:
            match = closest(key, defaults)
            hint = (
                f"did you mean '{match}'?"
                if match
                else (f"its parameters are {', '.join(defaults)}" if defaults else "it takes no parameters")
            )
            raise UserError(f"dataset '{name}' has no parameter '{key}'; {hint}")
    params = {**defaults, **given}
    for key, default in defaults.items():
        value = params[key]
        if isinstance(default, list):
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            ):
                raise UserError(f"dataset '{name}': '{key}' must be a non-empty list of numbers, got {value!r}")
            params[key] = [float(v) for v in value]
        elif isinstance(default, bool) or not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"dataset '{name}': '{key}' must be a number, got {value!r}")
        elif isinstance(default, int) and not float(value).is_integer():
            raise UserError(f"dataset '{name}': '{key}' must be an integer, got {value!r}")
        else:
            params[key] = type(default)(value)
    # Mackey-Glass integrates in a Python loop: cap it where that still takes seconds
    max_length = 200_000 if name == "mackey_glass" else 10_000_000
    if "length" in params and not 10 <= params["length"] <= max_length:
        raise UserError(f"dataset '{name}': 'length' must be between 10 and {max_length:,}, got {params['length']}")
    if name == "ar" and np.any(np.abs(np.roots([1.0, *(-c for c in params["coefficients"])])) >= 1.0):
        raise UserError(
            f"dataset 'ar': coefficients {params['coefficients']} give an explosive process "
            "(a characteristic root on or outside the unit circle); use smaller coefficients"
        )
    for key in ("tau", "sample_every", "n", "period"):
        if key in params and params[key] <= 0:
            raise UserError(f"dataset '{name}': '{key}' must be > 0, got {params[key]}")
    if params.get("noise", 0) < 0:
        raise UserError(f"dataset '{name}': 'noise' must be >= 0, got {params['noise']}")
    return params


#: The kinds of dataset a scenario's `dataset` mapping gives, by its key.
KINDS = "name: (a built-in dataset, e.g. airline), " + " or ".join(f"{f}: FILE" for f in FORMATS)
#: Keys that name a spreadsheet: a workbook is read with `excel:`.
SPREADSHEET_KINDS = ("xlsx", "xls", "ods", "sheet", "spreadsheet", "workbook")


def _kind_hint(kind: str) -> str:
    if kind.lower() in SPREADSHEET_KINDS:
        return "; an Excel workbook is read with excel: FILE (and sheet: NAME), an OpenDocument one once exported"
    match = closest(kind, ["name", *FORMATS])
    return f"; did you mean '{match}'?" if match else ""


def resolve_dataset(ref: str | dict[str, Any], base_dir: Path) -> DatasetSpec:
    """Turn a scenario's `dataset` value into a canonical `DatasetSpec` (CSV paths made absolute and hashed)."""
    if isinstance(ref, str):
        ref = {"name": ref}
    ref = dict(ref)
    fmt = file_format(ref)
    if fmt is not None:
        fmt, params = resolve_file(ref, base_dir)
        return DatasetSpec(fmt, json.dumps(params, sort_keys=True))
    name = ref.pop("name", None)
    unknown = [str(k) for k in ref if name is None and k not in FILE_KEYS]
    if unknown:
        raise UserError(f"dataset: unknown dataset kind '{unknown[0]}'; the kinds are {KINDS}{_kind_hint(unknown[0])}")
    if not isinstance(name, str):
        keys = ", ".join(f"'{k}'" for k in ("name", *FORMATS[:-1])) + f" or '{FORMATS[-1]}'"
        raise UserError(f"dataset: give a built-in name (e.g. 'airline') or a mapping with {keys}")
    if name not in _REGISTRY:
        match = closest(name, _REGISTRY)
        hint = (
            f"did you mean '{match}'?"
            if match
            else "run 'lstm-bench datasets' to list them, or use {csv: FILE, column: NAME}"
        )
        raise UserError(f"dataset: unknown dataset '{name}'; {hint}")
    features = ref.pop("features", None)
    params = _check_params(name, ref, _REGISTRY[name].info.defaults)
    if features is not None:
        params["features"] = _check_features(features, _REGISTRY[name].columns, name)
    return DatasetSpec(name, json.dumps(params, sort_keys=True))


def _check_features(features: Any, columns: tuple[str, ...] | list[str], where: str) -> list[str]:
    """`features` as a list of distinct column names of `where`."""
    if not columns:
        raise UserError(f"dataset '{where}' has one column; 'features' applies to files and multivariate datasets")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise UserError(f"dataset '{where}': 'features' must be a non-empty list of column names, got {features!r}")
    names = [f.strip() for f in features]
    for name in names:
        if name not in columns:
            match = closest(name, list(columns))
            hint = f"did you mean '{match}'? " if match else ""
            raise UserError(
                f"dataset '{where}': no column '{name}' for features; {hint}its columns are {', '.join(columns)}"
            )
    if len(set(names)) != len(names):
        raise UserError(f"dataset '{where}': 'features' names a column twice: {names}")
    return names


def load_series(spec: DatasetSpec) -> Series:
    """Load the series a spec names, in its original units."""
    params = spec.params
    if spec.name in FORMATS:
        read = read_file(spec.name, params)
        return Series(spec, read.values, read.notes, read.inputs)
    entry = _REGISTRY[spec.name]
    params.pop("features", None)
    loaded = entry.load(**params)
    if not entry.columns:
        return Series(spec, np.asarray(loaded, dtype=np.float64))
    inputs = np.column_stack([np.asarray(loaded[c], dtype=np.float64) for c in spec.features])
    return Series(spec, np.asarray(loaded[entry.columns[0]], dtype=np.float64), inputs=inputs)
