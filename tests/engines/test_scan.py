"""The scan engine: backend check, vmapped repeats, and that the carried state is real and useful."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.datasets import DatasetSpec
from bench.runspec import RunSpec
from bench.specs import derive_seed
from bench.windows import Prepared, Windows, make_windows, prepare
from runspecs import make_spec

# a vmapped program batches the same float32 arithmetic; XLA may fuse or order it differently
VMAP_RTOL = 1e-5


def spec_for(**overrides: object) -> RunSpec:
    defaults = dict(dataset=DatasetSpec("sine"), test_fraction=0.3, batch_size=2, epochs=3, learning_rate=0.01)
    return make_spec(**{**defaults, "backend": "jax", "engine": "scan", "eval_every": 1, **overrides})


def data(spec: RunSpec, y: np.ndarray) -> tuple[Prepared, Windows]:
    prep = prepare(y, spec.test_fraction, spec.difference, spec.scale)  # type: ignore[arg-type]
    return prep, make_windows(prep, spec.look_back, spec.batch_size, spec.stateful, spec.layout, spec.horizon)  # type: ignore[arg-type]


def sine() -> np.ndarray:
    t = np.arange(80)
    return np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(3).standard_normal(len(t))


# --- functions run inside worker processes -------------------------------------------------


def unsupported(spec: RunSpec) -> str | None:
    from bench.worker import refusal

    refused = refusal(spec, "here")
    return refused[1] if refused else None


def vmapped_and_alone(
    spec: RunSpec, repeats: int
) -> tuple[list[list[float]], list[list[float]], list[float], list[float], int]:
    """Per-epoch losses and test RMSEs of `repeats` repeats trained vmapped, and each trained alone."""
    from bench.engines import scan

    specs = [dataclasses.replace(spec, repeat=r, seed=derive_seed(spec.base_seed, r)) for r in range(repeats)]
    prep, windows = data(spec, sine())
    together = scan.run_many(specs, prep, windows)
    alone = [scan.run(s, prep, windows) for s in specs]
    return (
        [[e.loss for e in r.epochs] for r in together],
        [[e.loss for e in r.epochs] for r in alone],
        [r.metrics.test_rmse for r in together],
        [r.metrics.test_rmse for r in alone],
        together[0].trained_together,
    )


def epoch_compiles(specs: list[RunSpec]) -> int:
    """How many epochs were compiled to run `specs` alone and as 3 repeats each (the programs must be fresh)."""
    from bench.engines import scan

    for spec in specs:
        prep, windows = data(spec, sine())
        scan.run(spec, prep, windows)
        scan.run_many([dataclasses.replace(spec, repeat=r, seed=derive_seed(0, r)) for r in range(3)], prep, windows)
    programs = {id(p): p for p in map(scan.program_for, specs)}.values()
    return sum(fn._cache_size() for p in programs for fn in p._epochs.values())


def periodic_rmse(spec: RunSpec) -> tuple[float, float]:
    """(test RMSE, |carried state| after training) on 0, 1, 0, -1, ... where look_back 1 alone is ambiguous."""

    from bench.engines import scan

    prep, windows = data(spec, np.tile([0.0, 1.0, 0.0, -1.0], 30))
    result = scan.run(spec, prep, windows)
    assert result.status == "ok", result.error
    # the carried state after one more epoch from the seeded weights: zero would mean no state flows
    program = scan.program_for(spec)
    train = program.train_state(scan.seeded_weights(spec), {"learning_rate": spec.learning_rate}, spec.seed, False)
    shared = scan.epoch_data(spec, windows)
    order = scan.batch_order(spec, windows, shared)
    start = scan.RunCarry(train=train, order=order, state=program.zero_state(spec.batch_size))
    trained, _ = program.epoch(start, shared)
    return result.metrics.test_rmse, float(sum(np.abs(np.asarray(s)).sum() for s in trained.state))


def rates_together_and_alone(spec: RunSpec, rates: list[float]) -> tuple[list[list[float]], list[list[float]], int]:
    """Per-epoch losses of runs at `rates` trained as one vmapped program, and each trained alone."""
    from bench.engines import scan

    specs = [dataclasses.replace(spec, learning_rate=r, base_learning_rate=r) for r in rates]
    prep, windows = data(spec, sine())
    together = scan.run_many(specs, prep, windows)
    alone = [scan.run(s, prep, windows) for s in specs]
    return [[e.loss for e in r.epochs] for r in together], [[e.loss for e in r.epochs] for r in alone], len(together)


def with_and_without_noise_scale(spec: RunSpec) -> tuple[list[float], list[float], list[float | None], float | None]:
    """Per-epoch losses without and with the noise-scale estimate, its per-epoch values and final value."""
    from bench.engines import scan

    prep, windows = data(spec, sine())
    off = scan.run(spec, prep, windows)
    on = scan.run(dataclasses.replace(spec, noise_scale=True), prep, windows)
    return (
        [e.loss for e in off.epochs],
        [e.loss for e in on.epochs],
        [e.grad_noise_scale for e in on.epochs],
        on.grad_noise_scale,
    )


def budget_runs(
    spec: RunSpec, steps: int
) -> tuple[tuple[int | None, int, list[float]], tuple[int | None, int, list[float]], int]:
    """(steps_run, epochs_run, losses) of a run with a budget of `steps` and of one of `spec.epochs` epochs,
    and the steps per epoch."""
    from bench.engines import scan

    prep, windows = data(spec, sine())
    by_steps = scan.run(dataclasses.replace(spec, epochs=None, steps=steps), prep, windows)
    by_epochs = scan.run(spec, prep, windows)
    assert by_steps.status == "ok", by_steps.error
    return (
        (by_steps.steps_run, len(by_steps.epochs), [e.loss for e in by_steps.epochs]),
        (by_epochs.steps_run, len(by_epochs.epochs), [e.loss for e in by_epochs.epochs]),
        windows.steps_per_epoch,
    )


def probe() -> tuple[bool, str]:
    from bench.engines.scan import probe_scan

    result = probe_scan()
    return result.carries_state, result.detail


# --- tests ---------------------------------------------------------------------------------


def test_scan_refuses_other_backends(workers) -> None:
    reason = workers["tensorflow"].submit(unsupported, spec_for(backend="tensorflow")).result()
    assert reason is not None and "backend: jax" in reason
    assert workers["jax"].submit(unsupported, spec_for()).result() is None


@pytest.mark.parametrize(
    "overrides", [dict(stateful=True, batch_size=2), dict(stateful=False, batch_size=4, shuffle=True)]
)
def test_a_vmapped_repeat_equals_that_repeat_alone(overrides: dict[str, object], workers) -> None:
    together, alone, rmse_together, rmse_alone, trained_together = (
        workers["jax"].submit(vmapped_and_alone, spec_for(**overrides), 3).result()
    )
    np.testing.assert_allclose(together, alone, rtol=VMAP_RTOL)
    np.testing.assert_allclose(rmse_together, rmse_alone, rtol=VMAP_RTOL)
    assert trained_together == 3
    # the repeats really are different runs (own seeds, own weights)
    assert len({round(r[-1], 6) for r in alone}) == 3


@pytest.mark.slow
def test_stateful_and_stateless_runs_of_a_batch_size_share_one_compiled_epoch(workers) -> None:
    # 53 windows: stateful batch 4 keeps 52 and ends with a batch of padding, stateless pads its last batch
    common = dict(batch_size=4, units=5, epochs=2)  # units 5: a program no other test in this worker compiled
    specs = [
        spec_for(stateful=True, **common),
        spec_for(stateful=True, layout="sequential", **common),
        spec_for(stateful=False, **common),
        spec_for(stateful=False, shuffle=True, **common),
    ]
    assert workers["jax"].submit(epoch_compiles, specs).result() == 2  # one alone, one vmapped


def test_probe_sees_the_state_carried(workers) -> None:
    carries, detail = workers["jax"].submit(probe).result()
    assert carries, detail


@pytest.mark.slow  # the engine conformance suite checks the same by default (batch 4)
def test_stateful_streams_beats_stateless_on_a_periodic_series(workers) -> None:
    common = dict(look_back=1, batch_size=2, units=8, epochs=40, learning_rate=0.05, eval_every=0)
    stateful = workers["jax"].submit(periodic_rmse, spec_for(stateful=True, layout="streams", **common))
    stateless = workers["jax"].submit(periodic_rmse, spec_for(stateful=False, **common))
    (rmse_stateful, state), (rmse_stateless, _) = stateful.result(), stateless.result()
    assert state > 0.0
    # stateless can at best predict 0 after 0 (RMSE ~0.7 on this series); stateful can learn the pattern
    assert rmse_stateful < 0.5 * rmse_stateless, (rmse_stateful, rmse_stateless)


def test_runs_at_different_learning_rates_train_together_as_if_alone(workers) -> None:
    together, alone, n = workers["jax"].submit(rates_together_and_alone, spec_for(), [0.001, 0.01, 0.1]).result()
    np.testing.assert_allclose(together, alone, rtol=VMAP_RTOL)
    assert n == 3
    assert len({round(r[-1], 6) for r in alone}) == 3  # each run really trained at its own rate


@pytest.mark.parametrize("overrides", [dict(stateful=True, batch_size=1), dict(stateful=False, batch_size=4)])
def test_the_noise_scale_estimate_does_not_change_training(overrides: dict[str, object], workers) -> None:
    off, on, per_epoch, final = (
        workers["jax"].submit(with_and_without_noise_scale, spec_for(epochs=4, **overrides)).result()
    )
    # the mean of per-example gradients is the batch gradient: same updates, summed in another order
    np.testing.assert_allclose(on, off, rtol=1e-4)
    assert all(v is not None and np.isfinite(v) for v in per_epoch)
    assert final == per_epoch[-1]


def test_a_step_budget_is_exact_and_ends_with_a_partial_epoch(workers) -> None:
    spec = spec_for(epochs=3, batch_size=4, stateful=True)
    (steps_run, epochs_run, losses), (steps_full, epochs_full, losses_full), per_epoch = (
        workers["jax"].submit(budget_runs, spec, 2 * 13 + 5).result()
    )
    assert per_epoch == 13  # 53 windows, batch 4, stateful: 52 kept
    assert (steps_run, epochs_run) == (2 * 13 + 5, 3)
    assert steps_full == 3 * 13 and epochs_full == 3
    np.testing.assert_allclose(losses[:2], losses_full[:2], rtol=1e-6)  # the whole epochs are the same
    assert losses[2] != losses_full[2]  # the partial epoch's loss covers its 5 batches only


def dropout_losses(spec: RunSpec) -> dict[str, list[float]]:
    """Per-epoch losses of one set of weights trained with and without dropout, under two seeds, twice."""
    import json

    from bench.engines import scan
    from bench.models import ModelSpec

    prep, windows = data(spec, sine())
    weights = scan.seeded_weights(spec)
    dropped = dataclasses.replace(spec, model=ModelSpec("lstm", json.dumps({"dropout": 0.3})))
    other_seed = dataclasses.replace(dropped, seed=spec.seed + 1)

    def losses(s: RunSpec) -> list[float]:
        return [e.loss for e in scan.run(s, prep, windows, initial_weights=weights).epochs]

    together = scan.run_many([dropped, other_seed], prep, windows, [weights, weights])
    return {
        "none": losses(spec),
        "dropout": losses(dropped),
        "dropout again": losses(dropped),
        "dropout, another seed": losses(other_seed),
        "together": [e.loss for e in together[0].epochs],
        "together, another seed": [e.loss for e in together[1].epochs],
    }


def test_dropout_draws_from_each_runs_own_seeded_generator(workers):
    found = workers["jax"].submit(dropout_losses, spec_for(stateful=True, batch_size=2)).result()
    assert found["dropout"] == found["dropout again"]  # seeded: reproducible
    assert not np.allclose(found["dropout"], found["none"])  # dropout is applied
    assert not np.allclose(found["dropout"], found["dropout, another seed"])  # the seed draws the masks
    # trained together, each run keeps its own generator
    np.testing.assert_allclose(found["together"], found["dropout"], rtol=VMAP_RTOL)
    np.testing.assert_allclose(found["together, another seed"], found["dropout, another seed"], rtol=VMAP_RTOL)
