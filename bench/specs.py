"""Scenario -> the run matrix: frozen, fully resolved `RunSpec`s with content-hashed ids."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection
from typing import Any

import numpy as np

from bench import registry
from bench.datasets import load_series, resolve_dataset
from bench.datasets.checks import DataCheck, check_series
from bench.errors import UserError
from bench.models import resolve_models
from bench.runspec import RunSpec, spec_columns
from bench.scenario import SWEEP_KEYS, ScenarioFile
from bench.search import Trial, trials
from bench.windows import check_windows, prepare_series


def derive_seed(base_seed: int, repeat: int) -> int:
    """A well-mixed 31-bit seed for repeat `repeat` (repeat 0 of seed s is not simply s+0)."""
    return int(np.random.SeedSequence([base_seed, repeat]).generate_state(1)[0] & 0x7FFFFFFF)


def effective_learning_rate(base: float, batch_size: int, rule: str, base_batch_size: int) -> float:
    """The rate batch size `batch_size` trains with: `base` at `base_batch_size`, scaled by `rule`
    (linear: Goyal et al. 2017 for SGD; sqrt and adam_sqrt: Malladi et al. 2022 for Adam)."""
    ratio = batch_size / base_batch_size
    return float(base) * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio), "adam_sqrt": math.sqrt(ratio)}[rule]


def effective_adam(
    beta_1: float, beta_2: float, epsilon: float, batch_size: int, lr_rule: str, beta_2_rule: str, base_batch_size: int
) -> tuple[float, float, float]:
    """Adam's (beta_1, beta_2, epsilon) at `batch_size`, from their values at `base_batch_size`.

    `lr_rule` adam_sqrt is Malladi et al. 2022's square-root scaling rule for Adam: with the batch size
    multiplied by k, the rate by sqrt(k) (`effective_learning_rate`), 1 - beta_1 and 1 - beta_2 by k, epsilon
    divided by sqrt(k). `beta_2_rule` half_life keeps beta_2's half-life fixed in samples (Marek et al. 2025):
    beta_2 ** (k); it applies after adam_sqrt's beta_2 would, so the two are not combined."""
    k = batch_size / base_batch_size
    if lr_rule == "adam_sqrt":
        beta_1, beta_2, epsilon = 1 - k * (1 - beta_1), 1 - k * (1 - beta_2), epsilon / math.sqrt(k)
    if beta_2_rule == "half_life":
        beta_2 = beta_2**k
    for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
        if not 0 < value < 1:
            raise UserError(
                f"lr_scaling adam_sqrt takes {name} to {value:.4g} at batch size {batch_size} (1 - {name} times "
                f"{k:g}); use a {name} closer to 1, a larger base_batch_size, or smaller batch sizes"
            )
    return float(beta_1), float(beta_2), float(epsilon)


def expand(sf: ScenarioFile, gpu_backends: Collection[str] = frozenset()) -> list[RunSpec]:
    """The scenario's runs (`expand_checked` without the data checks)."""
    return expand_checked(sf, gpu_backends)[0]


