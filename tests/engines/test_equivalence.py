"""The scan engine on JAX trains exactly what the fit engine trains on TensorFlow.

From the same initial weights and windows, both engines must log the same per-epoch losses and
walk-forward accuracy. TensorFlow and JAX initializers draw different random numbers for one
seed, so both start from the same explicit weights.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import DatasetSpec
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.windows import Prepared, Windows, make_windows, prepare
from runspecs import make_spec

# float32 on two frameworks with different kernels: sums differ in the last bits, and Adam
# carries those differences through a few epochs; a wrong batch order, state or loss is off by far more
LOSS_RTOL = 1e-4
RMSE_RTOL = 1e-3


def spec_for(backend: str, engine: str, stateful: bool, layout: str, batch_size: int, layers: int = 1) -> RunSpec:
    return make_spec(
        dataset=DatasetSpec("sine"),
        test_fraction=0.3,
        batch_size=batch_size,
        stateful=stateful,
        layout=layout,
        layers=layers,
        epochs=3,
        learning_rate=0.01,
        seed=7,
        backend=backend,
        engine=engine,
    )


def data(spec: RunSpec) -> tuple[Prepared, Windows]:
    """A short noisy sine (47 training windows: not a multiple of 2 or 5, so batches get trimmed or padded)."""
    t = np.arange(72)
    y = np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(3).standard_normal(len(t))
    prep = prepare(y, spec.test_fraction, spec.difference, spec.scale, spec.validation_fraction)  # type: ignore[arg-type]
    return prep, make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout, spec.horizon)  # type: ignore[arg-type]


def initial_weights(units: int, layers: int = 1, features: int = 1) -> list[np.ndarray]:
    """Fixed weights in `build_model` order (per LSTM: kernel, recurrent kernel, bias; Dense kernel, bias)."""
    rng = np.random.default_rng(11)
    shapes = [
        s for i in range(layers) for s in [(features if i == 0 else units, 4 * units), (units, 4 * units), (4 * units,)]
    ]
    shapes += [(units, 1), (1,)]
    return [rng.uniform(-0.5, 0.5, shape).astype(np.float32) for shape in shapes]


def fit_with(spec: RunSpec, prep: Prepared, windows: Windows, weights: list[np.ndarray]) -> RunResult:
    """The real fit engine's result for `spec` on these windows, started from `weights` (runs in a worker)."""
    from unittest import mock

    from bench.engines import fit

    seeded = fit.seeded_model

    def seeded_with_weights(*args: object, **kwargs: object) -> tuple[object, str]:
        model, note = seeded(*args, **kwargs)
        model.set_weights(weights)
        return model, note

    # the worker is shared with other tests: patch only for this run
    with mock.patch.object(fit, "seeded_model", seeded_with_weights):
        return fit.run(spec, prep, windows)


def fit_from(spec: RunSpec, weights: list[np.ndarray], full: bool = False) -> tuple[list[float], float] | RunResult:
    """(per-epoch losses, test RMSE), or the whole result, of the real fit engine started from `weights`
    (runs in a worker)."""
    result = fit_with(spec, *data(spec), weights)
    assert result.status == "ok", result.error
    return result if full else ([e.loss for e in result.epochs], result.metrics.test_rmse)


def scan_from(spec: RunSpec, weights: list[np.ndarray], full: bool = False) -> tuple[list[float], float] | RunResult:
    """(per-epoch losses, test RMSE), or the whole result, of the scan engine from `weights` (runs in a JAX worker)."""
    from bench.engines import scan

    prep, windows = data(spec)
    result = scan.run(spec, prep, windows, initial_weights=weights)
    assert result.status == "ok", result.error
    return result if full else ([e.loss for e in result.epochs], result.metrics.test_rmse)


def seeded_weights_agree(spec: RunSpec) -> bool:
    """On one backend, the scan engine's seeded weights are the fit engine's (runs in a worker)."""
    from bench.engines.fit import build_trained_pair
    from bench.engines.scan import seeded_weights

    model, _, _ = build_trained_pair(spec, data(spec)[1])
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), seeded_weights(spec), strict=True))


