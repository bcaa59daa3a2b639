"""The run's optimizer (`bench.optimizers`): at its defaults it updates exactly as Keras's own Adam and SGD,
its values are the named hyperparameters, and its schedule is the documented warm-up and decay."""

from __future__ import annotations

import numpy as np
import pytest

from bench.optimizers import schedule_factor


def stock_and_ours(pairs: list[tuple[str, dict, dict]]) -> list[float]:
    """The largest weight difference after an epoch of fit, per (name, Keras optimizer kwargs, our values)
    (runs in a JAX worker)."""
    import keras

    from bench.optimizers import make_optimizer

    def train(opt: object) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3, 1)), keras.layers.LSTM(4), keras.layers.Dense(1)])
        model.compile(optimizer=opt, loss="mse")
        x = np.random.default_rng(0).normal(size=(40, 3, 1)).astype("float32")
        model.fit(x, x[:, -1], batch_size=2, epochs=1, verbose=0, shuffle=False)
        return model.get_weights()

    stock = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}
    out = []
    for name, kwargs, values in pairs:
        ours = make_optimizer("sgd" if name == "sgd" else "adam", values)
        out.append(max(float(np.abs(a - b).max()) for a, b in zip(train(stock[name](**kwargs)), train(ours))))
    return out


def test_at_keras_values_the_updates_are_keras_own(workers) -> None:
    pairs = [
        ("adam", dict(learning_rate=0.01), {"learning_rate": 0.01}),
        ("adam", dict(learning_rate=0.01, beta_1=0.8, epsilon=1e-3), {"learning_rate": 0.01, "beta_1": 0.8,
                                                                      "epsilon": 1e-3}),
        ("adamw", dict(learning_rate=0.01, weight_decay=0.1), {"learning_rate": 0.01, "weight_decay": 0.1}),
        ("sgd", dict(learning_rate=0.01, momentum=0.9, nesterov=True), {"learning_rate": 0.01, "momentum": 0.9,
                                                                        "nesterov": 1.0}),
    ]  # fmt: skip
    differences = workers["jax"].submit(stock_and_ours, pairs).result()
    assert differences[0] == 0.0 and differences[1] == 0.0  # Adam bit for bit
    assert max(differences) < 1e-6, differences


def rates_applied(values: dict, steps: int) -> list[float]:
    """The rate each SGD step applied, read off a weight whose gradient is 1 (runs in a JAX worker)."""
    import keras

    from bench.optimizers import make_optimizer

    opt = make_optimizer("sgd", values)
    w = keras.Variable(np.float32(0.0))
    opt.build([w])
    seen = []
    for _ in range(steps):
        before = float(w.numpy())
        opt.apply([keras.ops.ones(())], [w])
        seen.append(before - float(w.numpy()))
    return seen


@pytest.mark.parametrize(
    "warmup,decay,end", [(0, "constant", 0.0), (4, "constant", 0.0), (0, "cosine", 0.1), (3, "linear", 0.2)]
)
def test_the_schedule_warms_up_then_decays_as_documented(warmup: int, decay: str, end: float, workers) -> None:
    total = 12
    values = {"learning_rate": 0.5, "warmup_steps": warmup, "total_steps": total,
              "decay": ("constant", "cosine", "linear").index(decay), "decay_end": end}  # fmt: skip
    applied = workers["jax"].submit(rates_applied, values, total).result()
    expected = [0.5 * schedule_factor(t, warmup, total, values["decay"], end) for t in range(total)]
    np.testing.assert_allclose(applied, expected, rtol=1e-5)
    if warmup:  # linear from 1 / warmup of the rate to the whole rate
        assert applied[0] == pytest.approx(0.5 / warmup, rel=1e-5) and applied[warmup - 1] == pytest.approx(0.5)
    if decay != "constant":  # after the warm-up, down towards end x the rate
        assert np.all(np.diff(applied[warmup:]) < 0) and applied[-1] < 0.5 * (end + 0.1)
