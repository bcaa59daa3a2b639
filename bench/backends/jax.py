"""JAX: Keras `fit` loses the stateful layers' state here (its stateless steps return the model's tracked
variables, and a recurrent layer's states are not among them); the `scan` engine carries it."""

from __future__ import annotations

import os
from pathlib import Path

from bench.backends.base import Backend, register_backend

#: Where compiled programs are kept between processes; "off" disables the cache.
CACHE_ENV = "LSTM_BENCH_CACHE_DIR"


def compilation_cache_dir() -> Path | None:
    """The per-user folder for JAX's persistent compilation cache (None when switched off)."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-bench" / "jax"


@register_backend
class Jax(Backend):
    name = "jax"
    distributions = ("jax",)

    def environment(self, device: str, threads: int | None) -> dict[str, str]:
        env = super().environment(device, threads)
        if device == "cpu":
            env["JAX_PLATFORMS"] = "cpu"
        return env

    def configure(self, threads: int | None) -> None:
        """Compiling an epoch costs seconds and training it milliseconds: keep compiled programs on disk,
        so a second run of a sweep on this machine skips compiling (JAX's persistent compilation cache)."""
        super().configure(threads)
        import jax

        folder = compilation_cache_dir()
        if folder is not None:
            jax.config.update("jax_compilation_cache_dir", str(folder))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)

    def gpu_names(self) -> list[str]:
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
