"""lstm-bench's own backends and models through the conformance suites it ships (`bench.testing`), as a
plugin's tests would use them; the engines' subclasses are in tests/engines/test_conformance.py. Beyond the
built-ins: a bidirectional model (stateless) and a recurrent layer with a custom cell, both from factory files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.testing import BackendConformance, ModelConformance

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "models"
MODELS = Path(__file__).resolve().parent / "models"


class TestJaxBackend(BackendConformance):
    backend = "jax"


@pytest.mark.slow
class TestTensorflowBackend(BackendConformance):
    backend = "tensorflow"


@pytest.mark.slow  # starting a PyTorch worker takes about 10 s
class TestTorchBackend(BackendConformance):
    backend = "torch"


@pytest.mark.slow  # the example factory is also trained by tests/test_factory_models.py in the default run
class TestExampleFactoryModel(ModelConformance):
    model = {"factory": "gru_lstm.py:build"}
    base_dir = EXAMPLES


class TestCustomCellModel(ModelConformance):
    model = {"factory": "custom_cell.py:build"}
    base_dir = MODELS


class TestBidirectionalModel(ModelConformance):
    model = {"factory": "bidirectional.py:build"}
    base_dir = MODELS
    stateful = False


@pytest.mark.slow
class TestGRUWithAHead(ModelConformance):
    model = {"name": "gru", "units": [6, 3], "head": [5]}


def test_the_contracts_live_beside_their_implementations_and_old_imports_still_work():
    from bench import registry
    from bench.backends.base import Backend, register_backend
    from bench.engines.base import Engine, register_engine

    assert (registry.Engine, registry.register_engine) == (Engine, register_engine)
    assert (registry.Backend, registry.register_backend) == (Backend, register_backend)
    assert isinstance(registry.engine("scan"), Engine) and isinstance(registry.backend("jax"), Backend)
    with pytest.raises(AttributeError):
        registry.NoSuchThing  # noqa: B018
