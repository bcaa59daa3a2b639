"""Training throughput of the seed configuration (airline, LSTM(4), look_back 3, stateful, batch 1).

(a) the seed-style loop on TensorFlow (`fit(epochs=1)` + `reset_state()` per epoch, in a worker),
(b) the scan engine's compiled epoch, (c) a hand-written JAX LSTM scan doing the same math; a batch
size sweep of the scan engine; and 10 vmapped repeats against one. Ratios print at the end
(tests/perf/conftest.py, from the measurement names used here).
Targets: scan / seed loop >= 100; hand-written / scan <= 1.5; 10 vmapped / 1 repeat wall <= 2.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any, NamedTuple
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from bench.datasets import load_series
from bench.runspec import RunSpec
from bench.windows import Windows, make_windows, prepare
from runspecs import make_spec

ROUNDS = 30
# measurement names, as tests/perf/conftest.py's ratio table spells them
SCAN = "(b) scan engine, batch 1"
HAND = "(c) hand-written JAX LSTM, batch 1"
VMAP10 = "scan engine, 10 vmapped repeats, batch 1"
HAND_VMAP10 = "hand-written JAX LSTM, 10 vmapped repeats, batch 1"


def seed_spec(batch_size: int = 1, backend: str = "jax", **overrides: object) -> RunSpec:
    common = dict(scenario="perf", batch_size=batch_size, epochs=1, seed=0, backend=backend, engine="scan")
    return make_spec(**{**common, **overrides})


def seed_windows(spec: RunSpec) -> Windows:
    prep = prepare(load_series(spec.dataset).values, spec.test_fraction, spec.difference, spec.scale)  # type: ignore[arg-type]
    return make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout)  # type: ignore[arg-type]


def record(benchmark: Any, throughput: dict[str, float], name: str, samples: int) -> float:
    """Samples/s from the benchmark's median round; stored for the summary and the benchmark record."""
    rate = samples / benchmark.stats.stats.median
    benchmark.extra_info["samples_per_sec"] = rate
    throughput[name] = rate
    return rate


# --- (a) the seed-style loop on TensorFlow, served from a worker one epoch per request --------


def _seed_loop_server(conn: Connection) -> None:
    from bench.worker import init_worker

    init_worker("tensorflow", "cpu")
    import keras

    from bench.model import build_model, reset_states
    from bench.optimizers import make_optimizer

    spec = seed_spec(backend="tensorflow")
    windows = seed_windows(spec)
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec, 1)
    model.compile(
        optimizer=make_optimizer(spec.optimizer, {"learning_rate": spec.learning_rate}), loss="mean_squared_error"
    )
    conn.send(windows.n_train_windows)
    while conn.recv():
        model.fit(windows.train_x, windows.train_y, batch_size=1, epochs=1, shuffle=False, verbose=0)
        reset_states(model)
        conn.send(True)


@pytest.fixture(scope="module")
def seed_loop() -> Iterator[tuple[Callable[[], None], int]]:
    """(run one seed-style epoch in the TensorFlow worker, samples per epoch)."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_seed_loop_server, args=(child,), daemon=True)
    proc.start()
    n = parent.recv()

    def epoch() -> None:
        parent.send(True)
        parent.recv()

    yield epoch, n
    parent.send(False)
    proc.join(timeout=30)


def test_seed_loop_on_tensorflow(
    benchmark: Any, throughput: dict[str, float], seed_loop: tuple[Callable[[], None], int]
) -> None:
    epoch, n = seed_loop
    benchmark.pedantic(epoch, rounds=5, warmup_rounds=1)
    record(benchmark, throughput, "(a) seed loop, TF fit per epoch, batch 1", n)


# --- (b) the scan engine and (c) the hand-written JAX LSTM -------------------------------------


class ScanEpoch(NamedTuple):
    run: Callable[[], Any]  # one epoch; the first call compiles (benchmarks take it as a warm-up round)
    samples: int  # training windows per epoch (per repeat)
    program: Any  # the engine's `Program`, whose `kernel` says which LSTM kernel the epoch traced


def scan_epoch(batch_size: int, repeats: int = 0, spec: RunSpec | None = None, program: Any = None) -> ScanEpoch:
    """One scan-engine epoch, stateful, on the seed configuration (or `spec`, with `program` instead of
    the engine's own); repeats > 0: vmapped."""
    import jax

    from bench.engines import scan

    spec = spec or seed_spec(batch_size)
    w = seed_windows(spec)
    program = program or scan.program_for(spec)
    train = program.train_state(scan.seeded_weights(spec), {"learning_rate": spec.learning_rate}, spec.seed, False)
    fn = program.epoch_fn(vmapped=bool(repeats), noise=False)
    data = scan.epoch_data(spec, w)
    start = scan.RunCarry(train=train, order=scan.batch_order(spec, w, data), state=program.zero_state(spec.batch_size))
    values = [scan.stack([start] * repeats) if repeats else start]  # each repeat's own copy under vmap
    zeros = values[0].state

    def epoch() -> Any:
        values[0], loss = fn(dataclasses.replace(values[0], state=zeros), data)
        return jax.block_until_ready((values[0], loss))

    return ScanEpoch(epoch, w.n_train_windows, program)


def test_scan_engine(benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    epoch, n, _ = scan_epoch(1)
    benchmark.pedantic(epoch, rounds=ROUNDS, iterations=20, warmup_rounds=2)
    record(benchmark, throughput, SCAN, n)


def hand_written_epoch(trainable: list[Any], lr: float = 1e-3) -> Callable[..., Any]:
    """The same model and Adam as Keras, written directly in JAX: one epoch as a `lax.scan`."""
    import jax
    import jax.numpy as jnp

    b1, b2, eps = 0.9, 0.999, 1e-7  # Keras Adam defaults

    def forward(p: list[Any], x: Any, h: Any, c: Any) -> tuple[Any, Any, Any]:
        kernel, recurrent, bias, dense_k, dense_b = p
        for t in range(x.shape[1]):
            i, f, g, o = jnp.split(x[:, t] @ kernel + h @ recurrent + bias, 4, axis=-1)  # Keras gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h @ dense_k + dense_b, h, c

    def epoch(p: list[Any], m: list[Any], v: list[Any], it: Any, xs: Any, ys: Any) -> tuple[Any, ...]:
        units = p[1].shape[0]

        def step(carry: tuple, xy: tuple) -> tuple[tuple, Any]:
            p, m, v, it, h, c = carry

            def loss_fn(p: list[Any]) -> tuple[Any, tuple[Any, Any]]:
                pred, h2, c2 = forward(p, xy[0], h, c)
                return jnp.mean(jnp.square(pred - xy[1])), (h2, c2)

            (loss, (h, c)), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
            it = it + 1
            alpha = lr * jnp.sqrt(1 - b2**it) / (1 - b1**it)
            m = [mi + (gi - mi) * (1 - b1) for mi, gi in zip(m, g)]
            v = [vi + (gi * gi - vi) * (1 - b2) for vi, gi in zip(v, g)]
            p = [pi - alpha * mi / (jnp.sqrt(vi) + eps) for pi, mi, vi in zip(p, m, v)]
            return (p, m, v, it, jax.lax.stop_gradient(h), jax.lax.stop_gradient(c)), loss

        zero = jnp.zeros((xs.shape[1], units), jnp.float32)
        (p, m, v, it, _, _), losses = jax.lax.scan(step, (p, m, v, it, zero, zero), (xs, ys))
        return p, m, v, it, losses.mean()

    return jax.jit(epoch)


def hand_written(repeats: int = 0) -> tuple[Callable[[], Any], int]:
    """(one hand-written JAX epoch on the seed configuration, samples per epoch); repeats > 0: vmapped."""
    import jax
    import jax.numpy as jnp

    from bench.engines import scan

    spec = seed_spec(1)
    w = seed_windows(spec)
    params = [jnp.asarray(a) for a in scan.seeded_weights(spec)]
    fn = hand_written_epoch(params)
    values: list[Any] = [
        params,
        [jnp.zeros_like(a) for a in params],
        [jnp.zeros_like(a) for a in params],
        jnp.float32(0),
    ]
    if repeats:
        fn = jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, 0, None, None)))
        values = scan.stack([values] * repeats)
    xs, ys = jnp.asarray(w.train_x.reshape(-1, 1, spec.look_back, 1)), jnp.asarray(w.train_y.reshape(-1, 1, 1))

    def epoch() -> Any:
        *values[:], loss = fn(*values, xs, ys)
        return jax.block_until_ready(loss)

    return epoch, w.n_train_windows


