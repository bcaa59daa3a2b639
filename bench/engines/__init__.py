"""The built-in engines (see `bench.engines.base.Engine`); importing this package registers them.

- `fit`: Keras `Model.fit` on any backend (the reference).
- `scan`: a whole epoch as one compiled JAX loop over the same Keras layers (the fast path).
"""

from __future__ import annotations

from bench.engines import fit, scan  # noqa: F401  (registration)