CASES = [  # (stateful, layout, batch_size, layers)
    (True, "streams", 1, 1),
    (True, "streams", 5, 1),
    pytest.param(True, "sequential", 5, 1, marks=pytest.mark.slow),
    (False, "none", 1, 1),
    (False, "none", 5, 1),  # 47 windows: the last batch has 2 rows
    pytest.param(True, "streams", 5, 2, marks=pytest.mark.slow),  # stacked: each layer's state on its own
    pytest.param(False, "none", 5, 2, marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def runs(workers) -> dict[tuple[bool, str, int, int], tuple[Future, Future]]:
    """Each case's fit (TensorFlow) and scan (JAX) runs, submitted together when a test first asks, so the two
    workers run side by side (cases behind the slow marker cost nothing unless selected)."""

    class Runs(dict):
        def __missing__(self, case: tuple[bool, str, int, int]) -> tuple[Future, Future]:
            stateful, layout, batch_size, layers = case
            spec = spec_for("tensorflow", "fit", stateful, layout, batch_size, layers)
            weights = initial_weights(4, layers)
            self[case] = (
                workers["tensorflow"].submit(fit_from, spec, weights),
                workers["jax"].submit(scan_from, dataclasses.replace(spec, backend="jax", engine="scan"), weights),
            )
            return self[case]

    return Runs()


@pytest.mark.parametrize("stateful,layout,batch_size,layers", CASES)
def test_scan_on_jax_matches_fit_on_tensorflow(stateful: bool, layout: str, batch_size: int, layers: int, runs) -> None:
    fit_run, scan_run = runs[(stateful, layout, batch_size, layers)]
    (fit_losses, fit_rmse), (scan_losses, scan_rmse) = fit_run.result(), scan_run.result()
    assert len(scan_losses) == len(fit_losses) == 3
    np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
    np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)


def test_stateful_and_stateless_losses_differ(runs) -> None:
    """Guards the equivalence test: the carried state changes the losses, so matching them means something."""
    stateful, stateless = runs[(True, "streams", 1, 1)][1].result()[0], runs[(False, "none", 1, 1)][1].result()[0]
    assert not np.allclose(stateful, stateless, rtol=LOSS_RTOL)


@pytest.mark.parametrize("stateful,layers", [(True, 1), (False, 1), (True, 2)])
def test_scan_starts_from_the_fit_engines_seeded_weights(stateful: bool, layers: int, workers) -> None:
    spec = spec_for("jax", "fit", stateful, "streams", 5, layers)
    assert workers["jax"].submit(seeded_weights_agree, spec).result()


@pytest.mark.parametrize("stateful,shuffle", [(True, False), (False, True)])
def test_step_budgets_and_validation_agree_across_engines(stateful: bool, shuffle: bool, workers) -> None:
    """A budget of 22 steps (the last epoch partial) with a validation part: both engines take exactly those steps,
    and score the same validation and test parts."""
    spec = dataclasses.replace(
        spec_for("tensorflow", "fit", stateful, "streams" if stateful else "none", 5),
        epochs=None,
        steps=22,
        shuffle=shuffle,
        validation_fraction=0.2,
    )
    weights = initial_weights(4)
    fit_run = workers["tensorflow"].submit(fit_from, spec, weights, True)
    scan_run = workers["jax"].submit(scan_from, dataclasses.replace(spec, backend="jax", engine="scan"), weights, True)
    fit_result, scan_result = fit_run.result(), scan_run.result()
    # 39 training windows before the 10 validation points: stateful keeps 35 (7 batches), stateless has 8 batches
    spe = 7 if stateful else 8
    assert fit_result.steps_run == scan_result.steps_run == 22
    assert [e.step for e in fit_result.epochs] == [min(22, spe * k) for k in range(1, -(-22 // spe) + 1)]
    assert [e.step for e in scan_result.epochs] == [e.step for e in fit_result.epochs]
    assert fit_result.metrics.val_rmse is not None
    if not shuffle:  # the two engines draw different shuffles
        np.testing.assert_allclose(
            [e.loss for e in scan_result.epochs], [e.loss for e in fit_result.epochs], rtol=LOSS_RTOL
        )
        np.testing.assert_allclose(scan_result.metrics.val_rmse, fit_result.metrics.val_rmse, rtol=RMSE_RTOL)
        np.testing.assert_allclose(scan_result.metrics.test_rmse, fit_result.metrics.test_rmse, rtol=RMSE_RTOL)


def features_data(spec: RunSpec) -> tuple[Prepared, Windows]:
    """60 points of the two-column `lagged_covariate` series."""
    from bench.datasets import load_series

    series = load_series(spec.dataset)
    prep = prepare(series.values, spec.test_fraction, spec.difference, spec.scale, 0.0, series.inputs)  # type: ignore[arg-type]
    return prep, make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout, spec.horizon)  # type: ignore[arg-type]


def two_features(spec: RunSpec, weights: list[np.ndarray]) -> tuple[list[float], float]:
    """(per-epoch losses, test RMSE) of `spec`'s engine on two input features, from `weights`."""
    from bench.engines import scan

    prep, windows = features_data(spec)
    assert windows.train_x.shape[2] == 2
    if spec.engine == "scan":
        result = scan.run(spec, prep, windows, initial_weights=weights)
    else:
        result = fit_with(spec, prep, windows, weights)
    assert result.status == "ok", result.error
    return [e.loss for e in result.epochs], result.metrics.test_rmse


@pytest.mark.parametrize("stateful,layout", [(True, "streams"), (True, "sequential"), (False, "none")])
def test_two_input_features_train_alike_on_both_engines(stateful: bool, layout: str, workers) -> None:
    from bench.datasets import resolve_dataset

    spec = dataclasses.replace(
        spec_for("tensorflow", "fit", stateful, layout, 4),
        dataset=resolve_dataset({"name": "lagged_covariate", "length": 60}, Path(".")),
        look_back=4,
    )
    weights = initial_weights(4, features=2)
    fit_run = workers["tensorflow"].submit(two_features, spec, weights)
    scan_run = workers["jax"].submit(two_features, dataclasses.replace(spec, backend="jax", engine="scan"), weights)
    (fit_losses, fit_rmse), (scan_losses, scan_rmse) = fit_run.result(), scan_run.result()
    np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
    np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)


def fit_gathered(spec: RunSpec, weights: list[np.ndarray]) -> tuple[list[float], float]:
    """`fit_from` with every window gathered from the series by a PyDataset (the long-series path)."""
    from unittest import mock

    from bench.engines import fit

    with mock.patch.object(fit, "MATERIALISE_LIMIT_BYTES", 0):
        return fit_from(spec, weights)  # type: ignore[return-value]


@pytest.mark.parametrize("stateful,layout", [(True, "streams"), pytest.param(False, "none", marks=pytest.mark.slow)])
def test_fit_on_gathered_batches_trains_as_on_arrays(stateful: bool, layout: str, workers) -> None:
    spec = dataclasses.replace(spec_for("tensorflow", "fit", stateful, layout, 5), epochs=None, steps=22)
    weights = initial_weights(4)
    arrays = workers["tensorflow"].submit(fit_from, spec, weights)
    gathered = workers["tensorflow"].submit(fit_gathered, spec, weights)
    (array_losses, array_rmse), (gathered_losses, gathered_rmse) = arrays.result(), gathered.result()
    assert len(gathered_losses) == len(array_losses) == 3  # two whole epochs and a partial one
    np.testing.assert_allclose(gathered_losses, array_losses, rtol=1e-6)
    np.testing.assert_allclose(gathered_rmse, array_rmse, rtol=1e-6)


def drawn_weights(spec: RunSpec) -> list[np.ndarray]:
    """Fixed weights for `spec`'s model, whatever its layers (drawn for the shapes the fit engine builds)."""
    from bench.model import build_model

    model = build_model(spec, spec.batch_size if spec.stateful else None)
    rng = np.random.default_rng(11)
    return [rng.uniform(-0.5, 0.5, np.shape(w)).astype(np.float32) for w in model.get_weights()]


def fit_from_drawn(spec: RunSpec) -> tuple[list[np.ndarray], tuple[list[float], float]]:
    weights = drawn_weights(spec)
    return weights, fit_from(spec, weights)


EXAMPLE_FACTORY = Path(__file__).resolve().parents[2] / "examples" / "models" / "gru_lstm.py"
MODELS = {  # name: (model, params, units, layers); the layers are Keras's own on both engines
    "gru": ("gru", {}, 4, 1),
    "simple_rnn": ("simple_rnn", {}, 4, 1),
    "two-widths-and-a-head": ("lstm", {"units": [6, 3], "head": [5]}, 6, 2),
    "example-factory": ("factory", {}, 4, 1),
}
#: Each model stateful and stateless at batch 1 and 5; two run by default, the rest with -m slow.
DEFAULT_CASES = {("gru", True, 5), ("simple_rnn", True, 1)}
MODEL_CASES = [
    pytest.param(
        name, stateful, batch_size, id=f"{name}-{'stateful' if stateful else 'stateless'}-{batch_size}",
        marks=() if (name, stateful, batch_size) in DEFAULT_CASES else pytest.mark.slow,
    )
    for name in MODELS
    for stateful in (True, False)
    for batch_size in (1, 5)
]  # fmt: skip


@pytest.mark.parametrize("name,stateful,batch_size", MODEL_CASES)
def test_every_model_trains_alike_on_both_engines(name: str, stateful: bool, batch_size: int, workers) -> None:
    import json

    from bench.models import ModelSpec
    from bench.models.factory import resolve_factory

    model, params, units, layers = MODELS[name]
    layout = "streams" if stateful else "none"
    spec = dataclasses.replace(
        spec_for("tensorflow", "fit", stateful, layout, batch_size, layers),
        units=units,
        model=resolve_factory({"factory": f"{EXAMPLE_FACTORY.name}:build"}, EXAMPLE_FACTORY.parent)
        if model == "factory"
        else ModelSpec(model, json.dumps(params, sort_keys=True)),
    )
    weights, (fit_losses, fit_rmse) = workers["tensorflow"].submit(fit_from_drawn, spec).result()
    scan_spec = dataclasses.replace(spec, backend="jax", engine="scan")
    scan_losses, scan_rmse = workers["jax"].submit(scan_from, scan_spec, weights).result()
    assert len(scan_losses) == len(fit_losses) == 3
    np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
    np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)


@pytest.mark.parametrize(
    "stateful,batch_size",
    [(True, 5), *(pytest.param(*c, marks=pytest.mark.slow) for c in ((False, 1), (True, 1), (False, 5)))],
)
def test_multi_step_forecasts_train_alike_on_both_engines(stateful: bool, batch_size: int, workers) -> None:
    """horizon 3: Dense(3) on (batch, 3) labels, the loss each row's mean over the leads, on both engines."""
    layout = "streams" if stateful else "none"
    spec = dataclasses.replace(spec_for("tensorflow", "fit", stateful, layout, batch_size), horizon=3)
    weights, (fit_losses, fit_rmse) = workers["tensorflow"].submit(fit_from_drawn, spec).result()
    assert [np.shape(w) for w in weights][-2:] == [(4, 3), (3,)]
    scan_spec = dataclasses.replace(spec, backend="jax", engine="scan")
    scan_losses, scan_rmse = workers["jax"].submit(scan_from, scan_spec, weights).result()
    np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
    np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)


