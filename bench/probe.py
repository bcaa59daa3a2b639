"""The state-carry probe: does stateful training on this backend and engine really carry state?

Keras 3's JAX trainer drops the LSTM state update inside `fit`, silently, so a stateful run
there is a stateless run under another name. Each engine's probe (`Engine.probe`) trains a tiny
stateful model for one epoch of several batches and checks that the state afterwards is non-zero
and that it changes the predictions (the `fit` probe predicts the same batch twice, the `scan`
probe compares a prediction from the carried state with one from a zero state).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import registry


@dataclass(frozen=True)
class ProbeResult:
    backend: str
    engine: str
    carries_state: bool
    detail: str

    @property
    def advice(self) -> str:
        return "" if self.carries_state else registry.stateful_advice(self.backend, self.engine)


def probe(backend: str, engine: str) -> ProbeResult:
    """Probe `engine` on the backend this process runs."""
    return registry.engine(engine).probe(backend)
