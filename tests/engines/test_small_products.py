"""Small products fused on CPU (`bench.engines.small_products`): which products, the same numbers as a dot, and
the same training as with every product a dot, for each model family the engine runs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench.engines.small_products import LIMIT, is_small
from bench.models import ModelSpec
from test_scan import data, sine, spec_for


def test_only_small_two_dimensional_products_are_fused() -> None:
    assert is_small((4, 4), (4, 16))  # a 4-unit cell's recurrent product at batch 4
    assert is_small((32, 4), (4, 16)) and not is_small((64, 4), (4, 16))  # the limit: 2,048 multiplications
    assert not is_small((8, 16), (16, 64))  # 16 units at batch 8: the library call is faster
    assert not is_small((1, 3, 4), (4, 16))  # not 2-D
    assert not is_small((1, 4), (4, 16))  # one row: XLA already fuses it, so batch 1 trains bit for bit as before
    assert LIMIT == 2048


def fused_products() -> tuple[float, list[bool], list[bool], bool]:
    """(largest difference from NumPy's product, marks of a small product, marks of a large one, restored)."""
    import jax.numpy as jnp
    import keras
    from keras.src.backend.jax import numpy as backend

    from bench.engines import small_products

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 4), np.float32), rng.standard_normal((4, 16), np.float32)
    big_a, big_b = rng.standard_normal((64, 32), np.float32), rng.standard_normal((32, 128), np.float32)
    before = backend.matmul
    with small_products.fused() as small:
        out = np.asarray(keras.ops.matmul(jnp.asarray(a), jnp.asarray(b)))
    with small_products.fused() as large:
        keras.ops.matmul(jnp.asarray(big_a), jnp.asarray(big_b))
    return float(np.abs(out - a @ b).max()), small, large, backend.matmul is before


def test_a_fused_product_equals_a_dot_and_is_marked(workers) -> None:
    diff, small, large, restored = workers["jax"].submit(fused_products).result()
    assert diff < 1e-5 and small == [True] and large == [] and restored


def trained_fused_and_not(spec) -> tuple[list[float], list[float], str, str, list, list]:  # noqa: ANN001
    """Losses, kernel records and final test predictions of one run trained with small products fused and
    with every product a dot (fresh programs each)."""
    from bench.engines import scan, small_products

    prep, windows = data(spec, sine())
    out = []
    for limit in (LIMIT, 0):
        small_products.LIMIT = limit
        scan._program.cache_clear()
        try:
            out.append(scan.run(spec, prep, windows))
        finally:
            small_products.LIMIT = LIMIT
            scan._program.cache_clear()
    fused, dots = out
    return (
        [e.loss for e in fused.epochs],
        [e.loss for e in dots.epochs],
        fused.kernel,
        dots.kernel,
        [fused.metrics.test_rmse],
        [dots.metrics.test_rmse],
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        # the default run's time budget: two families by default, the rest with -m slow
        pytest.param({"batch_size": 4, "stateful": False, "layout": "none"}, marks=pytest.mark.slow),
        {"model": ModelSpec("gru")},
        pytest.param(
            {"model": ModelSpec("simple_rnn", json.dumps({"units": [3, 2], "head": [4]}))}, marks=pytest.mark.slow
        ),
    ],
    ids=["lstm-stateful", "lstm-stateless-b4", "gru", "simple_rnn-stack"],
)
def test_fusing_leaves_training_unchanged(overrides: dict, workers) -> None:
    spec = dataclasses.replace(spec_for(), **overrides)
    fused, dots, kernel_fused, kernel_dots, rmse_fused, rmse_dots = (
        workers["jax"].submit(trained_fused_and_not, spec).result()
    )
    assert "fused-small-products" in kernel_fused and "fused-small-products" not in kernel_dots
    np.testing.assert_allclose(fused, dots, rtol=1e-5)
    np.testing.assert_allclose(rmse_fused, rmse_dots, rtol=1e-5)
