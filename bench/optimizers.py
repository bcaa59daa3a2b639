"""A run's optimizer, every hyperparameter of it a value the run sets: Keras's Adam, SGD and RMSprop with
their betas, epsilon, momentum, weight decay and learning-rate schedule held in optimizer variables.

Keras keeps the learning rate in an optimizer variable but the other hyperparameters in Python floats, which
a compiled program fixes. Held in variables, they are values like the weights: `scan` sets them per run
(`Program.initial_values`), so the trials of a search with different betas or schedules train together in
one vmapped program, and `fit` trains the same optimizer with the same arithmetic. At Keras's values Adam's
update is bit for bit Keras's own, SGD's equal to float rounding. The schedule and weight decay are built
only for runs that use them (`features_of`): they cost a fifth of a small model's step.

The schedule multiplies the rate at optimizer step t (0-based) by a linear warm-up over `warmup_steps`
((t + 1) / warmup_steps, then 1) and, after it, a decay over the rest of `total_steps` to `decay_end`
times the rate: constant, cosine (end + (1 - end)(1 + cos(pi p)) / 2) or linear (end + (1 - end)(1 - p)),
p the fraction of the decay done.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

#: `decay` values, in the order of their codes in the optimizer variable `decay`.
DECAYS: tuple[str, ...] = ("constant", "cosine", "linear")
#: The values of a run's optimizer besides its learning rate, and what each is at its Keras default.
DEFAULTS: dict[str, float] = {
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-7,
    "weight_decay": 0.0,
    "momentum": 0.0,
    "nesterov": 0.0,
    "warmup_steps": 0.0,
    "total_steps": 1.0,
    "decay": 0.0,
    "decay_end": 0.0,
}
#: The values each optimizer reads (the others have no meaning for it), besides the optional parts below.
READS: dict[str, tuple[str, ...]] = {"adam": ("beta_1", "beta_2", "epsilon"), "sgd": ("momentum", "nesterov"),
                                     "rmsprop": ()}  # fmt: skip
_SCHEDULE = ("warmup_steps", "total_steps", "decay", "decay_end")


def features_of(spec: Any) -> tuple[bool, bool]:
    """Which optional parts run `spec`'s optimizer computes: (a schedule, weight decay). Each costs a few
    operations per step (a fifth of a small model's step on CPU), so a run without them compiles without
    them; runs that differ here train in separate programs."""
    return (spec.warmup > 0 or spec.decay != "constant", spec.weight_decay > 0)


def values_of(spec: Any, total_steps: int) -> dict[str, float]:
    """The optimizer values of run `spec` (a `RunSpec`) training `total_steps` updates."""
    return {
        "learning_rate": float(spec.learning_rate),
        "beta_1": float(spec.beta_1),
        "beta_2": float(spec.beta_2),
        "epsilon": float(spec.epsilon),
        "weight_decay": float(spec.weight_decay),
        "momentum": float(spec.momentum),
        "nesterov": float(spec.nesterov),
        "warmup_steps": float(spec.warmup) * total_steps,
        "total_steps": float(total_steps),
        "decay": float(DECAYS.index(spec.decay)),
        "decay_end": float(spec.decay_end),
    }


def schedule_factor(step: float, warmup_steps: float, total_steps: float, decay: int, decay_end: float) -> float:
    """The schedule's factor on the rate at 0-based `step`, in plain Python (what the optimizer computes)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    p = min(1.0, max(0.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1.0)))
    shape = [
        1.0,
        decay_end + (1 - decay_end) * 0.5 * (1 + math.cos(math.pi * p)),
        decay_end + (1 - decay_end) * (1 - p),
    ]
    return warm * shape[decay]


class _RuntimeValues:
    """Mixin: the optimizer's hyperparameters as scalar variables, and the rate's schedule read from them."""

    def _keep(self, values: Mapping[str, float], schedule: bool, weight_decay: bool) -> None:
        self._initial = {**DEFAULTS, **{k: v for k, v in values.items() if k != "learning_rate"}}
        self._schedule = schedule
        self._values = (*READS[self.kind], *(("weight_decay",) if weight_decay else ()),
                        *(_SCHEDULE if schedule else ()))  # fmt: skip

    def build(self, variables: Any) -> None:
        if self.built:
            return
        super().build(variables)
        from keras import initializers

        for name in self._values:
            var = self.add_variable((), initializers.Constant(self._initial[name]), "float32", name=name)
            setattr(self, name, var)

    def _get_current_learning_rate(self) -> Any:
        rate = super()._get_current_learning_rate()
        if not self.built or not self._schedule:
            return rate
        from keras import ops

        t = ops.cast(self._iterations, "float32")
        w, total, end = self.warmup_steps, self.total_steps, self.decay_end
        warm = ops.where(w > 0, ops.minimum(1.0, (t + 1.0) / ops.maximum(w, 1e-12)), 1.0)
        p = ops.clip((t - w) / ops.maximum(total - w, 1.0), 0.0, 1.0)
        cosine = end + (1.0 - end) * 0.5 * (1.0 + ops.cos(math.pi * p))
        linear = end + (1.0 - end) * (1.0 - p)
        shape = ops.where(self.decay == 1.0, cosine, ops.where(self.decay == 2.0, linear, 1.0))
        return rate * (warm * shape)


def make_optimizer(
    name: str, values: Mapping[str, float] | None = None, schedule: bool = True, weight_decay: bool = True
) -> Any:
    """The optimizer `name` ("adam", "sgd", "rmsprop") starting at `values` (`values_of`; missing ones at
    their defaults, the learning rate at 0.001), with a schedule and weight decay when asked
    (`features_of`). Built, its values are variables of the same names."""
    values = dict(values or {})
    if name not in READS:
        raise ValueError(f"unknown optimizer {name!r}")
    opt = _classes()[name](learning_rate=values.get("learning_rate", 0.001), weight_decay=0.0 if weight_decay else None)
    opt._keep(values, schedule, weight_decay)
    return opt


@functools.cache
def _classes() -> dict[str, type]:
    """The optimizer classes by name (made on first use: they subclass Keras's, and importing it is slow)."""
    import keras
    from keras import ops

    class RuntimeAdam(_RuntimeValues, keras.optimizers.Adam):
        """Keras's Adam update (without amsgrad). Keras subtracts its Python-float betas from 1 in double
        precision; holding 1 - beta as values of their own keeps the update bit for bit Keras's."""

        kind = "adam"

        def build(self, variables: Any) -> None:
            if self.built:
                return
            super().build(variables)
            from keras import initializers

            for beta in ("beta_1", "beta_2"):
                rest = initializers.Constant(1.0 - self._initial[beta])
                setattr(self, f"one_minus_{beta}", self.add_variable((), rest, "float32", name=f"one_minus_{beta}"))

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            lr = ops.cast(learning_rate, variable.dtype)
            g = ops.cast(gradient, variable.dtype)
            local_step = ops.cast(self.iterations + 1, variable.dtype)
            beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
            beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
            m = self._momentums[self._get_variable_index(variable)]
            v = self._velocities[self._get_variable_index(variable)]
            alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            self.assign_add(m, ops.multiply(ops.subtract(g, m), self.one_minus_beta_1))
            self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), self.one_minus_beta_2))
            self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))

    class RuntimeRMSprop(_RuntimeValues, keras.optimizers.RMSprop):
        kind = "rmsprop"

    class RuntimeSGD(_RuntimeValues, keras.optimizers.SGD):
        """Keras's SGD update with momentum and Nesterov as values (Keras branches on them in Python)."""

        kind = "sgd"

        def build(self, variables: Any) -> None:
            if self.built:
                return
            super().build(variables)
            self.momentums = [self.add_variable_from_reference(v, name="momentum") for v in variables]

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            lr = ops.cast(learning_rate, variable.dtype)
            g = ops.cast(gradient, variable.dtype)
            mu = ops.cast(self.momentum, variable.dtype)
            m = self.momentums[self._get_variable_index(variable)]
            step = ops.subtract(ops.multiply(m, mu), ops.multiply(g, lr))
            self.assign(m, step)
            # with momentum 0 and no Nesterov this is variable - g * lr, as Keras computes it
            nesterov = ops.cast(self.nesterov, variable.dtype)
            ahead = ops.subtract(ops.multiply(step, mu), ops.multiply(g, lr))
            self.assign_add(variable, ops.add(ops.multiply(nesterov, ahead), ops.multiply(1.0 - nesterov, step)))

    return {"adam": RuntimeAdam, "sgd": RuntimeSGD, "rmsprop": RuntimeRMSprop}
