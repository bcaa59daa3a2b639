"""The model contract: a registered builder of an uncompiled Keras model for a run, and `ModelSpec`, the
resolved `model` scenario key (a name and its parameters, canonical and hashable)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from bench.errors import UserError, closest


@dataclass(frozen=True)
class ModelSpec:
    """A model as the scenario names it: a registered `name` and the parameters that differ from its
    defaults (stack width and depth are the run's `units` and `layers`, as before models were named)."""

    name: str = "lstm"
    params_json: str = "{}"
    source: str = field(default="", repr=False)  # a factory file's content (it travels with the run)
    origin: str = ""  # a factory's FILE.py:FUNCTION

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    @property
    def label(self) -> str:
        """Short name for tables and plots: `gru`, `gru dropout=0.2`, or a factory's `mine.py:build units=8`."""
        params = self.params.get("params", {}) if self.origin else self.params
        extra = " ".join(f"{k}={_shown(v)}" for k, v in sorted(params.items()))
        return f"{self.origin or self.name} {extra}".strip()


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@dataclass(frozen=True)
class Shape:
    """What a run asks of its model: windows of `look_back` steps of `n_features` values, in batches of
    `batch_size` (None: free), a stateful model or not, `units` per layer and `layers` of them, and
    `horizon` values forecast from each window."""

    look_back: int
    n_features: int
    batch_size: int | None
    stateful: bool
    units: int
    layers: int
    horizon: int = 1


class Model(ABC):
    """A model builder. `defaults` are its parameters besides units and layers (their types are the
    defaults' types); `build` returns an uncompiled `keras.Model` from (batch, look_back, n_features)
    windows to (batch, horizon) forecasts, for `spec` (its `params`). `layer_options` are the backend's
    extra options for its recurrent layers (e.g. torch's use_cudnn=False when stateful)."""

    name: ClassVar[str]
    description: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def build(self, shape: Shape, spec: ModelSpec, layer_options: dict[str, Any]) -> Any: ...

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` with unknown names refused (with "did you mean") and values of the defaults' types."""
        for key, value in params.items():
            if key not in self.defaults:
                match = closest(key, self.defaults)
                hint = (
                    f"did you mean '{match}'?"
                    if match
                    else f"its parameters are units, layers, {', '.join(self.defaults)}"
                )
                raise UserError(f"model '{self.name}' has no parameter '{key}'; {hint}")
            default = self.defaults[key]
            if isinstance(default, bool) or not isinstance(default, (int, float, str, list)):
                ok = isinstance(value, type(default))
            elif isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            elif isinstance(default, str):
                ok = isinstance(value, str)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok:
                raise UserError(f"model '{self.name}': '{key}' must be like {default!r}, got {value!r}")
        return params


M = TypeVar("M", bound=type[Model])


def register_model(cls: M) -> M:
    """Class decorator: register a `Model` subclass under its `name`."""
    from bench.registry import model_registry

    model_registry.add(cls.name, cls())
    return cls