def expand_checked(
    sf: ScenarioFile, gpu_backends: Collection[str] = frozenset()
) -> tuple[list[RunSpec], list[DataCheck]]:
    """The Cartesian product of the scenario's sweep axes times its repeats, deduplicated.

    `device: auto` resolves to gpu for the backends in `gpu_backends` (those that can use a GPU
    here), else cpu, so a run id names the device the run really uses.

    Stateless runs ignore the layout, so they appear once, not once per layout. An engine runs only
    on its backends (`Engine.runs_on`), so in a sweep over backends its other combinations are left
    out. The series is loaded and every look_back and batch size checked against it here, so a
    series too short is reported before anything runs; what is doubtful about a series comes back as
    its data checks.
    """
    sc = sf.scenario
    base_dir = sf.path.parent
    where = f"{sf.path}:{sf.line_of('dataset')}" if sf.line_of("dataset") else str(sf.path)
    try:
        datasets = [resolve_dataset(ref, base_dir) for ref in sc.axis("dataset")]
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    try:
        models = resolve_models(
            sc.model, sc.units, sc.layers, bool({"units", "layers"} & sc.model_fields_set), base_dir
        )
    except UserError as exc:
        raise UserError(
            f"{sf.path}:{sf.line_of('model')}: {exc}" if sf.line_of("model") else f"{sf.path}: {exc}"
        ) from None
    # keys that are one run field each; the sweep keys among them vary, the rest are fixed (the model
    # sets units and layers)
    fixed = {c.name: getattr(sc, c.name) for c in spec_columns() if c.scenario_type is not None and not c.sweep}
    axes = [k for k in SWEEP_KEYS if k not in ("dataset", "model", "units")]
    specs: dict[str, RunSpec] = {}
    checks: list[DataCheck] = []
    drawn: list[Trial | None] = list(trials(sc.search)) if sc.search else [None]
    for ds in datasets:
        try:
            series = load_series(ds)
            prep = prepare_series(series, sc)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        checks += check_series(series, prep, sc.axis("look_back"), sc.axis("batch_size"), sc.difference)
        for (model, units, layers), combo in itertools.product(models, itertools.product(*(sc.axis(k) for k in axes))):
            run = {**fixed, **dict(zip(axes, combo)), "model": model, "units": units, "layers": layers}
            engine = registry.engine(run["engine"])
            if run["backend"] not in engine.runs_on():
                continue
            try:
                check_windows(prep, run["look_back"], run["batch_size"], run["stateful"], run["horizon"])
            except UserError as exc:
                raise UserError(f"{where}: dataset '{ds.label}': {exc}") from None
            for trial in drawn:
                for spec in _runs(sc, sf, engine, gpu_backends, ds, run, trial):
                    specs.setdefault(spec.run_id, spec)
    if not specs:  # only possible through command-line overrides, which skip the parser's check
        raise UserError(f"{sf.path}: no runnable combination: no engine in the scenario runs on its backends")
    return list(specs.values()), checks


def _runs(sc: Any, sf: ScenarioFile, engine: Any, gpu_backends: Collection[str], ds: Any, combo: dict[str, Any],
          trial: Trial | None) -> list[RunSpec]:  # fmt: skip
    """The repeats of one combination of sweep values (and one trial of the search), fully resolved."""
    run = {**combo, **(trial.fields(combo["batch_size"]) if trial else {})}
    if trial is not None:
        run.update(trial=trial.index, study=trial.study, search_point=trial.point)
    try:
        adam = effective_adam(run["beta_1"], run["beta_2"], run["epsilon"], run["batch_size"],
                              sc.lr_scaling, sc.beta_2_scaling, sc.base_batch_size)  # fmt: skip
    except UserError as exc:
        raise UserError(f"{sf.path}: {exc}") from None
    stateful = run["stateful"]
    run.update(
        layout=run["layout"] if stateful else "none",
        shuffle=run["shuffle"] and not stateful,
        learning_rate=effective_learning_rate(
            run["learning_rate"], run["batch_size"], sc.lr_scaling, sc.base_batch_size
        ),
        base_learning_rate=float(run["learning_rate"]),
        **dict(zip(("beta_1", "beta_2", "epsilon"), adam)),
        epochs=None if run["steps"] is not None else run["epochs"],
        steps_per_execution=engine.steps_per_execution(run["backend"], run["steps_per_execution"]),
        device=("gpu" if run["backend"] in gpu_backends else "cpu") if run["device"] == "auto" else run["device"],
        eval_every=(run["eval_every"] or 1) if sc.target is not None else run["eval_every"],
        target_metric=sc.target.metric if sc.target else None,
        target_value=sc.target.value if sc.target else None,
    )
    return [
        RunSpec(scenario=sc.name, dataset=ds, repeat=r, base_seed=sc.seed, seed=derive_seed(sc.seed, r), **run)
        for r in range(sc.repeats)
    ]
