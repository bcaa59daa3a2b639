"""Conformance suites for lstm-bench's extension points, shipped with the package so a plugin's own tests can
run them (the pattern of optuna's `StorageTestCase`). Subclass one in
a pytest module and set its attributes; pytest collects the inherited tests:

    from bench.testing import EngineConformance, ModelConformance

    class TestMyEngine(EngineConformance):
        engine = "mine"
        backend = "jax"

    class TestMyModel(ModelConformance):
        model = {"factory": "models/mine.py:build"}
        base_dir = Path(__file__).parent

Plugin modules load as for runs (an `lstm_bench.plugins` entry point, or `LSTM_BENCH_PLUGINS`). Checks run in a
worker process per backend (Keras fixes its backend at import), shared by every suite of the session
(`bench.testing.workers`). lstm-bench's own engines, backends and models are tested by these same classes
(tests/test_conformance_suites.py, tests/engines/test_conformance.py).
"""

from __future__ import annotations

from bench.testing.suites import BackendConformance, EngineConformance, ModelConformance

__all__ = ["BackendConformance", "EngineConformance", "ModelConformance"]
