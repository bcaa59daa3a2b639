"""Initial weights are drawn from the run's seed by NumPy, following each weight's Keras initializer, so every
backend and engine starts a run from the same point (`bench.models.weights`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bench.models import ModelSpec
from bench.runspec import RunSpec
from runspecs import make_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "models" / "gru_lstm.py"


def spec(backend: str, model: ModelSpec | None = None, **kw: object) -> RunSpec:
    return make_spec(backend=backend, engine="fit", batch_size=4, look_back=3, seed=5, model=model or ModelSpec(), **kw)


def drawn(spec: RunSpec) -> list[np.ndarray]:
    """The fit engine's initial weights for `spec` on the worker's backend, and its note."""
    from bench.model import seeded_model

    model, note = seeded_model(spec, spec.batch_size)
    assert note == ""
    return model.get_weights()


def factory_model() -> ModelSpec:
    from bench.models.factory import resolve_factory

    return resolve_factory({"factory": f"{EXAMPLE.name}:build"}, EXAMPLE.parent)


MODELS = {
    "lstm": ModelSpec(),
    "gru two layers and a head": ModelSpec("gru", json.dumps({"units": [6, 3], "head": [5]})),
    "simple_rnn": ModelSpec("simple_rnn"),
}


@pytest.mark.parametrize(
    "name", ["lstm", *(pytest.param(m, marks=pytest.mark.slow) for m in [*list(MODELS)[1:], "example factory"])]
)
def test_every_backend_draws_the_same_initial_weights(name: str, workers) -> None:
    model = factory_model() if name == "example factory" else MODELS[name]
    tf = workers["tensorflow"].submit(drawn, spec("tensorflow", model)).result()
    jx = workers["jax"].submit(drawn, spec("jax", model)).result()
    assert len(tf) == len(jx) > 0
    for a, b in zip(tf, jx, strict=True):
        np.testing.assert_array_equal(a, b)
    other_seed = workers["jax"].submit(drawn, dataclasses.replace(spec("jax", model), seed=6)).result()
    assert not np.array_equal(other_seed[0], jx[0])


def keras_and_ours(units: int) -> dict[str, float]:
    """Statistics of an LSTM(units) -> Dense(1)'s weights: Keras's own draw against ours (in a worker)."""
    import keras

    from bench.model import build_model
    from bench.models.weights import draw

    s = dataclasses.replace(spec("jax"), units=units, stateful=False)
    keras.utils.set_random_seed(1)
    model = build_model(s, None)
    theirs = model.get_weights()
    ours, kept = draw(model, 1)
    kernel, recurrent, bias = ours[:3]
    return {
        "kept": len(kept),
        "kernel_std_ratio": float(kernel.std() / theirs[0].std()),
        "dense_std_ratio": float(ours[3].std() / theirs[3].std()),
        "recurrent_orthogonal": float(np.abs(recurrent @ recurrent.T - np.eye(units)).max()),
        "forget_bias": float(bias[units : 2 * units].min()),
        "other_bias": float(np.abs(np.delete(bias, np.s_[units : 2 * units])).max()),
        "bias_matches_keras": float(np.array_equal(bias, theirs[2])),
    }


def test_the_draws_follow_the_keras_initializers(workers) -> None:
    stats = workers["jax"].submit(keras_and_ours, 32).result()
    assert stats["kept"] == 0
    assert 0.93 < stats["kernel_std_ratio"] < 1.07  # Glorot uniform: the same spread as Keras's own draw
    assert 0.7 < stats["dense_std_ratio"] < 1.3  # 33 values only
    assert stats["recurrent_orthogonal"] < 1e-5  # orthogonal
    assert stats["forget_bias"] == 1.0 and stats["other_bias"] == 0.0  # unit_forget_bias
    assert stats["bias_matches_keras"] == 1.0


CUSTOM = """
import keras


class Halves(keras.initializers.Initializer):
    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, 0.5, dtype=dtype)


def build(look_back, n_features, batch_size, stateful, horizon):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    x = keras.layers.LSTM(3, stateful=stateful, kernel_initializer=Halves())(inputs)
    return keras.Model(inputs, keras.layers.Dense(horizon)(x))
"""


def custom_initializer(path: str) -> tuple[list[np.ndarray], str]:
    from bench.model import seeded_model
    from bench.models.factory import resolve_factory

    model = resolve_factory({"factory": f"{Path(path).name}:build"}, Path(path).parent)
    s = dataclasses.replace(spec("jax"), model=model)
    built, note = seeded_model(s, s.batch_size)
    return built.get_weights(), note


def test_an_initializer_this_cannot_follow_keeps_the_backends_draw_and_says_so(tmp_path: Path, workers) -> None:
    path = tmp_path / "custom.py"
    path.write_text(CUSTOM)
    weights, note = workers["jax"].submit(custom_initializer, str(path)).result()
    assert np.all(weights[0] == 0.5)  # the custom initializer's own values
    assert "initial weights: 1 drawn by the backend" in note and "kernel (Halves)" in note
