"""`RunSpec`: everything one training run depends on, each field declaring its column (`bench.schema`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from collections.abc import Callable

from pydantic import AfterValidator, Field, StrictBool, StrictInt

from bench.datasets import DatasetSpec
from bench.models.base import ModelSpec
from bench.optimizers import DECAYS
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


def _model(attr: str) -> Callable[[Any], Any]:
    """A model column's value: the attribute of a `ModelSpec`; a column's stored default (a string, which
    the run id compares against) passes as it is."""
    return lambda m: m if isinstance(m, str) else getattr(m, attr)


def key(type_: type, default: Any, scenario_type: Any, **flags: Any) -> dict[str, Any]:
    """Metadata of a configuration field set by the scenario key of the same name."""
    return column("config", type_, default=default, scenario_type=scenario_type, **flags)


@dataclass(frozen=True)
class RunSpec:
    """A fully resolved run. Its `run_id` is a hash of its identity columns (`Column.in_id`)."""

    scenario: str = field(metadata=column("provenance", str, in_id=False))
    dataset: DatasetSpec = field(
        metadata=columns(
            Column("dataset", "config", str, sweep=True, compared="dataset", facet=True, get=lambda d: d.label),
            Column("dataset_name", "config", str, compared="dataset", get=lambda d: d.name),
            Column("dataset_params", "config", str, compared="dataset", get=lambda d: d.identity_json),
            Column("dataset_source", "provenance", str, in_id=False, get=lambda d: d.source),
            # the model's inputs; they follow from dataset_params, which is in the run id
            Column(
                "n_features",
                "config",
                int,
                compared="dataset",
                added=3,
                default=1,
                in_id=False,
                get=lambda d: d.n_features,
            ),
            Column(
                "features", "config", str, compared="dataset", added=3, in_id=False, get=lambda d: ",".join(d.features)
            ),
        )
    )
    test_fraction: float = field(metadata=key(float, 0.33, Annotated[float, Field(gt=0, lt=1)], facet=True))
    difference: bool = field(metadata=key(bool, False, StrictBool, facet=True))
    scale: str = field(metadata=key(str, "minmax", Literal["minmax", "minmax_sym", "standard", "none"], facet=True))
    look_back: int = field(metadata=key(int, 1, PositiveInt, sweep=True, facet=True))
    batch_size: int = field(metadata=key(int, 1, PositiveInt, sweep=True))
    stateful: bool = field(metadata=key(bool, True, StrictBool, sweep=True))
    # streams | sequential for stateful runs, "none" for stateless ones
    layout: str = field(metadata=key(str, "streams", Literal["streams", "sequential"], sweep=True))
    units: int = field(metadata=key(int, 4, PositiveInt, sweep=True, facet=True))
    layers: int = field(metadata=key(int, 1, Annotated[StrictInt, Field(ge=1, le=8)], facet=True))
    # None when the budget is `steps`
    epochs: int | None = field(metadata=key(int, 100, PositiveInt, sweep=True, facet=True))
    # the effective rate: the scenario's `learning_rate` scaled by `lr_scaling` (`base_learning_rate` keeps it)
    learning_rate: float = field(metadata=key(float, 0.001, PositiveFloat, sweep=True, trial=True))
    optimizer: str = field(metadata=key(str, "adam", Literal["adam", "sgd", "rmsprop"], facet=True))
    shuffle: bool = field(metadata=key(bool, False, StrictBool, facet=True))
    steps_per_execution: int | str = field(
        metadata=key(str, 1, StepsPerExecution, compared="engine", facet=True, get=str)
    )
    repeat: int = field(metadata=column("seed", int))
    base_seed: int = field(metadata=column("seed", int))
    seed: int = field(metadata=column("seed", int))  # derived from base_seed and repeat
    backend: str = field(
        metadata=key(str, "tensorflow", _registered("backend"), sweep=True, compared="backend", facet=True)
    )
    engine: str = field(metadata=key(str, "fit", _registered("engine"), sweep=True, compared="engine", facet=True))
    device: str = field(
        metadata=key(str, "cpu", Literal["cpu", "gpu", "auto"], sweep=True, compared="device", facet=True)
    )
    eval_every: int = field(metadata=key(int, 0, Annotated[StrictInt, Field(ge=0)], facet=True))
    target_metric: str | None = field(metadata=column("config", str, facet=True))
    target_value: float | None = field(metadata=column("config", float, facet=True))
    # always in the run id (0.1.0 hashed it too, without the column); its rows read protocol 2
    protocol: int = field(default=PROTOCOL_VERSION, metadata=column("config", int, added=2, default=2, in_id=True))
    # the last part of the training part, held out for choosing among configurations
    validation_fraction: float = field(
        default=0.0, metadata=key(float, 0.0, Annotated[float, Field(ge=0, lt=1)], facet=True, added=3)
    )
    lr_scaling: str = field(
        default="none",
        metadata=key(str, "none", Literal["none", "linear", "sqrt", "adam_sqrt"], facet=True, added=3),
    )
    base_batch_size: int = field(default=1, metadata=key(int, 1, PositiveInt, facet=True, added=3))
    # the scenario's learning_rate before scaling; it follows from the columns above, so it is not in the run id
    base_learning_rate: float | None = field(
        default=None,
        metadata=column("config", float, added=3, in_id=False, facet=True, backfill="learning_rate", trial=True),
    )
    # a budget in optimizer updates instead of epochs (the last epoch may be partial)
    steps: int | None = field(
        default=None, metadata=key(int, None, PositiveInt | None, sweep=True, facet=True, added=3)
    )
    # estimate the gradient noise scale while training (engines that cannot record it as unsupported)
    noise_scale: bool = field(default=False, metadata=key(bool, False, StrictBool, added=3))
    # Adam's hyperparameters as this run's batch size trains with them: the scenario's values at base_batch_size,
    # scaled by `beta_2_scaling` or `lr_scaling: adam_sqrt` (so they vary with batch size: not facets)
    beta_1: float = field(
        default=0.9, metadata=key(float, 0.9, Annotated[float, Field(gt=0, lt=1)], added=7, trial=True)
    )
    beta_2: float = field(
        default=0.999, metadata=key(float, 0.999, Annotated[float, Field(gt=0, lt=1)], added=7, trial=True)
    )
    epsilon: float = field(default=1e-7, metadata=key(float, 1e-7, PositiveFloat, added=7, trial=True))
    beta_2_scaling: str = field(
        default="none", metadata=key(str, "none", Literal["none", "half_life"], facet=True, added=7)
    )
    # values forecast from each window (`bench.windows`): the model's last layer gives this many
    horizon: int = field(default=1, metadata=key(int, 1, PositiveInt, sweep=True, facet=True, added=7))
    # the optimizer's other values (`bench.optimizers`): held in optimizer variables, so runs that differ
    # in them train together on `scan`; weight decay is decoupled (AdamW), warm-up a fraction of the budget
    weight_decay: float = field(
        default=0.0, metadata=key(float, 0.0, Annotated[float, Field(ge=0)], added=8, trial=True)
    )
    momentum: float = field(
        default=0.0, metadata=key(float, 0.0, Annotated[float, Field(ge=0, lt=1)], added=8, trial=True)
    )
    nesterov: bool = field(default=False, metadata=key(bool, False, StrictBool, added=8, trial=True))
    warmup: float = field(
        default=0.0, metadata=key(float, 0.0, Annotated[float, Field(ge=0, lt=1)], added=8, trial=True)
    )
    decay: str = field(default="constant", metadata=key(str, "constant", Literal[DECAYS], added=8, trial=True))
    decay_end: float = field(
        default=0.0, metadata=key(float, 0.0, Annotated[float, Field(ge=0, le=1)], added=8, trial=True)
    )
    # the season of the seasonal-naive baseline (`bench.baselines`); None: looked for in the training part
    season: int | None = field(default=None, metadata=key(int, None, Annotated[int, Field(ge=2)] | None, added=9))
    # the search point a run trains (`bench.search`): its index, its study, and its values as drawn; they
    # follow from the columns above and the scenario, so they are not in the run id
    trial: int | None = field(
        default=None, metadata=column("config", int, added=8, in_id=False, trial=True, facet=True)
    )
    study: int | None = field(default=None, metadata=column("config", int, added=8, in_id=False, trial=True))
    search_point: str | None = field(default=None, metadata=column("config", str, added=8, in_id=False, trial=True))
    # the registered model and its parameters besides units and layers (`bench.models`); the default
    # is the stacked LSTM every earlier version trained, so their runs keep their ids
    model: ModelSpec = field(
        default=ModelSpec(),
        metadata=columns(
            Column("model", "config", str, sweep=True, compared="model", facet=True, added=6, default="lstm",
                   get=_model("label")),
            Column("model_name", "config", str, compared="model", added=6, default="lstm", in_id=False,
                   get=_model("name")),
            Column("model_params", "config", str, compared="model", added=6, default="{}", get=_model("params_json")),
        ),
    )  # fmt: skip

    @property
    def run_id(self) -> str:
        flat = self.as_flat()
        payload = {c.name: flat[c.name] for c in spec_columns() if c.in_run_id(flat[c.name])}
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def config_key(self) -> tuple[Any, ...]:
        """The configuration (no repeat or seed): runs sharing it are repeats of one another."""
        flat = self.as_flat()
        return tuple((c.name, flat[c.name]) for c in spec_columns() if c.kind == "config")

    def group_key(self, varying: tuple[str, ...] = ()) -> tuple[Any, ...]:
        """The configuration without the `varying` columns: runs sharing it may train together."""
        return tuple((name, value) for name, value in self.config_key if name not in varying)

    def as_flat(self) -> dict[str, Any]:
        """The spec's column values by name (the dataset as its label, name, parameters and source)."""
        return flat_values(self)


def spec_columns() -> tuple[Column, ...]:
    """The columns of every RunSpec field, in field order."""
    return all_columns(RunSpec)


def trial_columns() -> tuple[str, ...]:
    """The columns of a run's optimizer trial (`Column.trial`)."""
    return tuple(c.name for c in spec_columns() if c.trial)
