"""A run's Keras model (built by its registered `bench.models` entry), its optimizer, and its states."""

from __future__ import annotations

from typing import Any

from bench import registry
from bench.models import ModelSpec, Shape
from bench.models.check import compile_note
from bench.models.weights import draw, note
from bench.optimizers import features_of
from bench.runspec import RunSpec


def build_model(
    spec: RunSpec, batch_size: int | None, layer_options: dict[str, Any] | None = None, stateful: bool | None = None
) -> Any:
    """An uncompiled model for `spec`; `batch_size` None makes the batch dimension free. `layer_options`: the
    recurrent layers' extra options the engine's backend asks for (`Backend.model_options`)."""
    stateful = spec.stateful if stateful is None else stateful
    shape = Shape(spec.look_back, spec.dataset.n_features, batch_size, stateful, spec.units, spec.layers, spec.horizon)
    return build(spec.model, shape, layer_options or {})


def seeded_model(spec: RunSpec, batch_size: int | None, layer_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """`build_model` with its initial weights drawn from the run's seed by NumPy (`bench.models.weights`), the
    same on every backend, and the run's note when some weights kept the backend's own draw."""
    import keras

    keras.utils.set_random_seed(spec.seed)  # what the backend still draws: dropout masks, unknown initializers
    model = build_model(spec, batch_size, layer_options)
    values, kept = draw(model, spec.seed)
    model.set_weights(values)
    return model, seeded_note(model, kept)


def seeded_note(model: Any, kept: list[str]) -> str:
    """A seeded model's note for its run: initial weights the seed did not draw, and a factory's own compile()."""
    return "; ".join(n for n in (note(kept), compile_note(model)) if n)


def build(model: ModelSpec, shape: Shape, layer_options: dict[str, Any]) -> Any:
    """`model` built by its registered entry for `shape`, its recurrent layers given `layer_options`."""
    return registry.model_registry.get(model.name).build(shape, model, layer_options)


def optimizer_key(spec: RunSpec) -> tuple[str, bool, bool]:
    """What a run's optimizer is compiled from: its name and optional parts (`bench.optimizers.features_of`).
    Every hyperparameter is a value the run sets (`values_of`), so runs that differ only in them share a
    compiled program."""
    return (spec.optimizer, *features_of(spec))


def reset_states(model: Any) -> None:
    """Zero every stateful layer's state (Keras 3 has no Model.reset_states)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def state_values(model: Any) -> list[Any]:
    """Current values of every stateful layer's state variables, as NumPy arrays."""
    import keras

    return [
        keras.ops.convert_to_numpy(v.value)
        for layer in model.layers
        if getattr(layer, "stateful", False)
        for v in layer.states or []
    ]


def describe(model: Any) -> tuple[int, str]:
    """A model's parameter count and its layers in order, e.g. "GRU(8) > LSTM(4) > Dense(1)"."""
    parts = []
    for layer in model.layers:
        if not layer.weights:  # inputs, reshapes: no parameters
            continue
        width = getattr(layer, "units", None) or getattr(getattr(layer, "cell", None), "units", None)
        parts.append(f"{type(layer).__name__}({width})" if width else type(layer).__name__)
    return int(model.count_params()), " > ".join(parts)
