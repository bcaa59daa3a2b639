"""The `fit` engine: Keras `Model.fit` on whatever backend this process runs.

One `fit` call trains every epoch; a callback resets the LSTM state at each epoch start (the
seed's `reset_states()` after each one-epoch `fit`), times the epoch and hands it to `EpochLoop`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np

from bench import kernels, registry
from bench.engines.loop import Budget, EpochLoop, calibration_rounds
from bench.model import build_model, describe, reset_states, seeded_model, state_values
from bench.optimizers import features_of, make_optimizer, values_of
from bench.probe import ProbeResult
from bench.engines.base import Engine, register_engine
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.windows import Prepared, Windows


@register_engine
class Fit(Engine):
    """Keras `Model.fit`, one spec at a time, on whatever backend the process runs."""

    name = "fit"
    # Keras 3's JAX trainer runs each step statelessly and keeps only the model's tracked variables;
    # a recurrent layer's state variables are not among them, so its state is lost between batches
    fails_state_on = ("jax",)
    takes_steps_per_execution = True

    def probe(self, backend: str) -> ProbeResult:
        return probe_fit(backend)

    def run(self, specs: Sequence[RunSpec], prep: Prepared, windows: Windows) -> list[RunResult]:
        return [run(s, prep, windows) for s in specs]


def steps_per_execution(spec: RunSpec, windows: Windows) -> int:
    """Keras's steps_per_execution for `spec`: the whole epoch by default, and a divisor of `eval_every`
    and the epoch when a step budget evaluates inside epochs (callbacks see only execution ends)."""
    per_epoch, spe = windows.steps_per_epoch, _asked_steps_per_execution(spec, windows)
    if spec.steps is not None and spec.eval_every > 0 and per_epoch % spec.eval_every:
        spe = math.gcd(spe, spec.eval_every, per_epoch)
    return spe


def _asked_steps_per_execution(spec: RunSpec, windows: Windows) -> int:
    return windows.steps_per_epoch if spec.steps_per_execution == "auto" else int(spec.steps_per_execution)


def build_trained_pair(spec: RunSpec, windows: Windows) -> tuple[Any, Any, str]:
    """The training model (compiled, its initial weights from the run's seed), a batch-1 evaluation copy, and
    the run's note on initial weights the seed alone did not draw (`bench.model.seeded_model`)."""
    options = registry.backend(spec.backend).model_options(spec.stateful)[0]
    model, weights_note = seeded_model(spec, spec.batch_size if spec.stateful else None, options)
    spe = steps_per_execution(spec, windows)
    model.compile(
        optimizer=make_optimizer(
            spec.optimizer, values_of(spec, Budget.of(spec, windows).total_steps), *features_of(spec)
        ),
        loss="mean_squared_error",
        steps_per_execution=spe,
    )
    evaluator = build_model(spec, 1, options) if spec.stateful else model
    return model, evaluator, weights_note


#: Up to this many bytes of training windows `fit` gets arrays (Keras's fastest path); above it, batches
#: gathered from the series one at a time (`batches`), so memory stays O(series x features).
MATERIALISE_LIMIT_BYTES = 256 * 2**20


def materialise(windows: Windows) -> bool:
    """Whether this run's windows are small enough to hand Keras as arrays."""
    return windows.n_train_windows * windows.look_back * windows.n_features * 4 <= MATERIALISE_LIMIT_BYTES


def batches(windows: Windows, t: np.ndarray, batch_size: int, labels: bool, shuffle_seed: int | None = None) -> Any:
    """A `keras.utils.PyDataset` of the windows ending before targets `t`, `batch_size` at a time, in
    order (or reshuffled each epoch from `shuffle_seed`), gathered from the series as Keras asks."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
            self.order = self.rng.permutation(len(t)) if self.rng is not None else np.arange(len(t))

        def __len__(self) -> int:
            return -(-len(t) // batch_size)

        def __getitem__(self, k: int) -> Any:
            rows = t[self.order[k * batch_size : (k + 1) * batch_size]]
            x = windows.gather(rows)
            return (x, windows.labels(rows)) if labels else (x,)

        def on_epoch_end(self) -> None:
            if self.rng is not None:
                self.order = self.rng.permutation(len(t))

    return Batches()


def predict_walk(model: Any, evaluator: Any, windows: Windows, stateful: bool) -> np.ndarray:
    """Scaled predictions for every walk window: a batch-1 stateful copy primed by the training part."""
    small = materialise(windows)
    if not stateful:
        size = max(windows.batch_size, 32)
        data = windows.walk_x if small else batches(windows, windows.walk_t, size, labels=False)
        return model.predict(data, batch_size=size if small else None, verbose=0)
    evaluator.set_weights(model.get_weights())
    reset_states(evaluator)
    data = windows.walk_x if small else batches(windows, windows.walk_t, 1, labels=False)
    out = evaluator.predict(data, batch_size=1 if small else None, verbose=0)
    reset_states(evaluator)
    return out


def _fit(
    model: Any, windows: Windows, t: np.ndarray | None, spec: RunSpec, epochs: int, shuffle: bool, callbacks: list
) -> None:
    """`model.fit` on the training windows (those ending before targets `t`, in that order, when given)."""
    if materialise(windows):
        x = windows.train_x if t is None else windows.gather(t)
        y = windows.train_y if t is None else windows.labels(t)
        model.fit(x, y, batch_size=spec.batch_size, epochs=epochs, shuffle=shuffle, verbose=0, callbacks=callbacks)
        return
    data = batches(windows, windows.train_t if t is None else t, spec.batch_size, True, spec.seed if shuffle else None)
    # shuffle=False: Keras would reorder whole batches of a PyDataset; rows are shuffled inside it instead
    model.fit(data, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)


def run(spec: RunSpec, prep: Prepared, windows: Windows) -> RunResult:
    """Train and evaluate one run with `Model.fit`, recording the LSTM kernel its model ran."""
    # a fresh model traces its train and predict functions again, so every run is observed whole
    with kernels.observed() as seen:
        result = _run(spec, prep, windows)
    return dataclasses.replace(result, kernel=kernels.describe(seen))


def _run(spec: RunSpec, prep: Prepared, windows: Windows) -> RunResult:
    import keras

    model, evaluator, weights_note = build_trained_pair(spec, windows)
    loop = EpochLoop(spec, prep, windows, lambda: predict_walk(model, evaluator, windows, spec.stateful))
    spe = steps_per_execution(spec, windows)

    class _Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            reset_states(model)
            self.points = set(loop.eval_points(len(loop.rows) + 1))
            loop.begin_epoch()

        def on_train_batch_end(self, end_step: int, logs: dict | None = None) -> None:
            if end_step + 1 in self.points:  # `end_step`: the last batch this execution ran, 0-based
                if hasattr(model, "jax_state_sync"):  # the JAX trainer keeps weights aside until asked
                    model.jax_state_sync()
                loop.mid_epoch(end_step + 1)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if loop.end_epoch(float((logs or {}).get("loss", float("nan")))):
                model.stop_training = True

    budget = Budget.of(spec, windows)
    whole = budget.epochs if budget.steps_in(budget.epochs) == budget.steps_per_epoch else budget.epochs - 1
    if whole:
        _fit(model, windows, None, spec, whole, spec.shuffle, [_Epochs()])
    if whole < budget.epochs and loop.diverged_epoch is None:
        # a step budget's partial last epoch: its first batches (a random sample of rows when shuffling)
        rows = budget.steps_in(budget.epochs) * spec.batch_size
        order = np.random.default_rng(spec.seed).permutation(windows.n_train_windows) if spec.shuffle else None
        part = windows.train_t[:rows] if order is None else windows.train_t[order[:rows]]
        _fit(model, windows, part, spec, 1, False, [_Epochs()])
    extra = calibration_rounds(loop.steady_rounds(), _rounds(model, spec, windows)) if not loop.diverged_epoch else []
    notes = [registry.backend(spec.backend).model_options(spec.stateful)[1], weights_note]
    if spe < _asked_steps_per_execution(spec, windows):
        notes.append(f"steps_per_execution {spe}, so that evaluation falls every eval_every steps")
    notes = "; ".join(n for n in notes if n)
    n_params, summary = describe(model)
    return dataclasses.replace(loop.result(notes, extra_rounds=extra), n_params=n_params, model_summary=summary)


def _rounds(model: Any, spec: RunSpec, windows: Windows) -> Callable[[], float]:
    """Times one more whole epoch of the compiled model, then puts every variable (weights, LSTM state,
    optimizer moments and step count) back as it was, so the run's results do not change."""
    import keras

    class _Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            reset_states(model)
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds = time.perf_counter() - self.t0

    def one_round() -> float:
        variables = [*model.variables, *model.optimizer.variables]
        saved = [np.array(v.numpy()) for v in variables]
        clock = _Clock()
        try:
            _fit(model, windows, None, spec, 1, spec.shuffle, [clock])
        finally:
            for v, value in zip(variables, saved):
                v.assign(value)
        return clock.seconds

    return one_round


@functools.cache
def probe_fit(backend: str) -> ProbeResult:
    """Probe Keras `fit`/`predict` on the backend this process runs (`backend` names it for the record)."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(batch_shape=(1, 2, 1))
    lstm = keras.layers.LSTM(2, stateful=True, **registry.backend(backend).model_options(stateful=True)[0])
    model = keras.Model(inputs, keras.layers.Dense(1)(lstm(inputs)))
    model.compile(optimizer="adam", loss="mse")
    x = np.linspace(0.1, 0.8, 8, dtype=np.float32).reshape(4, 2, 1)
    with kernels.observed() as seen:
        model.fit(x, np.ones((4, 1), np.float32), batch_size=1, epochs=1, shuffle=False, verbose=0)
        after_fit = float(sum(np.abs(v).sum() for v in state_values(model)))
        first = model.predict(x[:1], verbose=0)
        second = model.predict(x[:1], verbose=0)
    problems = []
    if after_fit == 0.0:
        problems.append("the LSTM state is still zero after a stateful fit")
    if np.array_equal(first, second):
        problems.append("predicting the same batch twice gives identical outputs")
    detail = (
        "; ".join(problems) if problems else f"state after fit |h|+|c| = {after_fit:.4f}; repeated predictions differ"
    )
    return ProbeResult(backend, "fit", not problems, f"{detail}; LSTM kernel: {kernels.describe(seen)}")
