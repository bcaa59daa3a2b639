"""Which LSTM kernel ran: the backend's cuDNN kernel or Keras's generic step loop.

Keras's `LSTM` layer asks its backend's `lstm` for a fused kernel first: TensorFlow and JAX answer
with cuDNN or raise `NotImplementedError` (then the layer runs its generic loop); PyTorch answers
with cuDNN where the inputs are on a CUDA device and with its own loop elsewhere. A layer built with
`use_cudnn=False` never asks. `observed()` watches those answers while a model is traced or run,
so the record is what the backend did, not a prediction of it.
"""

from __future__ import annotations

import contextlib
from typing import Any
from collections.abc import Iterable, Iterator

CUDNN = "cudnn"
GENERIC = "generic"


@contextlib.contextmanager
def observed() -> Iterator[set[str]]:
    """The kernels every Keras LSTM layer chose inside the block (filled as they are called)."""
    from keras.src import backend

    seen: set[str] = set()
    ask = backend.lstm

    def lstm(*args: Any, **kwargs: Any) -> Any:
        try:
            out = ask(*args, **kwargs)
        except NotImplementedError:
            seen.add(GENERIC)
            raise
        seen.add(CUDNN if _fused(args, kwargs) else GENERIC)
        return out

    backend.lstm = lstm
    try:
        yield seen
    finally:
        backend.lstm = ask


def _fused(args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether an answer of the backend's `lstm` came from cuDNN (torch also answers without it)."""
    from keras.src import backend

    if backend.backend() != "torch":
        return True
    inputs = args[0] if args else kwargs["inputs"]
    use_bias = kwargs["bias"] is not None
    ok = backend.cudnn_ok(kwargs["activation"], kwargs["recurrent_activation"], kwargs.get("unroll", False), use_bias)
    return inputs.device.type == "cuda" and bool(ok)


def describe(seen: Iterable[str]) -> str:
    """One value for a run: `cudnn`, `generic`, or `cudnn+generic` when its layers or passes differed, with
    `fused-small-products` joined where the `scan` engine fused small products (`bench.engines.small_products`).
    No LSTM kernel seen means no layer asked (`use_cudnn=False`, or no LSTM): the generic loop ran."""
    parts = set(seen)
    if not parts & {CUDNN, GENERIC}:
        parts.add(GENERIC)
    return "+".join(sorted(parts))
