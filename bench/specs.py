"""Scenario -> the run matrix: frozen, fully resolved `RunSpec`s with content-hashed ids."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.datasets import DatasetSpec, load_series, resolve_dataset
from bench.errors import UserError
from bench.scenario import ScenarioFile
from bench.windows import check_windows, prepare

# Bump when a change makes results of the same spec incomparable (a new evaluation protocol, say):
# old runs then no longer count as done.
PROTOCOL_VERSION = 2


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run depends on. Its `run_id` is a hash of these fields except `scenario`."""

    scenario: str
    dataset: DatasetSpec
    test_fraction: float
    difference: bool
    scale: str
    look_back: int
    batch_size: int
    stateful: bool
    layout: str  # streams | sequential for stateful runs, "none" for stateless
    units: int
    layers: int
    epochs: int
    learning_rate: float
    optimizer: str
    shuffle: bool
    steps_per_execution: int | str
    repeat: int
    base_seed: int
    seed: int  # derived from base_seed and repeat
    backend: str
    engine: str
    device: str
    eval_every: int
    target_metric: str | None
    target_value: float | None

    @property
    def run_id(self) -> str:
        payload = {k: v for k, v in self.as_flat().items() if k not in ("scenario", "dataset_source")}
        payload["protocol"] = PROTOCOL_VERSION
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def config_key(self) -> tuple[Any, ...]:
        """The configuration without repeat and seed: runs sharing it are repeats of one another."""
        flat = self.as_flat()
        for k in ("repeat", "seed", "scenario", "dataset_source"):
            flat.pop(k)
        return tuple(sorted(flat.items()))

    def as_flat(self) -> dict[str, Any]:
        """Plain fields for storage; the dataset becomes its name, label and parameters."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        ds: DatasetSpec = d.pop("dataset")
        d["dataset"] = ds.label
        d["dataset_name"] = ds.name
        d["dataset_params"] = ds.identity_json
        d["dataset_source"] = ds.source
        d["steps_per_execution"] = str(self.steps_per_execution)
        return d


def derive_seed(base_seed: int, repeat: int) -> int:
    """A well-mixed 31-bit seed for repeat `repeat` (repeat 0 of seed s is not simply s+0)."""
    return int(np.random.SeedSequence([base_seed, repeat]).generate_state(1)[0] & 0x7FFFFFFF)


def expand(sf: ScenarioFile, gpu_backends: Collection[str] = frozenset()) -> list[RunSpec]:
    """The Cartesian product of the scenario's sweep axes times its repeats, deduplicated.

    `device: auto` resolves to gpu for the backends in `gpu_backends` (those that can use a GPU
    here), else cpu, so a run id names the device the run really uses.

    Stateless runs ignore the layout, so they appear once, not once per layout. `engine: scan`
    runs only on JAX, so in a sweep over backends its other combinations are left out. The series
    is loaded and every look_back and batch size checked against it here, so a series too short
    is reported before anything runs.
    """
    sc = sf.scenario
    base_dir = sf.path.parent
    where = f"{sf.path}:{sf.line_of('dataset')}" if sf.line_of("dataset") else str(sf.path)
    try:
        datasets = [resolve_dataset(ref, base_dir) for ref in sc.axis("dataset")]
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    specs: dict[str, RunSpec] = {}
    axes = [sc.axis(k) for k in ("look_back", "batch_size", "stateful", "layout", "units", "epochs", "learning_rate", "backend", "device", "engine")]
    for ds in datasets:
        try:
            values = load_series(ds).values
            if not np.all(np.isfinite(values)):
                raise UserError(f"dataset '{ds.label}' has non-finite values (an unstable AR process?); change its parameters")
            prep = prepare(values, sc.test_fraction, sc.difference, sc.scale)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        for lb, bs, stateful, layout, units, epochs, lr, backend, device, engine in itertools.product(*axes):
            if engine == "scan" and backend != "jax":
                continue
            try:
                check_windows(prep, lb, bs, stateful)
            except UserError as exc:
                raise UserError(f"{where}: dataset '{ds.label}': {exc}") from None
            for repeat in range(sc.repeats):
                spec = RunSpec(
                    scenario=sc.name,
                    dataset=ds,
                    test_fraction=sc.test_fraction,
                    difference=sc.difference,
                    scale=sc.scale,
                    look_back=lb,
                    batch_size=bs,
                    stateful=stateful,
                    layout=layout if stateful else "none",
                    units=units,
                    layers=sc.layers,
                    epochs=epochs,
                    learning_rate=float(lr),
                    optimizer=sc.optimizer,
                    shuffle=sc.shuffle and not stateful,
                    # Keras's torch trainer and the scan engine take one batch per call
                    steps_per_execution=sc.steps_per_execution if engine == "fit" and backend != "torch" else 1,
                    repeat=repeat,
                    base_seed=sc.seed,
                    seed=derive_seed(sc.seed, repeat),
                    backend=backend,
                    engine=engine,
                    device=("gpu" if backend in gpu_backends else "cpu") if device == "auto" else device,
                    eval_every=1 if sc.target is not None else sc.eval_every,
                    target_metric=sc.target.metric if sc.target else None,
                    target_value=sc.target.value if sc.target else None,
                )
                specs.setdefault(spec.run_id, spec)
    if not specs:  # only possible through command-line overrides, which skip the parser's check
        raise UserError(f"{sf.path}: no runnable combination: engine: scan runs on backend: jax only")
    return list(specs.values())
