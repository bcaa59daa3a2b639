"""What the conformance suites run inside a backend's worker process (module-level, so they pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.probe import ProbeResult
from bench.results import RunResult


def run_scenario(text: str, folder: str) -> list[RunResult]:
    """Expand a scenario (paths relative to `folder`) and execute every run in this process."""
    from bench.scenario import parse_scenario_text
    from bench.specs import expand
    from bench.worker import execute

    return [execute(spec) for spec in expand(parse_scenario_text(text, Path(folder) / "s.yaml"))]


def probe(backend: str, engine: str) -> ProbeResult:
    from bench.probe import probe as run_probe

    return run_probe(backend, engine)


def backend_facts(backend: str) -> dict[str, Any]:
    """What a worker of `backend` reports about itself."""
    import keras

    from bench import registry

    entry = registry.backend(backend)
    options = {s: entry.model_options(s) for s in (True, False)}
    return {
        "keras_backend": keras.backend.backend(),
        "gpus": entry.gpu_names(),
        "options": options,
    }


def model_problems(text: str, folder: str) -> list[str]:
    """`bench.models.check.check_model`'s verdict on every run of a scenario (empty strings: none)."""
    from bench.models.check import check_model
    from bench.scenario import parse_scenario_text
    from bench.specs import expand

    return [check_model(s) or "" for s in expand(parse_scenario_text(text, Path(folder) / "s.yaml"))]


def model_carries_state(text: str, folder: str) -> list[tuple[bool, str]]:
    """The `scan` engine's state probe on each run's own model (`bench.engines.scan.probe_model`)."""
    from bench.engines.scan import probe_model
    from bench.scenario import parse_scenario_text
    from bench.specs import expand

    return [
        (r.carries_state, r.detail)
        for r in (probe_model(s) for s in expand(parse_scenario_text(text, Path(folder) / "s.yaml")))
    ]
