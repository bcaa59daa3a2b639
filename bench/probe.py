"""The state-carry probe: does stateful training on this backend and engine really carry state?

Keras 3's JAX trainer drops the LSTM state update inside `fit`, silently, so a stateful run
there is a stateless run under another name. Each engine's probe (`Engine.probe`) trains a tiny
stateful model for one epoch of several batches and checks that the state afterwards is non-zero
and that it changes the predictions (the `fit` probe predicts the same batch twice, the `scan`
probe compares a prediction from the carried state with one from a zero state).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from bench import registry


@dataclass(frozen=True)
class ProbeResult:
    backend: str
    engine: str
    carries_state: bool
    detail: str

    @property
    def advice(self) -> str:
        return "" if self.carries_state else registry.stateful_advice(self.backend, self.engine)


def probe(backend: str, engine: str) -> ProbeResult:
    """Probe `engine` on the backend this process runs."""
    return registry.engine(engine).probe(backend)


def _versions(distributions: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in ("keras", "jaxlib", *distributions):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def remembered(engine: object, backend: str, device: str, run: Callable[[], ProbeResult]) -> ProbeResult:
    """`run()`'s result, kept on disk beside the compilation cache once it says the state is carried: the probe
    checks the installed Keras and backend, so it is probed again only when their versions, the code it runs
    (the engine's module and the built-in models' sources), Python or the device change. A failing probe is
    never kept: it runs every time. Without a cache folder (`LSTM_BENCH_CACHE_DIR=off`) it always runs (a few
    seconds a worker process)."""
    from bench.backends.jax import compilation_cache_dir

    folder = compilation_cache_dir()
    if folder is None:
        return run()
    code = hashlib.sha256()
    for source in [
        Path(inspect.getsourcefile(type(engine)) or ""),
        *sorted(Path(__file__).with_name("models").glob("*.py")),
    ]:
        code.update(source.read_bytes() if source.is_file() else b"")
    key = {
        "engine": getattr(engine, "name", ""),
        "backend": backend,
        "device": device,
        "python": platform.python_version(),
        "code": code.hexdigest(),
        **_versions(registry.backend(backend).distributions if backend in registry.backend_registry.names() else ()),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = folder.with_name(f"{folder.name}-probes") / f"{key['engine']}-{backend}-{digest}.json"
    try:
        return ProbeResult(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        pass  # not probed yet with these versions, or a damaged file: probe again
    result = run()
    if result.carries_state:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as fh:
                json.dump(asdict(result), fh)
            os.replace(fh.name, path)
        except OSError:
            pass  # a read-only cache folder: probe again next time
    return result
