"""Inputs besides the target's own past: a file's feature columns and the built-in `lagged_covariate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.datasets import load_series, resolve_dataset
from bench.errors import UserError
from bench.specs import expand
from bench.scenario import parse_scenario_text
from bench.windows import make_windows, prepare
from clitools import write
from runspecs import run_scenario


def test_a_files_features_are_the_inputs_in_order_and_the_target_only_when_listed(tmp_path: Path) -> None:
    write(
        tmp_path / "l.csv",
        "time;load;temp;hour\n" + "".join(f"2024-01-01 {h:02d}:00;{10 + h};{h / 2};{h}\n" for h in range(24)),
    )
    with_load = load_series(
        resolve_dataset({"csv": "l.csv", "target": "load", "features": ["load", "temp"], "time": "time"}, tmp_path)
    )
    assert with_load.values.tolist() == [10.0 + h for h in range(24)]
    assert with_load.inputs.shape == (24, 2) and with_load.inputs[3].tolist() == [13.0, 1.5]
    without = load_series(resolve_dataset({"csv": "l.csv", "target": "load", "features": ["temp", "hour"]}, tmp_path))
    assert without.inputs[3].tolist() == [1.5, 3.0] and without.spec.features == ("temp", "hour")
    with pytest.raises(
        UserError, match=r"column 'tmp' not in .*l.csv; its columns are time, load, temp, hour; did you mean 'temp'"
    ):
        load_series(resolve_dataset({"csv": "l.csv", "target": "load", "features": ["tmp"]}, tmp_path))
    with pytest.raises(UserError, match="'features' goes with 'target: NAME'"):
        resolve_dataset({"csv": "l.csv", "column": "load", "features": ["temp"]}, tmp_path)


def test_features_are_scaled_one_by_one_on_the_training_part_and_windowed(tmp_path: Path) -> None:
    series = load_series(resolve_dataset({"name": "lagged_covariate", "length": 200}, tmp_path))
    prep = prepare(series.values, 0.25, False, "minmax", 0.0, series.inputs)
    assert prep.x.shape == (200, 2)
    for column in prep.x.T:  # each feature on [0, 1] over the training part
        assert column[:150].min() == pytest.approx(0.0) and column[:150].max() == pytest.approx(1.0)
    w = make_windows(prep, 4, 2, True, "streams")
    assert w.train_x.shape[1:] == (4, 2) and w.walk_x.shape[1:] == (4, 2)
    t = w.train_t[0]
    np.testing.assert_allclose(w.train_x[0], prep.x[t - 4 : t], rtol=1e-6)
    assert w.train_y[0, 0] == pytest.approx(prep.z[t])


def test_the_feature_names_are_part_of_the_dataset_and_the_run_id(tmp_path: Path) -> None:
    text = "name: m\ndataset: {{name: lagged_covariate, length: 300{}}}\nepochs: 2\n"
    both, target_only = (
        expand(parse_scenario_text(text.format(f), tmp_path / "s.yaml"))[0] for f in ("", ", features: [y]")
    )
    assert (both.dataset.n_features, target_only.dataset.n_features) == (2, 1)
    assert both.as_flat()["features"] == "y,x" and target_only.as_flat()["features"] == "y"
    assert both.run_id != target_only.run_id and '"features": ["y"]' in target_only.as_flat()["dataset_params"]


# fit needs 60 epochs here (about 50 s), so it is slow; test_equivalence.py shows it trains two features as scan does
@pytest.mark.parametrize("engine,backend", [("scan", "jax"), pytest.param("fit", "tensorflow", marks=pytest.mark.slow)])
def test_a_lagged_covariate_is_really_used(tmp_path: Path, engine: str, backend: str, workers) -> None:
    """y[t] = 2 x[t-3] + noise: with x among the inputs the forecast is far better than from y alone."""
    text = (
        "name: m\ndataset: [{name: lagged_covariate, length: 400}, "
        "{name: lagged_covariate, length: 400, features: [y]}]\n"
        f"look_back: 4\nbatch_size: 8\nstateful: [true, false]\nunits: 8\nepochs: {150 if engine == 'scan' else 60}\n"
        f"learning_rate: 0.01\nbackend: {backend}\nengine: {engine}\n"
    )
    results = workers[backend].submit(run_scenario, text, str(tmp_path)).result()
    runs = pd.DataFrame(
        {"status": r.status, "n_features": r.spec.dataset.n_features, "stateful": r.spec.stateful}
        | ({"test_rmse": r.metrics.test_rmse} if r.metrics else {})
        for r in results
    )
    assert set(runs.status) == {"ok"} and sorted(runs.n_features) == [1, 1, 2, 2]
    rmse = runs.groupby(["n_features", "stateful"]).test_rmse.first()
    for stateful in (False, True):
        assert rmse[(2, stateful)] < 0.5 * rmse[(1, stateful)], rmse
