"""The lookup of the extension points (engines, backends, models: each registered by name) and plugin loading.

The contracts live beside their implementations: `bench.engines.base.Engine`, `bench.backends.base.Backend`,
`bench.models.base.Model`, each with its `register_*` decorator. Everything that asks "which engines are
there, on which backends, may they train repeats together?" (scenario validation, the CLI's choices, spec
expansion, grouping, the probe, the conformance suites) reads these registries. Modules outside lstm-bench
register the same way and are loaded from the `lstm_bench.plugins` entry-point group, or from
`LSTM_BENCH_PLUGINS` (comma-separated module names), which worker processes inherit.
"""

from __future__ import annotations

import functools
import importlib
import os
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from collections.abc import Iterator

from bench.errors import UserError, closest

if TYPE_CHECKING:
    from bench.backends.base import Backend
    from bench.engines.base import Engine
    from bench.models.base import Model

PLUGINS_ENV = "LSTM_BENCH_PLUGINS"
T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; a lookup of an unknown name is a user error with a hint."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        taken = self._entries.get(name)
        if taken is not None and _where(taken) != _where(entry):  # the same class imported again is fine
            raise UserError(
                f"{self.kind} '{name}' is registered twice ({_where(taken)} and {_where(entry)}); rename one"
            )
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        _load_builtins_and_plugins()
        if name not in self._entries:
            match = closest(name, self._entries)
            hint = f"did you mean '{match}'? " if match else ""
            raise UserError(f"unknown {self.kind} '{name}'; {hint}known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        _load_builtins_and_plugins()
        return tuple(self._entries)

    def choices(self) -> Names:
        """The names as argparse `choices` read only when an option is given or its help shown, so building
        the command-line parser imports no engine, backend or plugin (a broken plugin then stops only the
        commands that use one). Give the option a `metavar`: argparse lists choices to name it otherwise."""
        return Names(self)

    def __iter__(self) -> Iterator[T]:
        return iter([self._entries[n] for n in self.names()])


class Names:
    """A registry's names, looked up when read (`Registry.choices`)."""

    def __init__(self, registry: Registry[Any]) -> None:
        self._registry = registry

    def __contains__(self, name: object) -> bool:
        return name in self._registry.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.names())


def _where(entry: object) -> str:
    return f"{type(entry).__module__}.{type(entry).__qualname__}"


engine_registry: Registry[Engine] = Registry("engine")
backend_registry: Registry[Backend] = Registry("backend")
model_registry: Registry[Model] = Registry("model")

#: Where names that lived here before 0.7.0 are now (plugins importing them from here keep working).
_MOVED = {
    "Engine": "bench.engines.base",
    "register_engine": "bench.engines.base",
    "Backend": "bench.backends.base",
    "register_backend": "bench.backends.base",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'bench.registry' has no attribute {name!r}")


_registries: dict[str, Registry[Any]] = {
    "engine": engine_registry,
    "backend": backend_registry,
    "model": model_registry,
}


def registry(kind: str) -> Registry[Any]:
    return _registries[kind]


def engine(name: str) -> Engine:
    return engine_registry.get(name)


def backend(name: str) -> Backend:
    return backend_registry.get(name)


def stateful_pairs() -> list[tuple[str, str]]:
    """Every (backend, engine) pair that claims to carry the LSTM state."""
    return [(b, e.name) for e in engine_registry for b in e.runs_on() if b not in e.fails_state_on]


def stateful_advice(backend_name: str, engine_name: str) -> str:
    """What to use instead of a pair that does not carry state: another engine on this backend, or another pair."""
    others = [(b, e) for b, e in stateful_pairs() if (b, e) != (backend_name, engine_name)]
    here = [f"engine: {e} on {b}" for b, e in others if b == backend_name][:1]
    elsewhere = [f"backend: {b} with engine: {e}" for b, e in others if b != backend_name][:1]
    return "use " + ", or ".join(here + elsewhere)


@functools.cache
def _builtin_and_installed() -> tuple[str, ...]:
    """Import the built-in engines and backends; the plugin modules installed packages declare."""
    importlib.import_module("bench.backends")
    importlib.import_module("bench.engines")
    importlib.import_module("bench.models.recurrent")
    importlib.import_module("bench.models.factory")
    return tuple(ep.module for ep in metadata.entry_points(group="lstm_bench.plugins"))


def _load_builtins_and_plugins() -> None:
    """Import the built-ins and every plugin module (imports are cached, so this is cheap after the first call)."""
    names = [*_builtin_and_installed(), *(m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip())]
    for name in names:
        try:
            importlib.import_module(name)
        except UserError:
            raise
        except Exception as exc:  # a plugin's own error: name the module, not a traceback
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise UserError(
                f"plugin module '{name}' (from {PLUGINS_ENV} or an lstm_bench.plugins entry point) failed to load "
                f"({detail}); check the name, PYTHONPATH and the module"
            ) from None
