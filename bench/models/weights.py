"""Initial weights drawn with NumPy from a run's seed, following each weight's Keras initializer, so runs that
differ only in backend, engine or device start from the same point (Keras draws with each backend's own
generator: the same seed gives other numbers on TensorFlow than on JAX).

A weight named `kernel` is drawn with its layer's `kernel_initializer`, `bias` with its `bias_initializer`, and
so on (Keras's own layers name their initializers after their weights, `ALIASES` lists the exceptions; so do
most custom layers). An LSTM cell's `unit_forget_bias` sets its forget-gate bias to one, as Keras does. A weight
whose initializer is not one of Keras's built-ins keeps the value the backend drew, and `draw` says which.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


#: Weights whose initializer attribute is not named `<weight>_initializer` in Keras's layers.
ALIASES = {"recurrent_kernel": "recurrent_initializer", "depthwise_kernel": "depthwise_initializer",
           "pointwise_kernel": "pointwise_initializer"}  # fmt: skip


def draw(model: Any, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """Initial values for `model.weights` (in that order) from `seed`, and the weights that kept the backend's
    own draw (their paths and initializers)."""
    owners = {id(v): layer for layer in model._flatten_layers() for v in _own_variables(layer)}
    rng = np.random.default_rng([seed, 0x1D5E])
    values, kept = [], []
    for v in model.weights:
        shape = tuple(int(d) for d in v.shape)
        owner = owners.get(id(v))
        attr = ALIASES.get(v.name, f"{v.name}_initializer")
        initializer = getattr(owner, attr, None) if owner is not None else None
        value = _sample(initializer, shape, rng) if initializer is not None else None
        if value is None:
            kept.append(f"{v.path} ({type(initializer).__name__ if initializer is not None else 'no initializer'})")
            value = np.asarray(v.numpy() if hasattr(v, "numpy") else v.value)
        elif v.name == "bias" and getattr(owner, "unit_forget_bias", False):
            units = int(owner.units)
            value[..., units : 2 * units] = 1.0  # the forget gate's, as LSTMCell.build sets it
        values.append(np.asarray(value, dtype=v.dtype))
    return values, kept


def note(kept: list[str]) -> str:
    """The run's note when some weights kept the backend's draw (empty when none did)."""
    if not kept:
        return ""
    return (
        f"initial weights: {len(kept)} drawn by the backend, not from the seed alone (their initializer is not a "
        f"Keras built-in), so runs on other backends start elsewhere for them: {', '.join(kept[:4])}"
        + (" ..." if len(kept) > 4 else "")
    )


def _own_variables(layer: Any) -> list[Any]:
    return [*getattr(layer, "_trainable_variables", []), *getattr(layer, "_non_trainable_variables", [])]


def _sample(initializer: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray | None:
    """A draw of `initializer` (a Keras initializer object) for `shape`, or None for one this cannot follow."""
    from keras import initializers as ki

    kind = type(initializer)
    if kind.__module__.split(".")[0] != "keras":  # a subclass may draw differently
        return None
    if isinstance(initializer, ki.Zeros):
        return np.zeros(shape)
    if isinstance(initializer, ki.Ones):
        return np.ones(shape)
    if isinstance(initializer, ki.Constant):
        return np.full(shape, float(np.asarray(initializer.value)))
    if isinstance(initializer, ki.Identity):
        if len(shape) != 2:
            return None
        return initializer.gain * np.eye(*shape)
    if isinstance(initializer, ki.Orthogonal):
        return _orthogonal(shape, initializer.gain, rng)
    if isinstance(initializer, ki.VarianceScaling):  # Glorot, He, LeCun are these with fixed settings
        return _variance_scaling(shape, initializer.scale, initializer.mode, initializer.distribution, rng)
    if isinstance(initializer, ki.RandomUniform):
        return rng.uniform(initializer.minval, initializer.maxval, shape)
    if isinstance(initializer, ki.TruncatedNormal):
        return initializer.mean + initializer.stddev * _truncated(shape, rng)
    if isinstance(initializer, ki.RandomNormal):
        return rng.normal(initializer.mean, initializer.stddev, shape)
    return None


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Keras's `compute_fans`: (fan_in, fan_out)."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _variance_scaling(
    shape: tuple[int, ...], scale: float, mode: str, distribution: str, rng: np.random.Generator
) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2.0)
    scale = scale / max(1.0, n)
    if distribution == "truncated_normal":
        return math.sqrt(scale) / 0.87962566103423978 * _truncated(shape, rng)  # Keras's constant
    if distribution == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(scale), shape)
    limit = math.sqrt(3.0 * scale)
    return rng.uniform(-limit, limit, shape)


def _truncated(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard normal values redrawn until within two standard deviations (as Keras truncates)."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) > 2.0
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2.0
    return x


def _orthogonal(shape: tuple[int, ...], gain: float, rng: np.random.Generator) -> np.ndarray | None:
    if len(shape) < 2:
        return None
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)
