"""The trials of a search train together: on `scan`, trials that differ in every optimizer value (rate, beta_1,
beta_2, weight decay, warm-up, decay schedule; SGD's momentum and Nesterov) train as one vmapped program and
give what each gives trained alone, and the `fit` engine on TensorFlow trains the same trials one by one to
the same losses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.model import optimizer_key
from bench.runspec import RunSpec
from test_equivalence import LOSS_RTOL, RMSE_RTOL, data, fit_from, initial_weights, scan_from, spec_for

#: Three Adam trials, every value other than the defaults somewhere; all with a schedule and weight decay, so
#: they share one compiled program (`bench.optimizers.features_of`) and train as one vmapped program.
ADAM_TRIALS = [
    dict(learning_rate=0.02, beta_1=0.8, beta_2=0.99, weight_decay=0.01, warmup=0.3, decay="cosine", decay_end=0.1),
    dict(learning_rate=0.005, beta_1=0.95, beta_2=0.9, epsilon=1e-4, weight_decay=0.001, warmup=0.1, decay="linear"),
    dict(learning_rate=0.01, weight_decay=0.05, decay="cosine", decay_end=0.5),
]
SGD_TRIALS = [
    dict(learning_rate=0.05, momentum=0.9, nesterov=True, decay="cosine"),
    dict(learning_rate=0.1, momentum=0.5, warmup=0.2),
    dict(learning_rate=0.1, decay="linear"),
]


def trials(base: RunSpec, values: list[dict]) -> list[RunSpec]:
    return [dataclasses.replace(base, trial=i, **v) for i, v in enumerate(values)]


def scan_together_and_alone(specs: list[RunSpec]) -> tuple[list[list[float]], list[list[float]]]:
    """Each trial's per-epoch losses trained together (one vmapped program) and alone (runs in a JAX worker)."""
    from bench.engines import scan

    prep, windows = data(specs[0])
    weights = [initial_weights(4)] * len(specs)
    together = scan.run_many(specs, prep, windows, weights)
    alone = [scan.run(s, prep, windows, initial_weights=w) for s, w in zip(specs, weights)]
    assert all(r.status == "ok" for r in [*together, *alone])
    return [[e.loss for e in r.epochs] for r in together], [[e.loss for e in r.epochs] for r in alone]


@pytest.mark.parametrize("optimizer,values", [("adam", ADAM_TRIALS), ("sgd", SGD_TRIALS)])
def test_vmapped_trials_equal_trials_trained_alone(optimizer: str, values: list[dict], workers) -> None:
    base = dataclasses.replace(spec_for("jax", "scan", False, "none", 5), optimizer=optimizer)
    assert len({optimizer_key(s) for s in trials(base, values)}) == 1  # one program for all three
    together, alone = workers["jax"].submit(scan_together_and_alone, trials(base, values)).result()
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    # the values are used: no two trials train alike
    assert len({round(losses[-1], 6) for losses in alone}) == len(values)


@pytest.mark.parametrize(
    "optimizer,values", [("adam", ADAM_TRIALS), pytest.param("sgd", SGD_TRIALS, marks=pytest.mark.slow)]
)
def test_fit_trains_the_same_trials_one_by_one_to_the_same_losses(optimizer: str, values: list[dict], workers) -> None:
    base = dataclasses.replace(spec_for("tensorflow", "fit", True, "streams", 5), optimizer=optimizer)
    weights = initial_weights(4)
    fits = [workers["tensorflow"].submit(fit_from, s, weights) for s in trials(base, values)]
    scans = [
        workers["jax"].submit(scan_from, dataclasses.replace(s, backend="jax", engine="scan"), weights).result()
        for s in trials(base, values)
    ]
    for (fit_losses, fit_rmse), (scan_losses, scan_rmse) in zip((f.result() for f in fits), scans):
        np.testing.assert_allclose(scan_losses, fit_losses, rtol=LOSS_RTOL)
        np.testing.assert_allclose(scan_rmse, fit_rmse, rtol=RMSE_RTOL)


def test_runs_whose_optimizers_compile_differently_train_one_program_after_another(workers) -> None:
    """A plain trial and one with a schedule and weight decay in one call: each gives what it gives alone."""
    base = spec_for("jax", "scan", False, "none", 5)
    specs = trials(base, [dict(learning_rate=0.01), ADAM_TRIALS[0], dict(learning_rate=0.02)])
    assert len({optimizer_key(s) for s in specs}) == 2
    together, alone = workers["jax"].submit(scan_together_and_alone, specs).result()
    np.testing.assert_allclose(together, alone, rtol=1e-5)
