"""The gradient noise scale estimator against linear regression with Gaussian noise, where B_simple is known.

Model y = w*.x + sigma*eps, x ~ N(0, I_d), loss (w.x - y)^2, evaluated at w = w* + delta: the
per-example gradient is g = 2 (x.delta - sigma*eps) x, so |G|^2 = 4|delta|^2 and
tr(Sigma) = E|g|^2 - |G|^2 = 4((d + 1)|delta|^2 + sigma^2 d).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from bench import noise_scale  # noqa: E402

D, SIGMA = 4, 0.5
DELTA = np.array([0.3, -0.2, 0.1, 0.25])


def known_b_simple() -> float:
    d2 = float(DELTA @ DELTA)
    return ((D + 1) * d2 + SIGMA**2 * D) / d2


def per_example_gradients(rng: np.random.Generator, rows: int) -> np.ndarray:
    x = rng.standard_normal((rows, D))
    eps = rng.standard_normal(rows)
    return 2 * (x @ DELTA - SIGMA * eps)[:, None] * x


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_estimate_is_within_25_percent_of_the_known_noise_scale(batch_size: int) -> None:
    rng = np.random.default_rng(0)
    min_rows = noise_scale.big_rows(batch_size)
    state = noise_scale.init([jnp.zeros(D)])
    update = jax.jit(lambda s, g, m: noise_scale.update(s, [g], m, min_rows))
    mask = jnp.ones(batch_size)
    for _ in range(4000):
        state = update(state, jnp.asarray(per_example_gradients(rng, batch_size), jnp.float32), mask)
    estimate = float(noise_scale.value(state))
    assert estimate == pytest.approx(known_b_simple(), rel=0.25)


def test_padding_rows_do_not_count() -> None:
    rng = np.random.default_rng(1)
    state = noise_scale.init([jnp.zeros(D)])
    g = np.concatenate([per_example_gradients(rng, 3), np.full((5, D), 1e3)])  # 5 huge padding rows
    state = noise_scale.update(state, [jnp.asarray(g, jnp.float32)], jnp.asarray([1.0] * 3 + [0.0] * 5), 2)
    assert float(state.count) == 1
    assert float(state.sq_sum) == 0.0 and float(state.rows) == 0.0  # an estimate was taken, the sums reset
    assert np.isfinite(float(noise_scale.value(state))) and abs(float(noise_scale.value(state))) < 1e3


def test_no_estimate_before_enough_rows() -> None:
    state = noise_scale.init([jnp.zeros(D)])
    state = noise_scale.update(state, [jnp.ones((1, D))], jnp.ones(1), noise_scale.big_rows(1))
    assert float(state.count) == 0 and np.isnan(float(noise_scale.value(state)))
