"""The `search:` scenario block: the trials of a search over the optimizer's hyperparameters, the same for
every batch size (each batch size's best trial is then chosen on validation).

`method: quasi_random` draws `trials` points of a scrambled Halton sequence (`scipy.stats.qmc`, as MLCommons
AlgoPerf's tuning does), so the points cover the space evenly and the same seed gives the same points;
`method: grid` takes every combination of `trials` evenly spaced values per numeric dimension and every
choice of a categorical one. Log dimensions are spaced in log space. Trial i belongs to study i mod
`studies` (AlgoPerf's split of one search into independent studies), so a longer search with the same seed
keeps every earlier trial and its study.

Every dimension sets run fields (`Trial.fields`) that are values of the run's optimizer
(`bench.optimizers`), so on `scan` all trials of a batch size train together in one vmapped program.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from bench.errors import closest
from bench.optimizers import DECAYS


@dataclass(frozen=True)
class Space:
    """What a searchable dimension is: the run field it sets, the open or closed range its values must lie
    in, whether it is spaced in log space unless told, its choices when categorical, and the optimizer."""

    field: str
    low: float = -math.inf
    high: float = math.inf
    closed_low: bool = False
    log: bool = False
    choices: tuple[Any, ...] = ()
    optimizer: str | None = None


#: The searchable dimensions (the tuning playbook's Adam dimensions, a schedule, AdamW, SGD's momentum).
SPACES: dict[str, Space] = {
    "learning_rate": Space("learning_rate", 0.0, log=True),
    "one_minus_beta_1": Space("beta_1", 0.0, 1.0, log=True, optimizer="adam"),
    "beta_2": Space("beta_2", 0.0, 1.0, optimizer="adam"),
    # in samples: beta_2 = 0.5 ** (batch_size / half-life), the same half-life at every batch size
    "beta_2_half_life": Space("beta_2", 0.0, log=True, optimizer="adam"),
    "epsilon": Space("epsilon", 0.0, log=True, optimizer="adam"),
    "warmup": Space("warmup", 0.0, 1.0, closed_low=True),
    "decay": Space("decay", choices=DECAYS),
    "decay_end": Space("decay_end", 0.0, 1.0, closed_low=True),
    "weight_decay": Space("weight_decay", 0.0, closed_low=True, log=True),
    "momentum": Space("momentum", 0.0, 1.0, closed_low=True, optimizer="sgd"),
    "nesterov": Space("nesterov", choices=(False, True), optimizer="sgd"),
}
#: Points are rounded to this many significant digits (readable in runs.csv and the report).
DIGITS = 4


class Dimension(BaseModel):
    """One searched hyperparameter: `{low, high, log}` for a numeric one, `{choices: [...]}` for a
    categorical one (decay, nesterov)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float | None = None
    high: float | None = None
    log: StrictBool | None = None
    choices: list[Any] | None = None

    def is_log(self, name: str) -> bool:
        return SPACES[name].log if self.log is None else self.log

    def check(self, name: str) -> None:
        """Raise ValueError naming what is wrong with this dimension of `name`."""
        space = SPACES[name]
        if space.choices:
            if self.choices is None or self.low is not None or self.high is not None:
                raise ValueError(f"{name} is categorical: give choices, e.g. {{choices: {list(space.choices)}}}")
            wrong = [c for c in self.choices if c not in space.choices or type(c) is not type(space.choices[0])]
            if wrong or not self.choices:
                raise ValueError(f"{name} choices must be among {list(space.choices)}, got {self.choices}")
            return
        if self.choices is not None or self.low is None or self.high is None:
            raise ValueError(f"{name} is numeric: give low and high, e.g. {{low: ..., high: ...}}")
        if not self.low < self.high:
            raise ValueError(f"{name}: low must be below high, got low {self.low} and high {self.high}")
        if self.is_log(name) and self.low <= 0:
            raise ValueError(
                f"{name}: a log dimension needs low > 0, got {self.low}; give a positive low or log: false"
            )
        above = self.low >= space.low if space.closed_low else self.low > space.low
        if not above or self.high >= space.high:
            bracket = "[" if space.closed_low else "("
            raise ValueError(
                f"{name} must lie in {bracket}{space.low:g}, {space.high:g}), got {self.low} to {self.high}"
            )


