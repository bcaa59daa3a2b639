"""Any Keras model from a Python file: `model: {factory: models/mine.py:build, params: {...}}`.

The function is called as `build(look_back, n_features, batch_size, stateful, horizon, **params)` and
returns an uncompiled `keras.Model`; lstm-bench compiles it with the scenario's optimizer, rate and
loss. The file's content travels with the run (a worker, or another machine of a Ray cluster, need not
have the file), checked against its hash; the model's identity in the run id is that hash, the
function's name and the params. A scenario naming a factory runs that file's code.
"""

from __future__ import annotations

import ast
import hashlib
import json
import types
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.models.base import Model, ModelSpec, Shape, register_model

KEYS = ("factory", "params")


def resolve_factory(ref: dict[str, Any], base_dir: Path) -> ModelSpec:
    """The `ModelSpec` of a factory reference: the file read (relative to the scenario) and checked."""
    for key in ref:
        if key not in KEYS:
            raise UserError(f"model: a factory model takes 'factory: FILE.py:FUNCTION' and 'params', not '{key}'")
    target = ref["factory"]
    if not isinstance(target, str) or ":" not in target:
        raise UserError(f"model: factory must be 'FILE.py:FUNCTION' (e.g. models/mine.py:build), got {target!r}")
    file, function = target.rsplit(":", 1)
    params = ref.get("params", {})
    if not isinstance(params, dict):
        raise UserError(f"model: factory params must be a mapping of keyword arguments, got {params!r}")
    path = (base_dir / file).resolve()
    if not path.is_file():
        raise UserError(f"model: factory file not found: {path}; paths are relative to the scenario file")
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError as exc:
        raise UserError(f"model: {path}:{exc.lineno}: not valid Python ({exc.msg}); fix the factory file") from None
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    if function not in defined:
        names = ", ".join(defined) or "none"
        raise UserError(f"model: {path} defines no function '{function}' (its functions: {names}); fix factory:")
    identity = {"sha256": hashlib.sha256(source.encode()).hexdigest()[:16], "function": function, "params": params}
    return ModelSpec("factory", json.dumps(identity, sort_keys=True), source=source, origin=f"{path.name}:{function}")


@register_model
class Factory(Model):
    name = "factory"
    description = "any Keras model from a Python file: {factory: FILE.py:FUNCTION, params: {...}}"

    def build(self, shape: Shape, spec: ModelSpec, layer_options: dict[str, Any]) -> Any:
        import keras

        where, params = spec.origin, spec.params
        function = load(spec)
        try:
            model = function(
                shape.look_back, shape.n_features, shape.batch_size, shape.stateful, shape.horizon, **params["params"]
            )
        except Exception as exc:
            last = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
            raise UserError(f"model: factory {where} raised {last}; fix the factory") from None
        if not isinstance(model, keras.Model):
            raise UserError(f"model: factory {where} returned {type(model).__name__}, not a keras.Model; return one")
        return model


def load(spec: ModelSpec) -> Any:
    """The factory function from the content the spec carries, after checking it is the content hashed."""
    identity = spec.params
    if hashlib.sha256(spec.source.encode()).hexdigest()[:16] != identity["sha256"]:
        raise UserError(f"model: factory {spec.origin}: its content does not match the hash in the run id")
    module = types.ModuleType(f"lstm_bench_factory_{identity['sha256']}")
    module.__file__ = spec.origin
    exec(compile(spec.source, spec.origin, "exec"), module.__dict__)  # the scenario asked to run this file
    return getattr(module, identity["function"])
