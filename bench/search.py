"""The `search:` scenario block: the points of a search over the optimizer's hyperparameters, the same for
every batch size (each batch size's best is then chosen on validation, as for a learning-rate list).

`method: quasi_random` draws a scrambled Halton sequence (`scipy.stats.qmc`, as MLCommons AlgoPerf's tuning
does), so the points cover the space evenly and the same seed gives the same points; `method: grid` spaces
`trials` points evenly. Log dimensions are drawn in log space. 0.7.0 searches the learning rate only; the
other dimensions of the tuning protocol (betas, epsilon, schedules, weight decay) are refused by name.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from bench.errors import closest

#: What 0.7.0 can search: each maps onto a run field that trains together on `scan`.
SEARCHABLE = ("learning_rate",)
#: Dimensions of the tuning protocol that are not searchable yet (said by name, not as a typo).
NOT_YET = ("one_minus_beta_1", "beta_2", "beta_2_half_life", "epsilon", "warmup", "decay", "weight_decay",
           "momentum", "nesterov")  # fmt: skip
#: Points are rounded to this many significant digits (readable in runs.csv and the report).
DIGITS = 4


class Dimension(BaseModel):
    """One searched hyperparameter: its bounds and whether it is searched in log space."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float
    high: float
    log: StrictBool = True

    @model_validator(mode="after")
    def _bounds(self) -> Dimension:
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low {self.low} and high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log dimension needs low > 0, got {self.low}; give a positive low or log: false")
        return self


class Search(BaseModel):
    """`search: {method, trials, seed, space: {learning_rate: {low, high, log}}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["quasi_random", "grid"] = "quasi_random"
    trials: StrictInt = Field(ge=1, le=1024)
    seed: StrictInt = Field(default=0, ge=0)
    space: dict[str, Dimension]

    @model_validator(mode="after")
    def _names(self) -> Search:
        if not self.space:
            raise ValueError("space names no dimension; give e.g. learning_rate: {low: 0.0001, high: 0.1}")
        for name in self.space:
            if name in NOT_YET:
                raise ValueError(
                    f"searching {name} is not supported yet (lstm-bench 0.7.0 searches {', '.join(SEARCHABLE)})"
                )
            if name not in SEARCHABLE:
                match = closest(name, [*SEARCHABLE, *NOT_YET])
                hint = f"did you mean '{match}'?" if match else f"searchable: {', '.join(SEARCHABLE)}"
                raise ValueError(f"unknown dimension '{name}'; {hint}")
        return self


def points(search: Search) -> dict[str, list[float]]:
    """The search's points, by dimension: `trials` values each, in the order drawn."""
    names = sorted(search.space)
    if search.method == "grid":
        unit = np.linspace(0.0, 1.0, search.trials)[:, None] * np.ones((1, len(names)))
    else:
        from scipy.stats import qmc

        unit = qmc.Halton(d=len(names), scramble=True, seed=search.seed).random(search.trials)
    out = {}
    for j, name in enumerate(names):
        dim = search.space[name]
        u = unit[:, j]
        if dim.log:
            values = np.exp(math.log(dim.low) + u * (math.log(dim.high) - math.log(dim.low)))
        else:
            values = dim.low + u * (dim.high - dim.low)
        out[name] = [float(f"{v:.{DIGITS}g}") for v in values]
    return out
