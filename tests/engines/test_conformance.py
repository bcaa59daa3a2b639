"""The shipped engine conformance suite (`bench.testing.EngineConformance`) for every registered (backend,
engine) pair: those that claim to carry the state (`bench.registry.stateful_pairs`) and those known to drop it
(their stateful runs must be turned away). A registered engine or backend is tested without edits here; the
JAX pairs run by default, the others with -m slow (PyTorch's fit takes about a minute)."""

from __future__ import annotations

import pytest

import worker_checks
from bench import registry
from bench.testing import EngineConformance

FAILING = [(b, e.name) for e in registry.engine_registry for b in e.fails_state_on]

for _backend, _engine in [*registry.stateful_pairs(), *FAILING]:
    _name = f"Test{_engine.title()}On{_backend.title()}"
    _suite = type(_name, (EngineConformance,), {"engine": _engine, "backend": _backend, "__module__": __name__})
    globals()[_name] = _suite if (_backend, _engine) == ("jax", "scan") else pytest.mark.slow(_suite)


@pytest.mark.parametrize("batch_size", [pytest.param(1, marks=pytest.mark.slow), 4])
def test_fit_engine_state_is_real(batch_size: int, workers):
    checks = workers["tensorflow"].submit(worker_checks.fit_state_checks, batch_size).result()
    assert checks["state"] > 0
    assert checks["repeat_differs"]
    assert checks["after_reset"] == 0
