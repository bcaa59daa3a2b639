"""Built-in series, synthetic generators, CSV input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.datasets import list_datasets, load_series, resolve_dataset


@pytest.mark.parametrize("name,length,first", [("airline", 144, 112.0), ("shampoo", 36, 266.0), ("sunspots", 309, 5.0)])
def test_builtin_series_ship_with_the_package(name: str, length: int, first: float):
    s = load_series(resolve_dataset(name, Path(".")))
    assert len(s) == length and s.values[0] == first


@pytest.mark.parametrize(
    "ref",
    [
        {"name": "sine", "length": 300, "noise": 0.1},
        {"name": "mackey_glass", "length": 300},
        {"name": "ar", "length": 300, "coefficients": [0.5, 0.2]},
    ],
)
def test_synthetic_series_are_deterministic_given_their_parameters(ref: dict):
    a = load_series(resolve_dataset(ref, Path("."))).values
    b = load_series(resolve_dataset(dict(ref), Path("."))).values
    assert len(a) == 300 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)


def test_synthetic_parameters_change_the_series():
    base = load_series(resolve_dataset({"name": "sine", "noise": 0.1}, Path("."))).values
    other = load_series(resolve_dataset({"name": "sine", "noise": 0.1, "seed": 1}, Path("."))).values
    assert not np.array_equal(base, other)


def test_sine_has_the_requested_period():
    v = load_series(resolve_dataset({"name": "sine", "length": 200, "period": 20}, Path("."))).values
    np.testing.assert_allclose(v[:20], v[20:40], atol=1e-12)


def test_mackey_glass_is_chaotic_but_bounded():
    v = load_series(resolve_dataset({"name": "mackey_glass", "length": 500}, Path("."))).values
    assert 0.2 < v.min() < v.max() < 1.5 and v.std() > 0.1


def test_ar_process_follows_its_coefficients():
    v = load_series(
        resolve_dataset({"name": "ar", "length": 20000, "coefficients": [0.8], "noise": 1.0}, Path("."))
    ).values
    lag1 = np.corrcoef(v[1:], v[:-1])[0, 1]
    assert lag1 == pytest.approx(0.8, abs=0.03)


def test_csv_column_and_content_hash(tmp_path: Path):
    (tmp_path / "d.csv").write_text("t,v\n" + "\n".join(f"{i},{i * 2}" for i in range(50)))
    spec = resolve_dataset({"csv": "d.csv", "column": "v"}, tmp_path)
    assert load_series(spec).values[-1] == 98.0
    (tmp_path / "d.csv").write_text("t,v\n" + "\n".join(f"{i},{i * 3}" for i in range(50)))
    assert resolve_dataset({"csv": "d.csv", "column": "v"}, tmp_path) != spec  # new content, new runs


def test_list_names_every_dataset():
    assert [d.name for d in list_datasets()] == [
        "airline",
        "shampoo",
        "sunspots",
        "sine",
        "mackey_glass",
        "lagged_covariate",
        "ar",
    ]
