"""The engine contract: what an engine declares and does, and its registration (`@register_engine`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, TypeVar
from collections.abc import Sequence

from bench.registry import backend_registry, engine_registry, stateful_advice

if TYPE_CHECKING:
    from bench.probe import ProbeResult
    from bench.results import RunResult
    from bench.runspec import RunSpec
    from bench.windows import Prepared, Windows


class Engine(ABC):
    """Trains and evaluates runs: given specs of one configuration and their windows, their results.

    `backends`: the backends it runs on (None: every registered one). `fails_state_on`: backends
    where it is known not to carry the LSTM state; on the others it claims to (the state-carry probe
    checks the claim before stateful runs, and the conformance suite tests every claimed pair).
    `trains_together`: several repeats of one configuration arrive in one `run` call (else one spec
    per call); `trains_together_across`: config columns those runs may also differ in (the scan
    engine's optimizer values, `bench.runspec.trial_columns`). `takes_steps_per_execution`: honours
    that setting where the backend does. `measures_noise_scale`: records the gradient noise scale when
    a run asks for it.
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
        from bench.probe import remembered

        result = remembered(self, spec.backend, spec.device, lambda: self.probe(spec.backend))
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


E = TypeVar("E", bound=type[Engine])


def register_engine(cls: E) -> E:
    """Class decorator: register an `Engine` subclass under its `name`."""
    engine_registry.add(cls.name, cls())
    return cls
