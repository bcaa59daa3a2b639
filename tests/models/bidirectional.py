"""A stateless bidirectional LSTM then a dense head (a factory for the model conformance suite)."""

import keras


def build(look_back, n_features, batch_size, stateful, horizon, units=4):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    x = keras.layers.Bidirectional(keras.layers.LSTM(units))(inputs)
    return keras.Model(inputs, keras.layers.Dense(horizon)(x))
