"""Models, a registered extension point like engines and backends.

The `model` scenario key names one (`model: gru`, or `model: {name: gru, units: [8, 4], dropout: 0.1}`);
a list among its values makes a sweep axis, as elsewhere in a scenario. Built-ins are in
`bench.models.recurrent`; a plugin module registers more with `@register_model`.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.models.base import Model, ModelSpec, Shape, register_model
from bench.models.factory import resolve_factory

__all__ = ["Model", "ModelSpec", "Resolved", "Shape", "register_model", "resolve_models"]

#: (the model, the run's units, the run's layers)
Resolved = tuple[ModelSpec, int, int]


def resolve_models(ref: Any, units: Any, layers: int, stack_given: bool, base_dir: Path) -> list[Resolved]:
    """Every model the `model` key names, its lists expanded (but `units` and `head`, which list widths
    per layer), with the units and layers of its runs.

    `units` and `layers` are the scenario's top-level keys (units may be a sweep list); a model that
    gives its own must not meet them (`stack_given`)."""
    from bench import registry

    refs = ref if isinstance(ref, list) else [ref]
    out: list[Resolved] = []
    for one in refs:
        one = {"name": one} if isinstance(one, str) else dict(one) if isinstance(one, dict) else one
        if not isinstance(one, dict) or not isinstance(one.get("name", "lstm"), (str, list)):
            raise UserError(f"model: give a name (e.g. gru) or a mapping with 'name' and parameters, got {one!r}")
        if "factory" in one:
            widths = units if isinstance(units, list) else [units]
            out += [(resolve_factory(one, base_dir), w, layers) for w in widths]
            continue
        keys = list(one)
        for values in itertools.product(
            *(v if isinstance(v, list) and k not in ("units", "head") else [v] for k, v in one.items())
        ):
            given = dict(zip(keys, values))
            name = given.pop("name", "lstm")
            if name == "factory":
                raise UserError("model: a factory model is {factory: FILE.py:FUNCTION, params: {...}}; give the file")
            entry = registry.model_registry.get(name)
            out += _with_stack(entry, given, units, layers, stack_given)
    return list(dict.fromkeys(out))


def _with_stack(entry: Model, given: dict[str, Any], units: Any, layers: int, stack_given: bool) -> list[Resolved]:
    own = {k: given.pop(k) for k in ("units", "layers") if k in given}
    if own and stack_given:
        raise UserError(
            "model: units and layers go either in the model or at the top of the scenario, not both; remove one"
        )
    params = entry.check({k: v for k, v in given.items() if v != entry.defaults.get(k)})
    widths = own.get("units", units)
    depth = own.get("layers", layers)
    if isinstance(widths, list) and "units" in own:  # a per-layer list
        if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
            raise UserError(f"model: 'units' must be a positive integer or a list of them per layer, got {widths!r}")
        if "layers" in own and own["layers"] != len(widths):
            raise UserError(f"model: units {widths} names {len(widths)} layers but layers is {own['layers']}")
        depth = len(widths)
        if len(set(widths)) > 1:
            params["units"] = widths
        widths = widths[0]
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 8:
        raise UserError(f"model: 'layers' must be an integer from 1 to 8, got {depth!r}")
    spec = ModelSpec(entry.name, json.dumps(params, sort_keys=True))
    return [(spec, w, depth) for w in (widths if isinstance(widths, list) else [widths])]
