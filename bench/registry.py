"""The extension points: engines, backends and models, each declared once and registered by name.

An engine (`bench.engines.*`) trains and evaluates runs; a backend (`bench.backends.*`) is a Keras
backend and what a worker process needs to run it. Everything that asks "which engines are
there, on which backends, may they train repeats together?" (scenario validation, the CLI's
choices, spec expansion, grouping, the probe, the conformance tests) reads these registries.

Adding one is a module with a subclass and `@register_engine` / `@register_backend` /
`@register_model` (`bench.models`). Modules outside lstm-bench register the same way and are
loaded from the `lstm_bench.plugins` entry-point group, or from `LSTM_BENCH_PLUGINS`
(comma-separated module names), which worker processes inherit.
"""

from __future__ import annotations

import functools
import importlib
import os
from abc import ABC, abstractmethod
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from collections.abc import Iterator, Sequence

from bench.errors import UserError, closest

if TYPE_CHECKING:
    from bench.models.base import Model
    from bench.probe import ProbeResult
    from bench.results import RunResult
    from bench.runspec import RunSpec
    from bench.windows import Prepared, Windows

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

    def __iter__(self) -> Iterator[T]:
        return iter([self._entries[n] for n in self.names()])


def _where(entry: object) -> str:
    return f"{type(entry).__module__}.{type(entry).__qualname__}"


class Backend(ABC):
    """A Keras backend, as a worker process runs it.

    The worker sets `environment(device, threads)` before anything imports Keras, then calls
    `configure(threads)`. `model_options(stateful)` adjusts the recurrent layers (with a note for the run).
    """

    name: ClassVar[str]  # the KERAS_BACKEND value
    distributions: ClassVar[tuple[str, ...]]  # whose installed version the environment records (first found)
    supports_steps_per_execution: ClassVar[bool] = True
    install: ClassVar[str] = ""  # the command that installs it ("" : pip install <first distribution>)

    def version(self) -> str:
        """The installed version of its framework ("" when it is not installed here)."""
        for dist in self.distributions:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return ""

    def how_to_install(self) -> str:
        """The command that installs its framework, for messages that say what is missing."""
        return self.install or f"pip install {self.distributions[0]}"

    def environment(self, device: str, threads: int | None) -> dict[str, str]:
        """Variables a worker for `device` needs before Keras is imported."""
        env = {
            "KERAS_BACKEND": self.name,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            # oneDNN reorders float sums: results would vary by run
            "TF_ENABLE_ONEDNN_OPTS": "0",
        }
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        return env

    def configure(self, threads: int | None) -> None:
        """Set up the framework in a fresh worker (Keras already imported).

        By default Keras is told TensorFlow is absent: `keras.utils.set_random_seed` seeds TensorFlow
        whenever it is installed, importing it (about 6 s) into a worker that never uses it."""
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False

    @abstractmethod
    def gpu_names(self) -> list[str]:
        """The GPUs this process's framework can use (empty when none, or a CPU-only build)."""

    def model_options(self, stateful: bool) -> tuple[dict[str, Any], str]:
        """Extra LSTM constructor options on this backend, and a note for the run saying why ("" if none)."""
        return {}, ""


class Engine(ABC):
    """Trains and evaluates runs: given specs of one configuration and their windows, their results.

    `backends`: the backends it runs on (None: every registered one). `fails_state_on`: backends
    where it is known not to carry the LSTM state; on the others it claims to (the state-carry probe
    checks the claim before stateful runs, and the conformance suite tests every claimed pair).
    `trains_together`: several repeats of one configuration arrive in one `run` call (else one spec
    per call); `trains_together_across`: config columns those runs may also differ in (the scan
    engine's learning rate). `takes_steps_per_execution`: honours that setting where the backend
    does. `measures_noise_scale`: records the gradient noise scale when a run asks for it.
    """

    name: ClassVar[str]
    backends: ClassVar[tuple[str, ...] | None] = None
    fails_state_on: ClassVar[tuple[str, ...]] = ()
    trains_together: ClassVar[bool] = False
    trains_together_across: ClassVar[tuple[str, ...]] = ()
    takes_steps_per_execution: ClassVar[bool] = False
    measures_noise_scale: ClassVar[bool] = False

    def runs_on(self) -> tuple[str, ...]:
        return self.backends if self.backends is not None else backend_registry.names()

    @abstractmethod
    def probe(self, backend: str) -> ProbeResult:
        """Whether stateful training carries state with this engine on `backend` (this process's backend)."""

    @abstractmethod
    def run(self, specs: Sequence[RunSpec], prep: Prepared, windows: Windows) -> list[RunResult]:
        """Train and evaluate `specs` (repeats of one configuration) in this process."""

    def unsupported_reason(self, spec: RunSpec) -> str | None:
        """Why this process must not run `spec` (None when it can): a stateful run fails the probe."""
        if not spec.stateful:
            return None
        result = self.probe(spec.backend)
        if result.carries_state:
            return None
        advice = stateful_advice(spec.backend, self.name)
        return f"stateful {self.name} on {spec.backend} does not carry state ({result.detail}); {advice}"

    def steps_per_execution(self, backend: str, asked: int | str) -> int | str:
        """The steps_per_execution a run of this engine on `backend` uses (1 where it does not apply)."""
        return (
            asked
            if self.takes_steps_per_execution and backend_registry.get(backend).supports_steps_per_execution
            else 1
        )


engine_registry: Registry[Engine] = Registry("engine")
backend_registry: Registry[Backend] = Registry("backend")
model_registry: Registry[Model] = Registry("model")
_registries: dict[str, Registry[Any]] = {
    "engine": engine_registry,
    "backend": backend_registry,
    "model": model_registry,
}

E = TypeVar("E", bound=type[Engine])
B = TypeVar("B", bound=type[Backend])


def register_engine(cls: E) -> E:
    """Class decorator: register an `Engine` subclass under its `name`."""
    engine_registry.add(cls.name, cls())
    return cls


def register_backend(cls: B) -> B:
    """Class decorator: register a `Backend` subclass under its `name`."""
    backend_registry.add(cls.name, cls())
    return cls


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
