"""The built-in models: stacked LSTM, GRU or SimpleRNN layers, optional dropout and a dense head, then Dense(horizon).

`lstm` with its defaults is the model every earlier lstm-bench version trained (same layer names, same
weight order), so runs of existing scenarios keep their ids and results.
"""

from __future__ import annotations

from typing import Any

from bench.errors import UserError
from bench.models.base import Model, ModelSpec, Shape, register_model

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "gelu", "elu", "selu", "swish")


class Recurrent(Model):
    layer: str  # the keras.layers class
    defaults = {"dropout": 0.0, "recurrent_dropout": 0.0, "head": [], "head_activation": "relu"}

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        params = super().check(params)
        for key in ("dropout", "recurrent_dropout"):
            if not 0.0 <= params.get(key, 0.0) < 1.0:
                raise UserError(f"model '{self.name}': '{key}' must be from 0 to below 1, got {params[key]}")
        if any(w < 1 for w in params.get("head", [])):
            raise UserError(
                f"model '{self.name}': 'head' lists the dense layers' widths, each >= 1; got {params['head']}"
            )
        if params.get("head_activation", "relu") not in ACTIVATIONS:
            raise UserError(
                f"model '{self.name}': head_activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {params['head_activation']!r}"
            )
        return params

    def build(self, shape: Shape, spec: ModelSpec, layer_options: dict[str, Any]) -> Any:
        import keras

        params = spec.params
        widths = params.get("units") or [shape.units] * shape.layers  # a per-layer list, else one width
        cls = getattr(keras.layers, self.layer)
        options = (
            layer_options if self.layer != "SimpleRNN" else {k: v for k, v in layer_options.items() if k != "use_cudnn"}
        )
        for key in ("dropout", "recurrent_dropout"):
            if params.get(key):
                options = {**options, key: params[key]}
        inputs = keras.Input(batch_shape=(shape.batch_size, shape.look_back, shape.n_features), name="window")
        x = inputs
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            x = cls(width, stateful=shape.stateful, return_sequences=not last, name=f"{self.name}_{i}", **options)(x)
        for i, width in enumerate(params.get("head", [])):
            x = keras.layers.Dense(width, activation=params.get("head_activation", "relu"), name=f"head_{i}")(x)
        outputs = keras.layers.Dense(shape.horizon, name="dense")(x)
        return keras.Model(inputs, outputs, name="lstm_bench")


@register_model
class LSTM(Recurrent):
    name = "lstm"
    description = "stacked LSTM layers (the default: LSTM(units) -> Dense(1))"
    layer = "LSTM"


@register_model
class GRU(Recurrent):
    name = "gru"
    description = "stacked GRU layers"
    layer = "GRU"


@register_model
class SimpleRNN(Recurrent):
    name = "simple_rnn"
    description = "stacked SimpleRNN (Elman) layers"
    layer = "SimpleRNN"
