"""The built-in Keras backends (see `bench.backends.base.Backend`); importing this package registers them,
in this order (the reference first)."""

from __future__ import annotations

from bench.backends import tensorflow  # noqa: F401  (registration)
from bench.backends import jax  # noqa: F401
from bench.backends import torch  # noqa: F401
