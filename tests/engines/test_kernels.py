"""The LSTM kernel each run records: what the backend answered the layer (cuDNN or the generic loop)."""

from __future__ import annotations

from pathlib import Path

import pytest

import worker_checks
from bench import registry
from runspecs import run_scenario

SCENARIO = """
name: kernels
dataset: {{name: sine, length: 120, period: 12, noise: 0.05}}
look_back: 3
batch_size: 4
stateful: [true, false]
epochs: 2
units: 3
backend: {backend}
engine: {engine}
"""

# every pair that runs stateful and stateless work (jax/fit runs stateless only)
PAIRS = [pytest.param(*p, marks=pytest.mark.slow) if p[0] == "torch" else p for p in registry.stateful_pairs()]


@pytest.mark.parametrize(
    "backend,engine",
    [pytest.param(*p, marks=pytest.mark.slow) if p[0] != "jax" else p for p in registry.stateful_pairs()],
)
def test_runs_on_a_cpu_record_their_kernel(backend: str, engine: str, workers, tmp_path: Path):
    text = SCENARIO.format(backend=backend, engine=engine)
    results = workers[backend].submit(run_scenario, text, str(tmp_path)).result()
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    # on CPU, scan also fuses this model's small products (`bench.engines.small_products`)
    expected = "fused-small-products+generic" if engine == "scan" else "generic"
    assert [r.kernel for r in results] == [expected, expected]


# A fake backend answers as cuDNN does. The stateful and stateless runs of a batch size on `scan` share one
# compiled epoch, so the second run's record comes from the program's trace, not from a trace of its own.
@pytest.mark.parametrize("backend,engine", [pytest.param("tensorflow", "fit", marks=pytest.mark.slow), ("jax", "scan")])
def test_a_cudnn_answer_is_recorded_as_cudnn(backend: str, engine: str, workers, tmp_path: Path):
    text = SCENARIO.format(backend=backend, engine=engine)
    results = workers[backend].submit(worker_checks.run_scenario_with_fake_cudnn, text, str(tmp_path)).result()
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    expected = "cudnn+fused-small-products" if engine == "scan" else "cudnn"  # scan fuses the Dense head's product
    assert [r.kernel for r in results] == [expected, expected]


@pytest.mark.parametrize("device,expected", [("cpu", "generic"), ("cuda", "cudnn")])
def test_torch_answers_count_as_cudnn_only_for_cuda_inputs(device: str, expected: str, monkeypatch):
    """PyTorch's `lstm` answers on every device: off CUDA (or where cuDNN would not take the layer) its own loop ran."""
    from types import SimpleNamespace

    from keras.src import backend

    from bench import kernels

    monkeypatch.setattr(backend, "backend", lambda: "torch")
    monkeypatch.setattr(backend, "cudnn_ok", lambda *args: True)
    monkeypatch.setattr(backend, "lstm", lambda *args, **kwargs: "answer")
    inputs = SimpleNamespace(device=SimpleNamespace(type=device))
    with kernels.observed() as seen:
        backend.lstm(inputs, None, None, None, activation=None, recurrent_activation=None, bias=0.0, unroll=False)
    assert kernels.describe(seen) == expected
    monkeypatch.setattr(backend, "cudnn_ok", lambda *args: False)
    with kernels.observed() as seen:
        backend.lstm(inputs, None, None, None, activation=None, recurrent_activation=None, bias=0.0, unroll=False)
    assert kernels.describe(seen) == "generic"
