"""JAX: Keras `fit` drops the stateful LSTM's state here (DESIGN.md fact 4); the `scan` engine carries it."""

from __future__ import annotations

from bench.registry import Backend, register_backend


@register_backend
class Jax(Backend):
    name = "jax"
    distributions = ("jax",)

    def environment(self, device: str, threads: int | None) -> dict[str, str]:
        env = super().environment(device, threads)
        if device == "cpu":
            env["JAX_PLATFORMS"] = "cpu"
        return env

    def gpu_names(self) -> list[str]:
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
