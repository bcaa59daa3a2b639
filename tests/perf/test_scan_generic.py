"""The generic `scan` path (the run's own Keras model in a StatelessScope) against the hand-built one it
replaced in 0.6.0 (one LSTM rebuilt with explicit (h, c) inputs and outputs), side by side on the seed
configuration: stateful, batch 1, LSTM(4). Ratios print at the end (tests/perf/conftest.py).
Run: pytest tests/perf/test_scan_generic.py --benchmark-only -s
"""

from __future__ import annotations

from typing import Any

import pytest

from test_throughput import record, scan_epoch, seed_spec

ROUNDS = 20
GENERIC = "scan, generic model path, seed configuration, batch 1"
HAND_BUILT = "scan, hand-built explicit-state LSTM (0.5.0), seed configuration, batch 1"


def hand_built_program(spec: Any) -> Any:
    """The 0.5.0 program: the same epoch, walk and optimizer, over an LSTM rebuilt with explicit states."""
    import jax.numpy as jnp
    import keras

    from bench.engines import scan

    class HandBuilt(scan.Program):
        def built(self, batch: int) -> Any:
            if not self._built:
                look_back, units, layers, features = self.key[1:]
                window = keras.Input(shape=(look_back, features), name="window")
                states_in = [keras.Input(shape=(units,)) for _ in range(layers) for _ in ("h", "c")]
                x, states_out = window, []
                for i in range(layers):
                    x, h, c = keras.layers.LSTM(
                        units, return_sequences=i < layers - 1, return_state=True, unroll=True, name=f"lstm_{i}"
                    )(x, initial_state=states_in[2 * i : 2 * i + 2])
                    states_out += [h, c]
                model = keras.Model([window, *states_in], [keras.layers.Dense(1, name="dense")(x), *states_out])
                others = list(model.non_trainable_variables)
                self._built[0] = scan._Built(
                    model, list(model.trainable_variables), [], others, [v.value for v in others]
                )
            return self._built[0]

        def zero_state(self, batch: int) -> list[Any]:
            return [jnp.zeros((batch, self.key[2]), jnp.float32) for _ in range(2 * self.key[3])]

        def forward(self, trainable: list[Any], x: Any, state: list[Any]) -> tuple[Any, list[Any]]:
            outputs, _ = self.model.stateless_call(trainable, self.built(0).other_values, [x, *state], training=True)
            return outputs[0], list(outputs[1:])

    return HandBuilt(scan._shape_key(spec), spec.optimizer)


@pytest.mark.parametrize("path", ["generic", "hand-built"])
def test_generic_against_hand_built(path: str, benchmark: Any, throughput: dict[str, float], jax_backend: None):
    spec = seed_spec(1)
    program = hand_built_program(spec) if path == "hand-built" else None
    epoch, n, _ = scan_epoch(1, spec=spec, program=program)
    benchmark.pedantic(epoch, rounds=ROUNDS, warmup_rounds=1)
    record(benchmark, throughput, GENERIC if path == "generic" else HAND_BUILT, n)
