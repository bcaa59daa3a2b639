"""An example model factory for lstm-bench: GRU -> LSTM -> a dense head -> one forecast per lead time.

lstm-bench calls `build(look_back, n_features, batch_size, stateful, horizon, **params)` and compiles
the model it returns with the scenario's optimizer, learning rate and loss.
"""

import keras


def build(look_back, n_features, batch_size, stateful, horizon, gru_units=8, lstm_units=4, head=16):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    x = keras.layers.GRU(gru_units, stateful=stateful, return_sequences=True)(inputs)
    x = keras.layers.LSTM(lstm_units, stateful=stateful)(x)
    x = keras.layers.Dense(head, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(horizon)(x))
