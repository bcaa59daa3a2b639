"""Models from outside lstm-bench, checked before any training: built once per shape the plan asks for,
in a worker of the run's backend, each problem one line naming the model and how to fix it."""

from __future__ import annotations

from typing import Any

from bench.errors import UserError
from bench.runspec import RunSpec

#: The built-in models, correct by construction; others (factories, plugins) are checked.
BUILT_IN = "bench.models.recurrent"


def needs_check(spec: RunSpec) -> bool:
    from bench import registry

    return type(registry.model_registry.get(spec.model.name)).__module__ != BUILT_IN


def check_model(spec: RunSpec) -> str | None:
    """Why `spec`'s model cannot train (one line), or None. Runs where Keras has the run's backend."""
    return inspect_model(spec)[0]


def inspect_model(spec: RunSpec) -> tuple[str | None, str | None]:
    """(why `spec`'s model cannot train, or None; a note about it, or None), from one build of the model."""
    from bench import registry
    from bench.model import build_model

    batch = spec.batch_size if spec.stateful else None
    try:
        model = build_model(spec, batch, registry.backend(spec.backend).model_options(spec.stateful)[0])
    except UserError as exc:
        return str(exc), None
    note = compile_note(model, f"the scenario's optimizer ({spec.optimizer})")
    return _problem(spec, model, batch), note and (
        f"model {spec.model.label}: {note} (remove it from the factory to silence this note)"
    )


def compile_note(model: Any, optimizer: str = "the scenario's optimizer") -> str | None:
    """A model its factory compiled: its optimizer and loss are replaced by the scenario's and MSE, so every
    run of a sweep differs only in what the scenario sweeps; said (before the runs and in each run's notes),
    not silent."""
    compiled = getattr(model, "optimizer", None)
    if not getattr(model, "compiled", False) and compiled is None:
        return None
    loss = getattr(model, "loss", None)
    loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)
    return (
        f"its factory compiles it (optimizer {type(compiled).__name__}, loss {loss_name}); lstm-bench trains every "
        f"model with {optimizer} and mean squared error, so that compile() is replaced"
    )


def _problem(spec: RunSpec, model: Any, batch: int | None) -> str | None:
    where = f"model {spec.model.label}"
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return f"{where}: takes {len(model.inputs)} inputs and gives {len(model.outputs)} outputs; give one of each"
    shape = tuple(model.inputs[0].shape)
    if tuple(shape[1:]) != (spec.look_back, spec.dataset.n_features):
        return (
            f"{where}: its input is {_shown(shape)}, the run's windows are (batch, {spec.look_back}, "
            f"{spec.dataset.n_features}); build keras.Input(batch_shape=(batch_size, look_back, n_features))"
        )
    if shape[0] != batch:  # a stateless run asks for a free batch dimension (None)
        return f"{where}: its batch size is {shape[0]}, the run asked for {batch}; use the batch_size argument"
    out = tuple(model.outputs[0].shape)
    if len(out) != 2 or out[1] != spec.horizon:
        return (
            f"{where}: its output is {_shown(out)}, the run needs (batch, horizon), horizon {spec.horizon}; "
            "end with Dense(horizon)"
        )
    if spec.stateful and not any(getattr(layer, "stateful", False) for layer in _layers(model)):
        return (
            f"{where}: the run is stateful but the model has no stateful layer; pass stateful=stateful to its "
            "recurrent layers, or run it with stateful: false"
        )
    return None


def _layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):  # a nested model
            found += _layers(layer)
        for attr in ("forward_layer", "backward_layer", "layer"):  # Bidirectional, wrappers
            if hasattr(layer, attr):
                found.append(getattr(layer, attr))
    return found


def _shown(shape: tuple) -> str:
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def check_models(specs: list[RunSpec]) -> list[str]:
    """Build each outside model once per shape the specs ask for, in a worker of its backend; raise
    `UserError` with the first problem; return the notes about them, each once."""
    from bench import registry
    from bench.worker import worker_pool

    todo: dict[tuple, RunSpec] = {}
    for spec in specs:
        if needs_check(spec):
            batch = spec.batch_size if spec.stateful else None
            todo.setdefault(
                (spec.backend, spec.model, spec.look_back, spec.dataset.n_features, batch, spec.horizon), spec
            )
    by_backend: dict[str, list[RunSpec]] = {}
    for spec in todo.values():
        if registry.backend(spec.backend).version():  # a missing backend is reported by its own check
            by_backend.setdefault(spec.backend, []).append(spec)
    notes: list[str] = []
    for backend, group in by_backend.items():
        with worker_pool(backend) as pool:
            for problem, note in pool.map(inspect_model, group):
                if problem:
                    raise UserError(problem)
                if note and note not in notes:
                    notes.append(note)
    return notes
