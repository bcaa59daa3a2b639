"""One suite, parameterised over every (backend, engine) pair that claims stateful support
(`bench.registry.stateful_pairs`: a registered engine or backend is tested without edits here).

Each pair runs in its own worker process (Keras fixes its backend at import).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import worker_checks
from bench import registry
from runspecs import run_scenario

PAIRS = registry.stateful_pairs()

# The next value of 0, 1, 0, -1, ... cannot be told from one past value (0 is followed by 1 or -1),
# but a carried state that remembers the value before it can.
PERIODIC = """
name: periodic
dataset: {{csv: periodic.csv, column: v}}
look_back: 1
batch_size: 4
stateful: [true, false]
layout: streams
units: 8
epochs: 30
learning_rate: 0.05
backend: {backend}
engine: {engine}
"""


@pytest.fixture(scope="module")
def periodic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("periodic")
    (folder / "periodic.csv").write_text("v\n" + "\n".join(str(v) for v in np.tile([0, 1, 0, -1], 40)))
    return folder


@pytest.mark.parametrize(
    "backend,engine", [pytest.param(*p, marks=pytest.mark.slow) if p[0] != "jax" else p for p in PAIRS]
)
def test_probe_confirms_state_carries(backend: str, engine: str, workers):
    from bench.probe import probe

    result = workers[backend].submit(probe, backend, engine).result()
    assert result.carries_state, result.detail


# PyTorch's fit is the slowest (about a minute here), so its training check runs with -m slow;
# its probe above runs by default.
@pytest.mark.parametrize(
    "backend,engine", [pytest.param(*p, marks=pytest.mark.slow) if p[0] != "jax" else p for p in PAIRS]
)
def test_stateful_streams_beats_stateless_on_a_periodic_series(backend: str, engine: str, workers, periodic_dir: Path):
    text = PERIODIC.format(backend=backend, engine=engine)
    stateful, stateless = workers[backend].submit(run_scenario, text, str(periodic_dir)).result()
    assert stateful.spec.stateful and not stateless.spec.stateful
    assert stateful.status == stateless.status == "ok", (stateful.error, stateless.error)
    # stateless can do no better than predicting 0 after a 0: RMSE about 0.71
    assert stateless.metrics.test_rmse > 0.6
    assert stateful.metrics.test_rmse < 0.5 * stateless.metrics.test_rmse


# pairs known to drop the state (jax/fit: DESIGN.md fact 4) must be turned away, not run silently stateless
FAILING = [(b, e.name) for e in registry.engine_registry for b in e.fails_state_on]


@pytest.mark.parametrize("backend,engine", FAILING)
def test_a_pair_that_drops_the_state_is_reported_unsupported(backend: str, engine: str, workers, periodic_dir: Path):
    text = PERIODIC.format(backend=backend, engine=engine)
    stateful, stateless = workers[backend].submit(run_scenario, text, str(periodic_dir)).result()
    assert stateful.status == "unsupported"
    assert "does not carry state" in stateful.error and "use engine: " in stateful.error
    assert stateless.status == "ok"


@pytest.mark.parametrize("batch_size", [1, 4])
def test_fit_engine_state_is_real(batch_size: int, workers):
    checks = workers["tensorflow"].submit(worker_checks.fit_state_checks, batch_size).result()
    assert checks["state"] > 0
    assert checks["repeat_differs"]
    assert checks["after_reset"] == 0
