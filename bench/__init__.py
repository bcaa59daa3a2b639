"""lstm-bench: what batch size does to a stateful LSTM's accuracy and speed."""

from __future__ import annotations

__version__ = "0.10.0"
