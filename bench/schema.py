"""Run fields, defined once: each field of `RunSpec`, `RunResult` and their records carries a
`Column` in its dataclass metadata, and everything else derives from those declarations:

- the scenario keys that map onto a run field, and which of them may sweep (`bench.scenario`);
- what defines a configuration (what repeats share), and so the run id and the groups of repeats
  an engine may train together (`bench.specs`);
- which fields may differ between the two sides of `compare`, and the report's facets;
- the database and CSV columns, their types, and the defaults of columns an older database lacks
  (`bench.store` migrates with them).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Literal
from collections.abc import Callable

#: config: defines a configuration (repeats share it; part of the run id).
#: seed: which repeat of a configuration (part of the run id).
#: provenance: where a run came from (not part of its identity).
#: outcome: what the run produced.
Kind = Literal["config", "seed", "provenance", "outcome"]

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Column:
    """One column of the runs (or epochs) table, declared on the dataclass field it comes from.

    `added` is the results-schema version that introduced the column; rows written before it read
    `default`. `in_id` says whether the column is part of the run id; by default a column of
    version 1 is, and a later one only when it differs from its default, so the runs an older
    version wrote keep their ids ("unless_default").
    """

    name: str
    kind: Kind
    type: type
    sweep: bool = False  # the scenario key of the same name may be a list
    # the comparison axis the column belongs to (`lstm-bench compare --by AXIS`): two folders that share
    # no value of an axis are compared along it; an axis both folders hold a value of pairs runs instead
    compared: str | None = None
    facet: bool = False  # the report splits its figures by it when it varies
    # a value of the run's optimizer trial (`bench.optimizers`, `bench.search`): runs that differ only in
    # these train together on `scan`, and the report tunes over them instead of splitting by them
    trial: bool = False
    added: int = 1
    default: Any = None
    in_id: bool | Literal["unless_default"] | None = None
    get: Callable[[Any], Any] | None = None  # derives the value from the field's value (None: the value itself)
    scenario_type: Any = None  # the type of the scenario key of the same name (None: no such key)
    backfill: str | None = None  # rows older than `added` take this older column's value instead of `default`

    @property
    def id_rule(self) -> bool | Literal["unless_default"]:
        """Whether the column is part of the run id: always, never, or "unless_default"."""
        if self.in_id is not None:
            return self.in_id
        return True if self.added == 1 else "unless_default"

    def in_run_id(self, value: Any) -> bool:
        """Whether `value` of this column goes into the run id."""
        return self.id_rule is True or (self.id_rule == "unless_default" and value != self.value(self.default))

    @property
    def numeric(self) -> bool:
        return self.type in (int, float)

    @property
    def sql_type(self) -> str:
        return {int: "INTEGER", float: "REAL", bool: "INTEGER"}.get(self.type, "TEXT")

    def value(self, field_value: Any) -> Any:
        return self.get(field_value) if self.get else field_value


def column(kind: Kind, type_: type, **kw: Any) -> dict[str, Any]:
    """Field metadata declaring the field's one column (named after the field)."""
    return {"columns": (lambda name: (Column(name, kind, type_, **kw),))}


def columns(*derived: Column) -> dict[str, Any]:
    """Field metadata declaring several columns derived from one field (e.g. the dataset)."""
    return {"columns": (lambda name: derived)}


def flatten() -> dict[str, Any]:
    """Field metadata for a nested record (metrics, throughput) whose own fields are columns."""
    return {"flatten": True}


@functools.cache
def field_columns(cls: type) -> tuple[tuple[dataclasses.Field, tuple[Column, ...]], ...]:
    """Each field of dataclass `cls` with the columns it declares, in field order (nested records flattened)."""
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("flatten"):
            out.append((f, tuple(c for _, cols in field_columns(_record_type(cls, f)) for c in cols)))
        elif "columns" in f.metadata:
            out.append((f, f.metadata["columns"](f.name)))
    return tuple(out)