class Search(BaseModel):
    """`search: {method, trials, seed, studies, space: {name: {low, high, log} | {choices}}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["quasi_random", "grid"] = "quasi_random"
    trials: StrictInt = Field(ge=1, le=1024)
    seed: StrictInt = Field(default=0, ge=0)
    studies: StrictInt = Field(default=3, ge=1)
    space: dict[str, Dimension]

    @model_validator(mode="after")
    def _names(self) -> Search:
        if not self.space:
            raise ValueError("space names no dimension; give e.g. learning_rate: {low: 0.0001, high: 0.1}")
        for name, dim in self.space.items():
            if name not in SPACES:
                match = closest(name, list(SPACES))
                hint = f"did you mean '{match}'?" if match else f"searchable: {', '.join(SPACES)}"
                raise ValueError(f"unknown dimension '{name}'; {hint}")
            dim.check(name)
        if {"beta_2", "beta_2_half_life"} <= set(self.space):
            raise ValueError("beta_2 and beta_2_half_life both set beta_2; search one of them")
        if "studies" in self.model_fields_set and self.studies > self.n_trials:
            raise ValueError(f"studies ({self.studies}) cannot exceed the trials ({self.n_trials}); lower studies")
        return self

    @property
    def n_trials(self) -> int:
        """How many trials the search has (a grid's: the product of its dimensions' levels)."""
        if self.method == "quasi_random":
            return self.trials
        return math.prod(len(d.choices) if d.choices is not None else self.trials for d in self.space.values())

    @property
    def n_studies(self) -> int:
        """The studies the trials are split into (the default 3, or fewer when there are fewer trials)."""
        return min(self.studies, self.n_trials)

    def fields(self) -> set[str]:
        """The run fields the searched dimensions set."""
        return {SPACES[name].field for name in self.space}

    def optimizers(self) -> dict[str, str]:
        """The searched dimensions that only one optimizer has, and that optimizer."""
        return {n: SPACES[n].optimizer for n in self.space if SPACES[n].optimizer}


@dataclass(frozen=True)
class Trial:
    """One point of a search: its index, its study, and its value of each searched dimension."""

    index: int
    study: int
    values: dict[str, Any]

    def fields(self, batch_size: int) -> dict[str, Any]:
        """The run fields this trial sets at `batch_size` (before the scenario's scaling rules)."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if name == "one_minus_beta_1":
                out["beta_1"] = 1.0 - value
            elif name == "beta_2_half_life":
                out["beta_2"] = 0.5 ** (batch_size / value)
            else:
                out[SPACES[name].field] = value
        return out

    @property
    def point(self) -> str:
        """The values as drawn, as JSON (the runs' `search_point`)."""
        return json.dumps(self.values, sort_keys=True)


def _scaled(dim: Dimension, name: str, u: np.ndarray) -> list[Any]:
    if dim.choices is not None:
        return [dim.choices[min(int(x * len(dim.choices)), len(dim.choices) - 1)] for x in u]
    if dim.is_log(name):
        values = np.exp(math.log(dim.low) + u * (math.log(dim.high) - math.log(dim.low)))
    else:
        values = dim.low + u * (dim.high - dim.low)
    return [float(f"{v:.{DIGITS}g}") for v in values]


def trials(search: Search) -> list[Trial]:
    """The search's trials, in the order drawn."""
    names = sorted(search.space)
    if search.method == "grid":
        levels = [
            search.space[n].choices if search.space[n].choices is not None
            else _scaled(search.space[n], n, np.linspace(0.0, 1.0, search.trials))
            for n in names
        ]  # fmt: skip
        combos = list(itertools.product(*levels))
    else:
        from scipy.stats import qmc

        unit = qmc.Halton(d=len(names), scramble=True, seed=search.seed).random(search.trials)
        columns = [_scaled(search.space[n], n, unit[:, j]) for j, n in enumerate(names)]
        combos = list(zip(*columns))
    return [Trial(i, i % search.n_studies, dict(zip(names, combo))) for i, combo in enumerate(combos)]


def points(search: Search) -> dict[str, list[Any]]:
    """The search's values by dimension, one per trial, in the order drawn."""
    drawn = trials(search)
    return {name: [t.values[name] for t in drawn] for name in sorted(search.space)}
