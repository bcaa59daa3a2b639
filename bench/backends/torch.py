"""PyTorch: stateful LSTMs need the non-cuDNN path, and Keras's trainer takes one batch per call."""

from __future__ import annotations

from typing import Any

from bench.backends.base import Backend, register_backend


@register_backend
class Torch(Backend):
    name = "torch"
    distributions = ("torch",)
    supports_steps_per_execution = False
    install = "pip install '.[torch]'"

    def gpu_names(self) -> list[str]:
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]

    def model_options(self, stateful: bool) -> tuple[dict[str, Any], str]:
        # keras-team/keras#20875, #23462: the cuDNN kernel modifies the carried state in place
        if stateful:
            return {"use_cudnn": False}, "use_cudnn=False (stateful training on torch)"
        return {}, ""
