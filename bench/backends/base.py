"""The backend contract: a Keras backend as a worker process runs it, and its registration (`@register_backend`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib import metadata
from typing import Any, ClassVar, TypeVar

from bench.registry import backend_registry


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


B = TypeVar("B", bound=type[Backend])


def register_backend(cls: B) -> B:
    """Class decorator: register a `Backend` subclass under its `name`."""
    backend_registry.add(cls.name, cls())
    return cls