def _record_type(cls: type, f: dataclasses.Field) -> type:
    import typing

    hint = typing.get_type_hints(cls)[f.name]
    for arg in (*typing.get_args(hint), hint):
        if dataclasses.is_dataclass(arg):
            return arg
    raise TypeError(f"{cls.__name__}.{f.name}: flatten() needs a dataclass type")


def flat_values(record: Any) -> dict[str, Any]:
    """A record's column values by column name (nested records flattened; a missing one gives None)."""
    out: dict[str, Any] = {}
    for f, cols in field_columns(type(record)):
        value = getattr(record, f.name)
        if f.metadata.get("flatten"):
            nested = flat_values(value) if value is not None else {}
            out.update({c.name: nested.get(c.name) for c in cols})
        else:
            out.update({c.name: c.value(value) for c in cols})
    return out


@functools.cache
def all_columns(cls: type) -> tuple[Column, ...]:
    return tuple(c for _, cols in field_columns(cls) for c in cols)


class Schema:
    """The columns of the runs and epochs tables, and the sets derived from them."""

    def __init__(self, spec_cls: type, result_cls: type, epoch_cls: type) -> None:
        self.spec_columns = all_columns(spec_cls)
        self.result_columns = all_columns(result_cls)
        self.run_columns: tuple[Column, ...] = (
            Column("run_id", "provenance", str),
            *self.spec_columns,
            *self.result_columns,
        )
        self.epoch_columns: tuple[Column, ...] = (Column("run_id", "provenance", str), *all_columns(epoch_cls))
        names = [c.name for c in self.run_columns]
        if len(names) != len(set(names)):
            raise TypeError(f"duplicate run columns: {sorted({n for n in names if names.count(n) > 1})}")

    @property
    def run_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.run_columns)

    @property
    def epoch_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.epoch_columns)

    @property
    def config(self) -> tuple[str, ...]:
        """What defines a configuration: runs that share these are repeats of one another."""
        return tuple(c.name for c in self.spec_columns if c.kind == "config")

    @property
    def sweep(self) -> tuple[str, ...]:
        """Scenario keys that may hold a list (the runs are the product of all lists)."""
        return tuple(c.name for c in self.spec_columns if c.sweep)

    @property
    def compared(self) -> tuple[str, ...]:
        """What the two sides of a comparison may differ in."""
        return tuple(c.name for c in self.spec_columns if c.compared)

    @property
    def compared_axes(self) -> dict[str, tuple[str, ...]]:
        """Each comparison axis (device, backend, engine, model, dataset) with the columns that make it up."""
        axes: dict[str, tuple[str, ...]] = {}
        for c in self.spec_columns:
            if c.compared:
                axes[c.compared] = (*axes.get(c.compared, ()), c.name)
        return axes

    @property
    def pair_key(self) -> tuple[str, ...]:
        """What two runs of a comparison always share: the configuration but the compared axes, and the repeat
        (`bench.report.pairing` adds each axis the two sides hold a common value of)."""
        return (
            *(n for n in self.config if n not in self.compared),
            *(c.name for c in self.spec_columns if c.kind == "seed"),
        )

    @property
    def facets(self) -> tuple[str, ...]:
        """Columns the report splits figures by when they vary, sweep axes first (an axis chosen first
        hides those it implies: steps_per_execution follows the engine)."""
        cols = [c for c in self.run_columns if c.facet]
        return tuple(c.name for c in sorted(cols, key=lambda c: not c.sweep))

    @property
    def numeric_runs(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.run_columns if c.numeric)

    @property
    def numeric_epochs(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.epoch_columns if c.numeric)

    def added_in(self, version: int) -> dict[str, tuple[Column, ...]]:
        """Columns introduced by results-schema `version`, by table (a migration adds them with their defaults)."""
        return {
            "runs": tuple(c for c in self.run_columns if c.added == version),
            "epochs": tuple(c for c in self.epoch_columns if c.added == version),
        }


@functools.cache
def schema() -> Schema:
    """The schema of this lstm-bench's runs and epochs tables."""
    from bench.results import EpochRow, RunResult
    from bench.runspec import RunSpec

    return Schema(RunSpec, RunResult, EpochRow)