def seeded_run(spec: RunSpec) -> tuple[list[float], float, str]:
    """(per-epoch losses, test RMSE, notes) of `spec`'s own engine from its seed alone, as a real run starts."""
    from bench import registry

    prep, windows = data(spec)
    (result,) = registry.engine(spec.engine).run([spec], prep, windows)
    assert result.status == "ok", result.error
    return [e.loss for e in result.epochs], result.metrics.test_rmse, result.notes


@pytest.mark.parametrize("stateful", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_real_runs_agree_across_backends_and_engines_from_the_seed_alone(stateful: bool, workers) -> None:
    """No weights handed in: TensorFlow `fit` and JAX `scan` draw the same initial weights from the seed."""
    layout = "streams" if stateful else "none"
    spec = spec_for("tensorflow", "fit", stateful, layout, 5)
    fit_run = workers["tensorflow"].submit(seeded_run, spec)
    scan_losses, scan_rmse, notes = (
        workers["jax"].submit(seeded_run, dataclasses.replace(spec, backend="jax", engine="scan")).result()
    )
    fit_losses, fit_rmse, _ = fit_run.result()
    np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
    np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)
    assert "initial weights" not in notes
    if not stateful:  # Keras fit on JAX (stateless) starts there too
        jax_fit_losses, _, _ = workers["jax"].submit(seeded_run, dataclasses.replace(spec, backend="jax")).result()
        np.testing.assert_allclose(jax_fit_losses, fit_losses, rtol=LOSS_RTOL)


def test_adams_own_hyperparameters_train_alike_on_both_engines(workers) -> None:
    """beta_1, beta_2 and epsilon other than Keras's defaults reach both engines' optimizers."""
    spec = spec_for("tensorflow", "fit", True, "streams", 5)
    tuned = dataclasses.replace(spec, beta_1=0.8, beta_2=0.99, epsilon=1e-3)
    weights = initial_weights(4)
    fit_run = workers["tensorflow"].submit(fit_from, tuned, weights)
    scan_losses, scan_rmse = (
        workers["jax"].submit(scan_from, dataclasses.replace(tuned, backend="jax", engine="scan"), weights).result()
    )
    default_losses, _ = (
        workers["jax"].submit(scan_from, dataclasses.replace(spec, backend="jax", engine="scan"), weights).result()
    )
    fit_losses, fit_rmse = fit_run.result()
    np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
    np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)
    assert not np.allclose(scan_losses, default_losses, rtol=1e-3)  # the values are used
