"""The generic `scan` path (the run's own Keras model in a StatelessScope) against the hand-built one it
replaced in 0.6.0 (one LSTM rebuilt with explicit (h, c) inputs and outputs), side by side on the seed
configuration: stateful, batch 1, LSTM(4). Ratios print at the end (tests/perf/conftest.py).
Run: pytest tests/perf/test_scan_generic.py --benchmark-only -s
"""

from __future__ import annotations

from typing import Any

import pytest

from test_throughput import record, scan_epoch, seed_spec

ROUNDS = 300  # an epoch here is about a millisecond: many rounds steady the median
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
                look_back, units, layers, features = self.key[1:5]
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

        def forward(
            self, trainable: list[Any], x: Any, state: list[Any], rng: Any = None, training: bool = False
        ) -> tuple[Any, list[Any], list[Any]]:
            others = self.built(0).other_values
            outputs, _ = self.model.stateless_call(trainable, others, [x, *state], training=training)
            return outputs[0], list(outputs[1:]), others

    from bench.model import optimizer_key

    return HandBuilt(scan._shape_key(spec), optimizer_key(spec))


def test_generic_against_hand_built(benchmark: Any, throughput: dict[str, float], jax_backend: None):
    """Both epochs in turn, round after round (an epoch is about a millisecond, so drifts of the
    machine's speed would otherwise land on one side); each side's median round."""
    import statistics
    import time

    spec = seed_spec(1)
    generic, n, _ = scan_epoch(1, spec=spec)
    hand, _, _ = scan_epoch(1, spec=spec, program=hand_built_program(spec))
    generic(), hand()  # compile both
    times: dict[str, list[float]] = {GENERIC: [], HAND_BUILT: []}

    def both() -> None:
        for name, epoch in ((GENERIC, generic), (HAND_BUILT, hand)):
            t = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - t)

    benchmark.pedantic(both, rounds=ROUNDS, warmup_rounds=1)
    for name, rounds in times.items():
        throughput[name] = n / statistics.median(rounds)
        benchmark.extra_info[name] = throughput[name]


# --- the example factory model (examples/models/gru_lstm.py): scan against TF fit, and vmapped repeats


FACTORY_SCAN = "scan, example factory model, batch 1"
FACTORY_VMAP10 = "scan, example factory model, 10 vmapped repeats, batch 1"
FACTORY_FIT = "TF fit engine, example factory model, batch 1"


def factory_spec(**overrides: Any) -> Any:
    from pathlib import Path

    from bench.models.factory import resolve_factory

    example = Path(__file__).resolve().parents[2] / "examples" / "models" / "gru_lstm.py"
    model = resolve_factory({"factory": f"{example}:build", "params": {}}, Path("/"))
    return seed_spec(1, model=model, **overrides)


@pytest.mark.parametrize("repeats", [0, 10])
def test_factory_model_on_scan(repeats: int, benchmark: Any, throughput: dict[str, float], jax_backend: None):
    epoch, n, _ = scan_epoch(1, repeats=repeats, spec=factory_spec())
    benchmark.pedantic(epoch, rounds=ROUNDS, warmup_rounds=1)
    record(benchmark, throughput, FACTORY_VMAP10 if repeats else FACTORY_SCAN, n * max(repeats, 1))


def test_factory_model_on_tf_fit(benchmark: Any, throughput: dict[str, float], workers: Any):
    import dataclasses
    import statistics

    from test_harness_perf import SWEEP_EPOCHS, fit_run_rate

    spec = dataclasses.replace(factory_spec(), backend="tensorflow", engine="fit", epochs=SWEEP_EPOCHS)
    runs: list[dict[str, Any]] = []
    benchmark.pedantic(lambda: runs.append(workers["tensorflow"].submit(fit_run_rate, spec).result()), rounds=2)
    throughput[FACTORY_FIT] = statistics.median(r["samples_per_sec"] for r in runs)
