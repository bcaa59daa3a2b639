"""A `RunSpec` for tests: the scenario defaults (read off RunSpec's field metadata, as a scenario gets
them), look_back 3 on the airline series, and the test's overrides; and `run_scenario`, a scenario run in
this process (a test submits it to a warm backend worker, the `workers` fixture; it is the shipped suites' own,
`bench.testing.checks`)."""

from __future__ import annotations


from bench.datasets import DatasetSpec
from bench.runspec import RunSpec, spec_columns
from bench.specs import derive_seed
from bench.testing.checks import run_scenario  # noqa: F401  (re-exported for the tests)


def make_spec(**overrides: object) -> RunSpec:
    """A resolved spec; stateless specs get layout "none", and the seed follows base_seed and repeat unless given."""
    fields: dict[str, object] = {c.name: c.default for c in spec_columns() if c.scenario_type is not None}
    fields.update(scenario="test", dataset=DatasetSpec("airline"), look_back=3, repeat=0, base_seed=0)
    fields.update(target_metric=None, target_value=None)
    fields.update(overrides)
    if not fields["stateful"]:
        fields["layout"] = "none"
    fields.setdefault("seed", derive_seed(int(fields["base_seed"]), int(fields["repeat"])))  # type: ignore[call-overload]
    return RunSpec(**fields)  # type: ignore[arg-type]
