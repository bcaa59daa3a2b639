"""Functions the engine tests run inside backend worker processes (picklable by module path)."""

from __future__ import annotations

import numpy as np

from bench.results import RunResult
from runspecs import run_scenario


def fit_state_checks(batch_size: int) -> dict[str, float | bool]:
    """Train a stateful model with the fit engine's own model code; report the state and repeat predictions."""
    import keras

    from bench.datasets import load_series
    from bench.engines.fit import build_trained_pair
    from bench.model import reset_states, state_values
    from bench.windows import make_windows, prepare
    from runspecs import make_spec

    spec = make_spec(batch_size=batch_size, epochs=1, learning_rate=0.01, seed=1, backend=keras.backend.backend())
    prep = prepare(load_series(spec.dataset).values, 0.33, False, "minmax")
    w = make_windows(prep, 3, batch_size, True, "streams")
    model, _, _ = build_trained_pair(spec, w)
    reset_states(model)
    model.fit(w.train_x, w.train_y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    state = float(sum(np.abs(v).sum() for v in state_values(model)))
    batch = w.train_x[:batch_size]
    first, second = (
        model.predict(batch, batch_size=batch_size, verbose=0),
        model.predict(batch, batch_size=batch_size, verbose=0),
    )
    reset_states(model)
    after_reset = float(sum(np.abs(v).sum() for v in state_values(model)))
    return {"state": state, "repeat_differs": not np.array_equal(first, second), "after_reset": after_reset}


def fake_cudnn_lstm(
    inputs, h, c, mask, kernel, recurrent_kernel, bias, activation, recurrent_activation, return_sequences=False, **_
):
    """A backend `lstm` that answers as cuDNN does (the same LSTM arithmetic), so a CPU can stand in for a GPU."""
    from keras import ops

    outputs = []
    for t in range(inputs.shape[1]):
        z = ops.matmul(inputs[:, t], kernel) + ops.matmul(h, recurrent_kernel) + bias
        i, f, g, o = ops.split(z, 4, axis=-1)  # Keras's gate order
        c = recurrent_activation(f) * c + recurrent_activation(i) * activation(g)
        h = recurrent_activation(o) * activation(c)
        outputs.append(h)
    return h, ops.stack(outputs, axis=1) if return_sequences else h[:, None, :], [h, c]


def run_scenario_with_fake_cudnn(text: str, folder: str) -> list[RunResult]:
    """`run_scenario` with the backend answering every LSTM layer as cuDNN would."""
    from keras.src import backend

    from bench.engines import scan

    real = backend.lstm
    backend.lstm = fake_cudnn_lstm
    scan._program.cache_clear()  # programs traced with the fake must not serve later checks in this worker
    try:
        return run_scenario(text, folder)
    finally:
        backend.lstm = real
        scan._program.cache_clear()


def run_scenario_calibrated(text: str, folder: str, min_rounds: int) -> list[RunResult]:
    """`run_scenario` with calibration asking for `min_rounds` timed rounds (0: none beyond training's)."""
    from bench.engines import loop

    saved = loop.MIN_ROUNDS, loop.MIN_TIMED_SECONDS, loop.MAX_CALIBRATION_SECONDS
    # forced rounds must not stop at the time cap (a TensorFlow epoch here takes about 0.1 s)
    loop.MIN_ROUNDS, loop.MIN_TIMED_SECONDS, loop.MAX_CALIBRATION_SECONDS = (
        (0, 0.0, saved[2]) if min_rounds == 0 else (min_rounds, saved[1], 60.0)
    )
    try:
        return run_scenario(text, folder)
    finally:
        loop.MIN_ROUNDS, loop.MIN_TIMED_SECONDS, loop.MAX_CALIBRATION_SECONDS = saved


def run_scenario_together(text: str, folder: str) -> list[RunResult]:
    """A scenario's runs executed as one group (repeats of one configuration: the scan engine vmaps them)."""
    from pathlib import Path

    from bench.scenario import parse_scenario_text
    from bench.specs import expand
    from bench.worker import execute_group

    return execute_group(expand(parse_scenario_text(text, Path(folder) / "s.yaml")))
