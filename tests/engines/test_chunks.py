"""The scan engine's inner loop over chunks of steps (`bench.engines.scan.SEQUENTIAL_BYTES`): which runs get
it, with a step's rows in groups where its activations need that, and that it trains as one flat loop does (to
the bit here; row groups add the same sums in another order), also when an epoch runs in parts and when runs
train together."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from bench.engines.scan import CHUNK_MIN_STEPS
from test_scan import data, spec_for


def series() -> np.ndarray:
    t = np.arange(400)
    return np.sin(2 * np.pi * t / 25) + 0.1 * np.random.default_rng(5).standard_normal(len(t))


def start(spec: Any, runs: int, chunked: bool) -> tuple[Any, Any, Any]:
    """A fresh program for `spec` (chunks on or off), `runs` runs' carry of it, and the epoch's data."""
    import jax

    from bench.engines import scan

    scan.CHUNK_MIN_STEPS = 0  # this worker's epochs are short; the rule on length has its own test
    _, windows = data(spec, series())
    program = scan.Program(scan._shape_key(spec), scan.optimizer_key(spec))
    if not chunked:
        program.chunking = lambda run, data, noise=False: scan.Chunking()
    train = program.train_state(scan.seeded_weights(spec), {"learning_rate": 0.05}, spec.seed, False)
    epoch = scan.epoch_data(spec, windows)
    order = scan.batch_order(spec, windows, epoch)
    run = scan.RunCarry(train=train, order=order, state=program.zero_state(spec.batch_size))
    return program, jax.device_put(run) if runs == 1 else scan.stack([run] * runs), epoch


def epochs(spec: Any, runs: int, chunked: bool) -> tuple[Any, list[np.ndarray], list[float]]:
    """(the `Chunking` used, every trained value and carried state, the losses) of one epoch of `runs` runs of `spec`
    run in three parts, from a fresh program with chunks on or off."""
    import jax

    program, run, epoch = start(spec, runs, chunked)
    chunk = program.chunking(run, epoch)
    steps = int(epoch.end)
    losses = []
    for begin, end in ((0, 3), (3, steps // 2 + 1), (steps // 2 + 1, steps)):  # parts that split chunks
        run, loss = program.epoch_fn(runs > 1, False)(run, epoch.span(begin, end))
        losses.extend(np.ravel(np.asarray(loss)).tolist())
    return chunk, [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(run)], losses


def chunks_of(overrides: dict[str, Any], runs: int) -> tuple[int, int]:
    """(steps a chunk, row groups) of `runs` runs of the default spec with `overrides`."""
    from bench.models import ModelSpec

    if "model" in overrides:
        overrides = {**overrides, "model": ModelSpec("lstm", json.dumps(overrides["model"]))}
    program, run, epoch = start(dataclasses.replace(spec_for(), **overrides), runs, True)
    chunking = program.chunking(run, epoch)
    return chunking.steps, chunking.groups


@pytest.mark.parametrize(
    "overrides,runs",
    [
        ({"batch_size": 1}, 1),
        pytest.param({"batch_size": 4, "stateful": False, "layout": "none"}, 1, marks=pytest.mark.slow),
        ({"batch_size": 2}, 2),
        ({"batch_size": 16}, 1),
    ],
    ids=["batch-1", "stateless-batch-4", "2-runs-together", "batch-16-in-2-groups"],
)
def test_chunked_epochs_train_exactly_as_one_loop(overrides: dict[str, Any], runs: int, workers) -> None:
    spec = dataclasses.replace(spec_for(), **overrides)
    chunk, chunked, chunked_losses = workers["jax"].submit(epochs, spec, runs, True).result()
    flat_chunk, flat, flat_losses = workers["jax"].submit(epochs, spec, runs, False).result()
    assert chunk.steps > 1 and flat_chunk.steps == 1 and (chunk.groups > 1) == (spec.batch_size == 16)
    # row groups sum the same numbers in another order: equal here, within float precision anywhere
    same = np.array_equal if chunk.groups == 1 else lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert same(np.array(chunked_losses), np.array(flat_losses))
    assert len(chunked) == len(flat) and all(same(a, b) for a, b in zip(chunked, flat))


def test_only_runs_whose_buffers_are_small_get_chunks(workers) -> None:
    pool = workers["jax"]
    # the seed's size: 4 units, look_back 3, one feature; 12 bytes of window a step, so 42 steps a chunk
    assert pool.submit(chunks_of, {"batch_size": 1, "look_back": 3}, 1).result() == (42, 1)
    # 16 rows' activations (16 x 16 floats) fit in 2 groups of 8; 64 rows would need 8 groups, more than allowed
    assert pool.submit(chunks_of, {"batch_size": 16, "look_back": 3}, 1).result() == (5, 2)
    assert pool.submit(chunks_of, {"batch_size": 64, "look_back": 3}, 1).result() == (1, 1)
    # dropout draws masks in each pass: groups would draw twice, so its batch of 16 keeps the flat loop
    assert pool.submit(chunks_of, {"batch_size": 16, "model": {"dropout": 0.3}}, 1).result() == (1, 1)
    assert pool.submit(chunks_of, {"batch_size": 1, "units": 32}, 1).result() == (1, 1)  # a 32 x 128 weight
    assert pool.submit(chunks_of, {"batch_size": 1, "look_back": 3}, 5).result() == (1, 1)  # 5 runs' 4 x 16 weights


def short_epoch_chunks() -> Any:
    """The chunk of a seed-size run on a short series, with the engine's own rule on epoch length."""
    from bench.engines import scan

    program, run, epoch = start(dataclasses.replace(spec_for(), batch_size=1, look_back=3), 1, True)
    scan.CHUNK_MIN_STEPS = CHUNK_MIN_STEPS
    try:
        return program.chunking(run, epoch)
    finally:
        scan.CHUNK_MIN_STEPS = 0


def test_a_short_epoch_keeps_one_flat_loop_that_compiles_faster(workers) -> None:
    from bench.engines.scan import Chunking

    assert workers["jax"].submit(short_epoch_chunks).result() == Chunking()