def test_hand_written_jax_lstm(benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    epoch, n = hand_written()
    # same math: from the same weights, the first epoch's loss equals the scan engine's
    engine_epoch, _, _ = scan_epoch(1)
    np.testing.assert_allclose(float(engine_epoch()[2]), float(epoch()), rtol=1e-4)
    benchmark.pedantic(epoch, rounds=ROUNDS, iterations=20, warmup_rounds=2)
    record(benchmark, throughput, HAND, n)


@pytest.mark.parametrize("batch_size", [1, 2, 4, 8, 16, 32])
def test_scan_batch_size_sweep(
    batch_size: int, benchmark: Any, throughput: dict[str, float], jax_backend: None
) -> None:
    epoch, n, _ = scan_epoch(batch_size)
    benchmark.pedantic(epoch, rounds=ROUNDS, iterations=20, warmup_rounds=2)
    record(benchmark, throughput, f"scan engine, batch {batch_size}", n)


def test_ten_vmapped_repeats(benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    epoch, n, _ = scan_epoch(1, repeats=10)
    benchmark.pedantic(epoch, rounds=ROUNDS, iterations=20, warmup_rounds=2)
    record(benchmark, throughput, VMAP10, 10 * n)


def test_ten_vmapped_hand_written(benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    """The same vmap over the hand-written LSTM: the floor XLA sets for the ratio on this device."""
    epoch, n = hand_written(repeats=10)
    benchmark.pedantic(epoch, rounds=ROUNDS, iterations=20, warmup_rounds=2)
    record(benchmark, throughput, HAND_VMAP10, 10 * n)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "cold"])
@pytest.mark.parametrize("repeats", [1, 10])
def test_whole_runs_of_repeats(
    repeats: int, compiled: bool, benchmark: Any, seconds: dict[str, float], jax_backend: None
) -> None:
    """`run_many` of the seed configuration for 100 epochs: seeded weights, training, evaluation,
    results; `cold` also clears JAX's and the engine's caches first, so compiling is included."""
    import jax

    from bench.engines import scan

    spec = dataclasses.replace(seed_spec(1), epochs=100)
    prep = prepare(load_series(spec.dataset).values, spec.test_fraction, spec.difference, spec.scale)  # type: ignore[arg-type]
    windows = make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout)  # type: ignore[arg-type]
    specs = [dataclasses.replace(spec, repeat=r, seed=r) for r in range(repeats)]

    def clear() -> None:
        scan._program.cache_clear()
        jax.clear_caches()

    scan.run_many(specs, prep, windows)  # warm-up: Keras and JAX first-use costs
    benchmark.pedantic(
        lambda: scan.run_many(specs, prep, windows), setup=None if compiled else clear, rounds=3 if compiled else 2
    )
    seconds[f"whole run of {repeats} repeat(s), {'compiled' if compiled else 'cold'}"] = benchmark.stats.stats.median
