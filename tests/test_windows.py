"""Windows and batch layouts (property tests), scaling and differencing, persistence on airline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.datasets import DatasetSpec, load_series
from bench.errors import UserError
from bench.evaluate import rmse, walk_metrics
from bench.windows import layout_order, make_windows, prepare

layouts = st.sampled_from(["streams", "sequential"])


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 400), batch=st.integers(1, 64), layout=layouts)
def test_trimming_drops_only_the_oldest_windows(n: int, batch: int, layout: str):
    order, dropped = layout_order(n, batch, layout)
    assert dropped == n % batch
    assert len(order) == n - dropped and len(order) % batch == 0
    assert sorted(order.tolist()) == list(range(dropped, n))


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 400), batch=st.integers(1, 64))
def test_streams_row_i_of_batch_k_plus_1_continues_row_i_of_batch_k(n: int, batch: int):
    order, _ = layout_order(n, batch, "streams")
    batches = order.reshape(-1, batch)
    assert np.all(batches[1:] - batches[:-1] == 1)


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(12, 300),
    look_back=st.integers(1, 8),
    batch=st.integers(1, 16),
    difference=st.booleans(),
    layout=layouts,
)
def test_window_starts_follow_the_layout(length: int, look_back: int, batch: int, difference: bool, layout: str):
    y = np.arange(length, dtype=np.float64) * 3.0 + 5
    prep = prepare(y, 0.33, difference, "none")
    n_windows = prep.n_train - look_back - int(difference)
    if n_windows < batch:
        return
    w = make_windows(prep, look_back, batch, True, layout)
    start = w.train_t.reshape(-1, batch) - look_back  # window start index per (batch k, row i)
    step = start[1:] - start[:-1]
    assert np.all(step == (1 if layout == "streams" else batch))
    assert w.n_dropped == n_windows % batch
    # the dropped windows are the oldest ones
    assert w.train_t.min() == look_back + int(difference) + w.n_dropped
    # each window holds the look_back values right before its target
    if not difference:
        np.testing.assert_allclose(w.train_x[:, -1, 0], y[w.train_t - 1])


def test_stateless_windows_are_in_time_order_and_untrimmed():
    prep = prepare(np.arange(100.0), 0.3, False, "minmax")
    w = make_windows(prep, 3, 8, False, "streams")
    assert w.layout == "none" and w.n_dropped == 0
    assert np.all(np.diff(w.train_t) == 1)


@pytest.mark.parametrize("kind", ["minmax", "minmax_sym", "standard", "none"])
@pytest.mark.parametrize("difference", [False, True])
def test_inverse_scaling_and_differencing_round_trip_exactly(kind: str, difference: bool):
    y = load_series(DatasetSpec("airline")).values
    prep = prepare(y, 0.33, difference, kind)
    t = np.arange(1 if difference else 0, len(y))
    np.testing.assert_allclose(prep.to_original(prep.z[t], t), y[t], rtol=0, atol=1e-9)
    train = prep.z[1 if difference else 0 : prep.n_train]
    if kind == "minmax":
        assert train.min() == 0.0 and train.max() == 1.0
    if kind == "minmax_sym":
        assert train.min() == -1.0 and train.max() == 1.0
    if kind == "standard":
        assert abs(train.mean()) < 1e-12 and abs(train.std() - 1) < 1e-12


def test_scaler_is_fitted_on_the_training_part_only():
    y = np.concatenate([np.zeros(70), np.full(30, 100.0)])
    y[0] = 1.0
    prep = prepare(y, 0.3, False, "minmax")
    assert prep.scaler.factor == 1.0  # max of the training part, not 100


@pytest.mark.parametrize("look_back", [1, 3, 12])
def test_every_test_point_is_scored_whatever_the_look_back(look_back: int):
    prep = prepare(load_series(DatasetSpec("airline")).values, 0.33, False, "minmax")
    w = make_windows(prep, look_back, 1, True, "streams")
    assert prep.n_train == 96
    assert w.test_t.tolist() == list(range(96, 144))


def test_airline_persistence_rmse_over_all_48_test_points_is_48_04():
    y = load_series(DatasetSpec("airline")).values
    prep = prepare(y, 0.33, False, "minmax")
    w = make_windows(prep, 3, 1, True, "streams")
    assert walk_metrics(prep, w, prep.z[w.walk_t]).persistence_rmse == pytest.approx(48.04, abs=0.005)
    assert rmse(prep.y[97:144], prep.y[96:143]) == pytest.approx(48.53, abs=0.005)


def test_walk_metrics_of_a_perfect_forecast_are_zero_and_skill_is_one():
    y = load_series(DatasetSpec("airline")).values
    prep = prepare(y, 0.33, True, "standard")
    w = make_windows(prep, 3, 1, True, "streams")
    m = walk_metrics(prep, w, prep.z[w.walk_t])
    assert m.test_rmse == pytest.approx(0, abs=1e-9) and m.train_rmse == pytest.approx(0, abs=1e-9)
    assert m.skill == pytest.approx(1.0)
    assert m.persistence_rmse == pytest.approx(48.04, abs=0.005)


@pytest.mark.parametrize("difference,validation", [(False, 0.0), (True, 0.2)])
def test_a_perfect_multi_step_forecast_scores_zero_at_every_lead(difference: bool, validation: float):
    """horizon 3: labels are the next three values, differenced ones add up from y[t-1], every part keeps only
    targets whose three values lie in it, and the walk still steps one point at a time."""
    y = load_series(DatasetSpec("airline")).values
    prep = prepare(y, 0.33, difference, "standard", validation)
    w = make_windows(prep, 3, 1, True, "streams", horizon=3)
    assert np.array_equal(w.walk_t, np.arange(w.walk_t[0], len(y) - 2))
    assert w.test_t.tolist() == list(range(96, 142))  # 48 test points, the last two without three values
    assert w.train_t.max() + 2 == prep.n_fit - 1
    if validation:
        val = w.walk_t[w.val_start : w.val_start + w.n_val_points]
        assert val[0] == prep.n_fit and val[-1] + 2 == prep.n_train - 1
    m = walk_metrics(prep, w, w.labels(w.walk_t))
    assert m.test_rmse == pytest.approx(0, abs=1e-4) and m.train_rmse == pytest.approx(0, abs=1e-4)
    assert json.loads(m.test_rmse_by_lead) == pytest.approx([0, 0, 0], abs=1e-4)


def test_persistence_of_several_steps_repeats_the_last_value():
    """On a ramp y = t the naive forecast of lead h (1-based) is off by exactly h."""
    y = np.arange(100, dtype=float)
    prep = prepare(y, 0.3, False, "none")
    w = make_windows(prep, 2, 1, False, "streams", horizon=4)
    m = walk_metrics(prep, w, w.labels(w.walk_t))
    assert json.loads(m.persistence_rmse_by_lead) == pytest.approx([1, 2, 3, 4])
    assert m.persistence_rmse == pytest.approx(np.sqrt(np.mean([1, 4, 9, 16])))
    assert rmse(prep.y[w.test_t], prep.y[w.test_t - 1]) == pytest.approx(1.0)  # horizon 1 is today's baseline


def test_a_horizon_longer_than_the_test_part_is_refused():
    prep = prepare(np.arange(20, dtype=float), 0.2, False, "none")
    with pytest.raises(UserError, match="horizon 5 is longer than the 4 test points.*smaller horizon"):
        make_windows(prep, 2, 1, True, "streams", horizon=5)
    with pytest.raises(UserError, match="look_back 10 and horizon 7 leave no training windows"):
        make_windows(prep, 10, 1, True, "streams", horizon=7)
