"""McCandlish et al. 2018's simple gradient noise scale, B_simple = tr(Sigma) / |G|^2, estimated while training.

The two-batch estimator with B_small = 1: each step gives the per-example gradients g_i of its rows.
Their mean squared norm estimates |G_small|^2 (the squared norm of a batch-1 gradient); the squared
norm of their mean over `big_rows` or more rows estimates |G_big|^2 (the batch's own rows when the
batch has two or more, else consecutive batches summed, as gpt-neox does). Then

    |G|^2    ~ (B_big |G_big|^2 - |G_small|^2) / (B_big - 1)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 - 1 / B_big)

each smoothed by an exponential moving average with bias correction before the ratio is taken
(EleutherAI gpt-neox `megatron/gradient_noise_scale/gradient_noise_scale.py`, petuum adaptdl
`adaptdl/torch/gradient_noise_scale.py`). Functions are pure JAX, so they run inside the jitted epoch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: EMA decay per estimate (gpt-neox's default).
BETA = 0.99
#: With batch size 1, |G_big|^2 comes from this many consecutive batches.
BIG_ROWS_AT_BATCH_1 = 10


class NoiseState(NamedTuple):
    """The EMAs, how many estimates they hold, and the gradient accumulated towards the next estimate."""

    g2_ema: Any
    trace_ema: Any
    count: Any
    grad_sum: Any  # pytree like the trainable weights: the sum of per-example gradients since the last estimate
    sq_sum: Any  # sum of the per-example squared gradient norms since the last estimate
    rows: Any


def big_rows(batch_size: int) -> int:
    """Rows per |G_big|^2 estimate: the batch, or consecutive batches for batch size 1."""
    return batch_size if batch_size >= 2 else BIG_ROWS_AT_BATCH_1


def init(trainable: list[Any]) -> NoiseState:
    import jax
    import jax.numpy as jnp

    zero = jnp.zeros((), jnp.float32)
    return NoiseState(zero, zero, zero, jax.tree_util.tree_map(jnp.zeros_like, trainable), zero, zero)


def _sq_norm(tree: Any) -> Any:
    import jax
    import jax.numpy as jnp

    return sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree))


def update(state: NoiseState, per_example: Any, mask: Any, min_rows: int, beta: float = BETA) -> NoiseState:
    """Add one step's per-example gradients (pytree, leading axis = rows; `mask` 0 marks padding rows).

    Once `min_rows` real rows have accumulated, they give one estimate of |G|^2 and tr(Sigma),
    which enters the EMAs, and the accumulation starts again.
    """
    import jax
    import jax.numpy as jnp

    def masked_sum(x: Any) -> Any:
        return jnp.tensordot(mask, x, axes=1)

    grad_sum = jax.tree_util.tree_map(lambda acc, g: acc + masked_sum(g), state.grad_sum, per_example)
    norms = sum(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1) for g in jax.tree_util.tree_leaves(per_example))
    sq_sum = state.sq_sum + jnp.sum(norms * mask)
    rows = state.rows + jnp.sum(mask)
    ready = rows >= min_rows

    b_big = jnp.maximum(rows, 2.0)
    small = sq_sum / jnp.maximum(rows, 1.0)
    big = _sq_norm(grad_sum) / jnp.square(jnp.maximum(rows, 1.0))
    g2 = (b_big * big - small) / (b_big - 1.0)
    trace = (small - big) / (1.0 - 1.0 / b_big)

    def when_ready(new: Any, old: Any) -> Any:
        return jnp.where(ready, new, old)

    return NoiseState(
        g2_ema=when_ready(beta * state.g2_ema + (1 - beta) * g2, state.g2_ema),
        trace_ema=when_ready(beta * state.trace_ema + (1 - beta) * trace, state.trace_ema),
        count=state.count + ready.astype(jnp.float32),
        grad_sum=jax.tree_util.tree_map(lambda g: when_ready(jnp.zeros_like(g), g), grad_sum),
        sq_sum=when_ready(0.0, sq_sum),
        rows=when_ready(0.0, rows),
    )


def value(state: NoiseState, beta: float = BETA) -> Any:
    """B_simple from the bias-corrected EMAs (NaN before the first estimate)."""
    import jax.numpy as jnp

    correction = 1.0 - beta**state.count
    safe = jnp.where(correction > 0, correction, 1.0)
    ratio = (state.trace_ema / safe) / (state.g2_ema / safe)
    return jnp.where(state.count > 0, ratio, jnp.nan)
