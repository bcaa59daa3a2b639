"""Generated inputs for the scenario loader and the file readers: each either loads or ends in one
`UserError` line, never another exception. A small run by default; `-m slow` runs many more examples."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.datasets import load_series, resolve_dataset
from bench.errors import UserError
from bench.scenario import parse_scenario_text
from bench.schema import schema
from bench.specs import expand

#: Examples per property: a few in the default run, many behind -m slow.
FEW, MANY = 40, 600

KEYS = [c.name for c in schema().spec_columns if c.scenario_type is not None] + [
    "name", "dataset", "repeats", "target", "search", "model", "bogus", "batch_sizes",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3000),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(max_size=8),
    st.sampled_from(["airline", "sine", "scan", "jax", "fit", "streams", "adam", "val_rmse", "{", "]"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["name", "csv", "column", "value", "x"]), inner)
    ),
    max_leaves=6,
)


def one_line_or_loads(action) -> None:  # noqa: ANN001
    try:
        action()
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)


def load_scenario_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sf = parse_scenario_text(text, Path(folder) / "s.yaml")
        specs = expand(sf)
        assert specs


def scenario_property(data: dict) -> None:
    base = {"name": "fuzz", "dataset": {"name": "sine", "length": 60}, "epochs": 1}
    one_line_or_loads(lambda: load_scenario_text(yaml.safe_dump({**base, **data}, allow_unicode=True)))


def raw_scenario_property(text: str) -> None:
    one_line_or_loads(lambda: load_scenario_text(text))


def csv_property(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "f.csv").write_bytes(content)
        one_line_or_loads(lambda: load_series(resolve_dataset({"csv": "f.csv", "column": "v"}, Path(folder))))


FRAMES = st.lists(
    st.tuples(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6), st.none()),
        st.one_of(st.text(max_size=6), st.none(), st.datetimes().map(pd.Timestamp)),
    ),
    max_size=40,
)


def parquet_property(rows: list) -> None:
    frame = pd.DataFrame(rows, columns=["v", "t"]) if rows else pd.DataFrame({"v": []})
    with tempfile.TemporaryDirectory() as folder:
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer)
        except (ValueError, TypeError, OverflowError, Exception):  # pyarrow cannot write every mixed column
            return
        (Path(folder) / "f.parquet").write_bytes(buffer.getvalue())
        one_line_or_loads(lambda: load_series(resolve_dataset({"parquet": "f.parquet", "column": "v"}, Path(folder))))


CSV_TEXT = st.one_of(
    st.binary(max_size=400),
    st.lists(
        st.tuples(
            st.sampled_from(["2024-01-01", "1,5", "x", "", "NA", "1e309", "Total", "3"]),
            st.sampled_from(["1", "2,5", "", "-", "1.002,5", "nan", "inf", "12"]),
        ),  # fmt: skip
        max_size=30,
    ).map(lambda rows: ("t,v\n" + "".join(f"{a},{b}\n" for a, b in rows)).encode()),
    st.builds(
        lambda values: ("v\n" + "".join(f"{v}\n" for v in values)).encode(),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50),
    ),
)

PROPERTIES = [
    (scenario_property, st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5)),
    (raw_scenario_property, st.text(max_size=200)),
    (csv_property, CSV_TEXT),
    (parquet_property, FRAMES),
]


def _check(prop, strategy, examples: int) -> None:  # noqa: ANN001
    settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)(
        given(strategy)(prop)
    )()


@pytest.mark.parametrize("prop,strategy", PROPERTIES, ids=[p.__name__ for p, _ in PROPERTIES])
def test_generated_inputs_load_or_stop_in_one_line(prop, strategy) -> None:  # noqa: ANN001
    _check(prop, strategy, FEW)


@pytest.mark.slow
@pytest.mark.parametrize("prop,strategy", PROPERTIES, ids=[p.__name__ for p, _ in PROPERTIES])
def test_many_generated_inputs_load_or_stop_in_one_line(prop, strategy) -> None:  # noqa: ANN001
    _check(prop, strategy, MANY)


def test_the_properties_see_both_outcomes() -> None:
    """The fuzzing is not vacuous: a generated scenario can load, and a bad one stops in one line."""
    load_scenario_text("name: ok\ndataset: {name: sine, length: 60}\nepochs: 1\n")
    with pytest.raises(UserError):
        load_scenario_text("name: bad\ndataset: {name: sine, length: 60}\nepochs: -1\n")
    assert np.isfinite(load_series(resolve_dataset({"name": "sine", "length": 60}, Path("."))).values).all()
