"""A toy engine registered from outside lstm-bench (LSTM_BENCH_PLUGINS=toy_engine): the proof that an
engine is one module plus its registration.

It fits a linear autoregression on the windows with NumPy, one full-batch gradient step per epoch,
trains all repeats of a configuration in one call, and claims no stateful support, so the probe
turns its stateful runs away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.engines.loop import EpochLoop
from bench.probe import ProbeResult
from bench.engines.base import Engine, register_engine
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.windows import Prepared, Windows


@register_engine
class Toy(Engine):
    name = "toy"
    backends = ("jax",)
    fails_state_on = ("jax",)
    trains_together = True

    def probe(self, backend: str) -> ProbeResult:
        return ProbeResult(backend, self.name, False, "a linear model has no state to carry")

    def run(self, specs: Sequence[RunSpec], prep: Prepared, windows: Windows) -> list[RunResult]:
        return [_train(spec, prep, windows, together=len(specs)) for spec in specs]


def _train(spec: RunSpec, prep: Prepared, windows: Windows, together: int) -> RunResult:
    x = windows.train_x.reshape(len(windows.train_x), -1)
    y = windows.train_y.reshape(-1)
    walk = windows.walk_x.reshape(len(windows.walk_x), -1)
    w, b = np.random.default_rng(spec.seed).normal(0, 0.1, x.shape[1]), 0.0
    loop = EpochLoop(spec, prep, windows, lambda: walk @ w + b)
    for _ in range(spec.epochs):
        loop.begin_epoch()
        err = x @ w + b - y
        w, b = w - spec.learning_rate * 2 * x.T @ err / len(y), b - spec.learning_rate * 2 * err.mean()
        if loop.end_epoch(float(np.mean(err**2))):
            break
    return loop.result(notes="toy engine", trained_together=together)
