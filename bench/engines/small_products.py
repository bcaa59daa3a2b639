"""Small matrix products as fused multiply-and-sum on CPU, while the `scan` engine traces a model.

XLA's CPU compiler keeps a matrix-vector product (one row: batch 1) inside its fused loops, and that is left
as it is, so batch-1 runs train bit for bit as before; every other dot goes to a library GEMM call outside
those loops, with a fixed cost per call and copies for its layouts. A recurrent cell of a few units at a
batch size of a few rows does a handful of such products per step, each a few dozen multiplications, so
from batch 2 on those calls, not the arithmetic, set the step's cost: one step of `LSTM(4)` cost more per
sample at batch 2 and 4 than at batch 1. Written as a broadcast product and a sum over the contracted axis,
a small product (and its gradient) fuses with the elementwise work around it. Large products stay library
calls, which are faster there: at 16 units and batch 8 the fused form was 4x slower. The limit below is
where the two met on a 2-core AMD EPYC VM (docs/performance.md).

Keras's layers call `keras.ops.matmul`, which reaches the JAX backend's `matmul`; `fused()` swaps that
function while the engine traces, so the layers' own code runs unchanged, and the result differs from a
dot only by the order of a float sum.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

#: Largest product (rows x contracted x columns multiplications) written as a fused multiply-and-sum.
LIMIT = 2048
#: The path's name in a run's `kernel` record when a traced program used it.
NAME = "fused-small-products"


def is_small(shape_1: tuple[int, ...], shape_2: tuple[int, ...]) -> bool:
    """Whether a product of 2-D operands of these shapes (one run's, also under `jax.vmap`: runs trained
    together gain from the fused form as much, measured up to 5 runs) is written as a fused multiply-and-sum."""
    if len(shape_1) != 2 or len(shape_2) != 2 or shape_1[0] == 1:  # one row: XLA fuses a matrix-vector product
        return False
    return shape_1[0] * shape_1[1] * shape_2[1] <= LIMIT


@contextlib.contextmanager
def fused(enabled: bool = True) -> Iterator[list[bool]]:
    """Inside the block, small products of Keras's JAX `matmul` are multiply-and-sum; the yielded list gets a
    True for each product so written (the engine records whether the path ran)."""
    used: list[bool] = []
    if not enabled:
        yield used
        return
    import jax.numpy as jnp
    from keras.src.backend.jax import numpy as backend

    dot = backend.matmul

    def matmul(x1: Any, x2: Any) -> Any:
        a, b = jnp.asarray(x1), jnp.asarray(x2)
        if not is_small(a.shape, b.shape) or not jnp.issubdtype(a.dtype, jnp.floating):
            return dot(x1, x2)
        used.append(True)
        return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)

    backend.matmul = matmul
    try:
        yield used
    finally:
        backend.matmul = dot
