"""`lstm-bench doctor`: what each backend can do on this machine, asked the way the runner asks.

For each registered backend: is it installed (and which version), which devices does it see (in a
worker started for the GPU, as `device: auto` asks), does stateful training carry state on each
engine and device (the state-carry probe, in a worker per device), and what to install or change
when something is missing. It reports; it does not fail: a machine without a GPU is a fine answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import environment, registry

#: How long one worker may take to start and answer (importing TensorFlow takes seconds).
WORKER_TIMEOUT_S = 300


@dataclass(frozen=True)
class ProbeLine:
    engine: str
    device: str
    carries_state: bool | None  # None: the probe could not run
    detail: str


@dataclass(frozen=True)
class BackendCheck:
    backend: str
    version: str  # "" when not installed
    gpus: tuple[str, ...] = ()
    probes: tuple[ProbeLine, ...] = ()
    advice: tuple[str, ...] = field(default_factory=tuple)


def _ask(backend: str, device: str, engines: list[str]) -> tuple[list[str], list[ProbeLine]]:
    """(GPUs the backend sees, one probe line per engine) from a fresh worker for `device`."""
    from bench.probe import probe
    from bench.worker import gpu_names, worker_pool

    try:
        with worker_pool(backend, device) as pool:
            gpus = pool.submit(gpu_names, backend).result(WORKER_TIMEOUT_S) if device == "gpu" else []
            if device == "gpu" and not gpus:
                return [], []
            lines = []
            for engine in engines:
                result = pool.submit(probe, backend, engine).result(WORKER_TIMEOUT_S)
                lines.append(ProbeLine(engine, device, result.carries_state, result.detail))
            return gpus, lines
    except Exception as exc:  # a backend that cannot start a worker is a finding, not a crash
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        return [], [ProbeLine(e, device, None, f"the worker failed: {detail}") for e in engines]


def check_backend(backend: str) -> BackendCheck:
    """Installed version, GPUs seen, and the probe on every engine and device of one backend."""
    version = registry.backend(backend).version()
    if not version:
        return BackendCheck(
            backend, "", advice=(f"{backend} is not installed: {registry.backend(backend).how_to_install()}",)
        )
    engines = [e.name for e in registry.engine_registry if backend in e.runs_on()]
    gpus: list[str] = []
    probes: list[ProbeLine] = []
    advice: list[str] = []
    _, cpu_lines = _ask(backend, "cpu", engines)
    probes += cpu_lines
    if environment.gpu_present():
        gpus, gpu_lines = _ask(backend, "gpu", engines)
        probes += gpu_lines
        if not gpus:
            advice.append(
                f"nvidia-smi reports a GPU but {backend} sees none (a CPU-only build): install the GPU build "
                "with pip install '.[gpu]' (see docs/models-and-engines.md, GPU)"
            )
    for line in probes:
        if line.carries_state is False:
            advice.append(f"{line.engine} on {line.device}: {registry.stateful_advice(backend, line.engine)}")
    return BackendCheck(backend, version, tuple(gpus), tuple(probes), tuple(advice))


def diagnose(backends: list[str] | None = None) -> tuple[str, list[BackendCheck]]:
    """What nvidia-smi reports ("" without a GPU) and the check of each backend (every registered one by default)."""
    names = backends or list(registry.backend_registry.names())
    return environment.gpu_description(), [check_backend(b) for b in names]
