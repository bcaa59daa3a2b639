"""`RunSpec`: everything one training run depends on, each field declaring its column (`bench.schema`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from collections.abc import Callable

from pydantic import AfterValidator, Field, StrictBool, StrictInt

from bench.datasets import DatasetSpec
from bench.errors import UserError
from bench.schema import Column, all_columns, column, columns, flat_values

# Bump when a change makes results of the same spec incomparable (a new evaluation protocol, say):
# old runs then no longer count as done (the protocol is part of the run id).
PROTOCOL_VERSION = 2


def _require(ok: Callable[[Any], bool], message: str) -> AfterValidator:
    def check(v: Any) -> Any:
        if not ok(v):
            raise ValueError(f"{message}, got {v!r}")
        return v

    return AfterValidator(check)


# scenario key types (pydantic), with the messages users see
PositiveInt = Annotated[StrictInt, _require(lambda v: v >= 1, "must be a positive integer")]
PositiveFloat = Annotated[float, _require(lambda v: v > 0, "must be > 0")]
StepsPerExecution = Annotated[
    StrictInt | str,
    _require(
        lambda v: (isinstance(v, int) and v >= 1) or v == "auto",
        "must be a positive integer or 'auto' (the whole epoch)",
    ),
]


def _registered(kind: str) -> Any:
    """A scenario key type accepting the names in a registry (read at validation, so plugins count)."""

    def check(name: str) -> str:
        from bench import registry

        try:
            registry.registry(kind).get(name)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return name

    return Annotated[str, AfterValidator(check)]


@dataclass(frozen=True)
class RunSpec:
    """A fully resolved run. Its `run_id` is a hash of its identity columns (`Column.in_id`)."""

    scenario: str = field(metadata=column("provenance", str, in_id=False))
    dataset: DatasetSpec = field(
        metadata=columns(
            Column("dataset", "config", str, sweep=True, facet=True, get=lambda d: d.label),
            Column("dataset_name", "config", str, get=lambda d: d.name),
            Column("dataset_params", "config", str, get=lambda d: d.identity_json),
            Column("dataset_source", "provenance", str, in_id=False, get=lambda d: d.source),
        )
    )
    test_fraction: float = field(
        metadata=column("config", float, facet=True, default=0.33, scenario_type=Annotated[float, Field(gt=0, lt=1)])
    )
    difference: bool = field(metadata=column("config", bool, facet=True, default=False, scenario_type=StrictBool))
    scale: str = field(
        metadata=column(
            "config",
            str,
            facet=True,
            default="minmax",
            scenario_type=Literal["minmax", "minmax_sym", "standard", "none"],
        )
    )
    look_back: int = field(metadata=column("config", int, sweep=True, facet=True, default=1, scenario_type=PositiveInt))
    batch_size: int = field(metadata=column("config", int, sweep=True, default=1, scenario_type=PositiveInt))
    stateful: bool = field(metadata=column("config", bool, sweep=True, default=True, scenario_type=StrictBool))
    # streams | sequential for stateful runs, "none" for stateless ones
    layout: str = field(
        metadata=column("config", str, sweep=True, default="streams", scenario_type=Literal["streams", "sequential"])
    )
    units: int = field(metadata=column("config", int, sweep=True, facet=True, default=4, scenario_type=PositiveInt))
    layers: int = field(
        metadata=column("config", int, facet=True, default=1, scenario_type=Annotated[StrictInt, Field(ge=1, le=8)])
    )
    epochs: int = field(metadata=column("config", int, sweep=True, facet=True, default=100, scenario_type=PositiveInt))
    learning_rate: float = field(
        metadata=column("config", float, sweep=True, facet=True, default=0.001, scenario_type=PositiveFloat)
    )
    optimizer: str = field(
        metadata=column("config", str, facet=True, default="adam", scenario_type=Literal["adam", "sgd", "rmsprop"])
    )
    shuffle: bool = field(metadata=column("config", bool, facet=True, default=False, scenario_type=StrictBool))
    steps_per_execution: int | str = field(
        metadata=column("config", str, compared=True, facet=True, default=1, get=str, scenario_type=StepsPerExecution)
    )
    repeat: int = field(metadata=column("seed", int))
    base_seed: int = field(metadata=column("seed", int))
    seed: int = field(metadata=column("seed", int))  # derived from base_seed and repeat
    backend: str = field(
        metadata=column(
            "config",
            str,
            sweep=True,
            compared=True,
            facet=True,
            default="tensorflow",
            scenario_type=_registered("backend"),
        )
    )
    engine: str = field(
        metadata=column(
            "config", str, sweep=True, compared=True, facet=True, default="fit", scenario_type=_registered("engine")
        )
    )
    device: str = field(
        metadata=column(
            "config",
            str,
            sweep=True,
            compared=True,
            facet=True,
            default="cpu",
            scenario_type=Literal["cpu", "gpu", "auto"],
        )
    )
    eval_every: int = field(
        metadata=column("config", int, facet=True, default=0, scenario_type=Annotated[StrictInt, Field(ge=0)])
    )
    target_metric: str | None = field(metadata=column("config", str, facet=True))
    target_value: float | None = field(metadata=column("config", float, facet=True))
    # results written before the column existed (lstm-bench 0.1.0) used protocol 2
    protocol: int = field(default=PROTOCOL_VERSION, metadata=column("config", int, added=2, default=2))

    @property
    def run_id(self) -> str:
        flat = self.as_flat()
        payload = {
            c.name: flat[c.name]
            for c in spec_columns()
            if c.in_id is True or (c.in_id == "unless_default" and flat[c.name] != c.default)
        }
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def config_key(self) -> tuple[Any, ...]:
        """The configuration (no repeat or seed): runs sharing it are repeats of one another."""
        flat = self.as_flat()
        return tuple((c.name, flat[c.name]) for c in spec_columns() if c.kind == "config")

    def as_flat(self) -> dict[str, Any]:
        """The spec's column values by name (the dataset as its label, name, parameters and source)."""
        return flat_values(self)


def spec_columns() -> tuple[Column, ...]:
    """The columns of every RunSpec field, in field order."""
    return all_columns(RunSpec)
