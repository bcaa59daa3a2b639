"""The `fit` engine: Keras `Model.fit` on whatever backend this process runs.

One `fit` call trains every epoch; a callback resets the LSTM state at each epoch start (the
seed's `reset_states()` after each one-epoch `fit`), times the epoch and hands it to `EpochLoop`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.engines.loop import EpochLoop
from bench.model import build_model, lstm_kwargs, make_optimizer, reset_states
from bench.probe import refusal
from bench.results import RunResult
from bench.specs import RunSpec
from bench.windows import Prepared, Windows


def build_trained_pair(spec: RunSpec, windows: Windows) -> tuple[Any, Any]:
    """The training model (compiled, seeded) and a batch-1 evaluation copy of it."""
    import keras

    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec, spec.batch_size if spec.stateful else None)
    spe = windows.steps_per_epoch if spec.steps_per_execution == "auto" else int(spec.steps_per_execution)
    model.compile(optimizer=make_optimizer(spec.optimizer, spec.learning_rate), loss="mean_squared_error", steps_per_execution=spe)
    evaluator = build_model(spec, 1) if spec.stateful else model
    return model, evaluator


def predict_walk(model: Any, evaluator: Any, windows: Windows, stateful: bool) -> np.ndarray:
    """Scaled predictions for every walk window: a batch-1 stateful copy primed by the training part."""
    if not stateful:
        return model.predict(windows.walk_x, batch_size=max(windows.batch_size, 32), verbose=0)
    evaluator.set_weights(model.get_weights())
    reset_states(evaluator)
    out = evaluator.predict(windows.walk_x, batch_size=1, verbose=0)
    reset_states(evaluator)
    return out


def run(spec: RunSpec, prep: Prepared, windows: Windows) -> RunResult:
    """Train and evaluate one run with `Model.fit`."""
    import keras

    model, evaluator = build_trained_pair(spec, windows)
    loop = EpochLoop(spec, prep, windows, lambda: predict_walk(model, evaluator, windows, spec.stateful))

    class _Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            reset_states(model)
            loop.begin_epoch()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if loop.end_epoch(float((logs or {}).get("loss", float("nan")))):
                model.stop_training = True

    model.fit(
        windows.train_x,
        windows.train_y,
        batch_size=spec.batch_size,
        epochs=spec.epochs,
        shuffle=spec.shuffle,
        verbose=0,
        callbacks=[_Epochs()],
    )
    notes = "use_cudnn=False (stateful training on torch)" if lstm_kwargs(spec, keras.backend.backend()) else ""
    return loop.result(notes)


def unsupported_reason(spec: RunSpec) -> str | None:
    """Why this process cannot run `spec` with `fit` (None when it can): the state-carry probe decides."""
    return refusal(spec)
