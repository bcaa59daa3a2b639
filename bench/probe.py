"""The state-carry probe: does stateful training on this backend and engine really carry state?

Keras 3's JAX trainer drops the LSTM state update inside `fit`, silently, so a stateful run
there is a stateless run under another name. The probe trains a tiny stateful model for one
epoch of several batches and checks that the state afterwards is non-zero and that predicting
the same batch twice gives different outputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from bench.specs import RunSpec


@dataclass(frozen=True)
class ProbeResult:
    backend: str
    engine: str
    carries_state: bool
    detail: str

    @property
    def advice(self) -> str:
        if self.carries_state:
            return ""
        if self.backend == "jax" and self.engine == "fit":
            return "use engine: scan (explicit state) on jax, or backend: tensorflow with engine: fit"
        return "use backend: tensorflow with engine: fit"


@functools.lru_cache(maxsize=None)
def probe_fit(backend: str) -> ProbeResult:
    """Probe Keras `fit`/`predict` on the backend this process runs (`backend` names it for the record)."""
    import keras

    from bench.model import state_values

    keras.utils.set_random_seed(0)
    extra = {"use_cudnn": False} if backend == "torch" else {}
    inputs = keras.Input(batch_shape=(1, 2, 1))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.LSTM(2, stateful=True, **extra)(inputs)))
    model.compile(optimizer="adam", loss="mse")
    x = np.linspace(0.1, 0.8, 8, dtype=np.float32).reshape(4, 2, 1)
    model.fit(x, np.ones((4, 1), np.float32), batch_size=1, epochs=1, shuffle=False, verbose=0)
    after_fit = float(sum(np.abs(v).sum() for v in state_values(model)))
    first = model.predict(x[:1], verbose=0)
    second = model.predict(x[:1], verbose=0)
    problems = []
    if after_fit == 0.0:
        problems.append("the LSTM state is still zero after a stateful fit")
    if np.array_equal(first, second):
        problems.append("predicting the same batch twice gives identical outputs")
    detail = "; ".join(problems) if problems else f"state after fit |h|+|c| = {after_fit:.4f}; repeated predictions differ"
    return ProbeResult(backend, "fit", not problems, detail)


def probe(backend: str, engine: str) -> ProbeResult:
    """Probe `engine` on the backend this process runs."""
    if engine == "fit":
        return probe_fit(backend)
    from bench.engines.scan import probe_scan

    return probe_scan()


def refusal(spec: RunSpec) -> str | None:
    """Why a stateful `spec` must not run here: its backend/engine pair fails the probe (None when it passes)."""
    if not spec.stateful:
        return None
    result = probe(spec.backend, spec.engine)
    if result.carries_state:
        return None
    return f"stateful {spec.engine} on {spec.backend} does not carry state ({result.detail}); {result.advice}"
