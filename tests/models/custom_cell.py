"""A recurrent layer with a cell of its own (a leaky tanh unit) in `keras.layers.RNN`, stateful when asked:
a factory for the model conformance suite. Its weights use Keras initializers, so they are drawn the same on
every backend."""

import keras


class LeakyCell(keras.layers.Layer):
    def __init__(self, units, leak=0.5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.leak = units, leak
        self.state_size = units
        self.kernel_initializer = keras.initializers.GlorotUniform()
        self.recurrent_initializer = keras.initializers.Orthogonal()
        self.bias_initializer = keras.initializers.Zeros()

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer, name="bias")

    def call(self, inputs, states):
        (h,) = states
        candidate = keras.ops.tanh(inputs @ self.kernel + h @ self.recurrent_kernel + self.bias)
        h = self.leak * h + (1 - self.leak) * candidate
        return h, [h]


def build(look_back, n_features, batch_size, stateful, horizon, units=4):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    x = keras.layers.RNN(LeakyCell(units), stateful=stateful, unroll=False)(inputs)
    return keras.Model(inputs, keras.layers.Dense(horizon)(x))
