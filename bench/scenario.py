"""Parse and validate a YAML scenario into a typed `Scenario`.

Every mistake becomes a `UserError` naming the file, the key, the YAML line where there is
one, and how to fix it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, create_model, field_validator

from bench import registry
from bench.errors import UserError, closest
from bench.search import Search
from bench.runspec import spec_columns

#: Keys whose value may be a list; the runs are the Cartesian product of all lists.
SWEEP_KEYS: tuple[str, ...] = tuple(c.name for c in spec_columns() if c.sweep)


class Target(BaseModel):
    """Time-to-target: evaluate every epoch and record when `metric` first reaches `value`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: Literal["test_rmse", "test_mae", "train_rmse", "val_rmse", "val_mae"] = "test_rmse"
    value: float = Field(gt=0)


class ScenarioKeys(BaseModel):
    """The scenario keys that are not a run field of the same name (those come from `RunSpec`'s columns)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    dataset: str | dict[str, Any] | list[str | dict[str, Any]]
    model: str | dict[str, Any] | list[str | dict[str, Any]] = "lstm"
    repeats: StrictInt = Field(default=1, ge=1, le=10_000)
    seed: StrictInt = Field(default=0, ge=0)
    target: Target | None = None
    # a search over the optimizer per batch size, instead of a learning_rate list (`bench.search`)
    search: Search | None = None

    @field_validator("name")
    @classmethod
    def _not_dots(cls, v: str) -> str:
        if set(v) == {"."}:  # it names the results folder
            raise ValueError(f"must not be only dots, got {v!r}")
        return v

    @field_validator("*")
    @classmethod
    def _non_empty(cls, v: Any, info: Any) -> Any:
        if info.field_name in SWEEP_KEYS and isinstance(v, list) and not v:
            raise ValueError("an empty list sweeps over nothing; give one value or a non-empty list")
        return v

    def axis(self, key: str) -> list[Any]:
        """The values of a sweep key as a list (a scalar is a one-value axis)."""
        v = getattr(self, key)
        return list(v) if isinstance(v, list) else [v]


def _run_field_keys() -> dict[str, Any]:
    """A scenario key per run field that declares one: a sweep key takes a value or a list of values."""
    keys: dict[str, Any] = {}
    for c in spec_columns():
        if c.scenario_type is not None:
            t = c.scenario_type
            keys[c.name] = (Union[t, list[t]] if c.sweep else t, c.default)
    return keys


#: One YAML scenario; list-valued sweep keys make a sweep.
Scenario = create_model("Scenario", __base__=ScenarioKeys, __module__=__name__, **_run_field_keys())


class ScenarioFile(BaseModel):
    """A scenario together with where it came from (relative CSV paths resolve against it)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    path: Path
    scenario: Scenario
    lines: dict[str, int] = Field(default_factory=dict)

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)


def _key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """Map dotted key paths ('target.value', 'dataset.0.csv') to 1-based YAML line numbers."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}{k.value}"
            out[key] = k.start_mark.line + 1
            out.update(_key_lines(v, key + "."))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            key = f"{prefix}{i}"
            out[key] = v.start_mark.line + 1
            out.update(_key_lines(v, key + "."))
    return out


def _mapping_paths(node: yaml.Node, prefix: str = "") -> dict[int, str]:
    """The dotted key path ('', 'dataset', 'workloads.0') of each mapping node under `node`, by the node's id."""
    out: dict[int, str] = {}
    if isinstance(node, yaml.MappingNode):
        out[id(node)] = prefix
        items = [(f"{prefix}.{k.value}" if prefix else str(k.value), v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        items = [(f"{prefix}.{i}" if prefix else str(i), v) for i, v in enumerate(node.value)]
    else:
        items = []
    for key, value in items:
        out.update(_mapping_paths(value, key))
    return out


class _DuplicateKey(yaml.YAMLError):
    """A mapping gives one key twice (PyYAML would silently keep the last value)."""

    def __init__(self, key: str, lines: tuple[int, int], hint: str) -> None:
        super().__init__(key)
        self.key, self.lines, self.hint = key, lines, hint


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, at any depth; keys a merge (`<<: *base`)
    brings in may still be given again, as merging means. `sweeps` (a regular expression) matches the dotted
    paths of the mappings that hold scenario keys, where a list of values is the fix for a sweep key given twice."""

    sweeps = ""

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths = _mapping_paths(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            self._check_unique(node)
        return super().construct_mapping(node, deep=deep)

    def _check_unique(self, node: yaml.MappingNode) -> None:
        prefix = self._paths.get(id(node), "")
        seen: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, (key_node, value_node))
            except TypeError:  # a list or mapping as a key: SafeLoader's own error names it
                continue
            if first[0] is key_node:
                continue
            hint = ""
            if key in SWEEP_KEYS and re.fullmatch(self.sweeps, prefix):
                values = [self.construct_object(v, deep=True) for v in (first[1], value_node)]
                merged = [x for v in values for x in (v if isinstance(v, list) else [v])]
                merged = [x for i, x in enumerate(merged) if x not in merged[:i]]
                shown = yaml.safe_dump(merged, default_flow_style=True, sort_keys=False, width=float("inf")).strip()
                hint = f" (a list sweeps: {key}: {shown})"
            name = f"{prefix}.{key}" if prefix else str(key)
            raise _DuplicateKey(name, (first[0].start_mark.line + 1, key_node.start_mark.line + 1), hint)


def load_yaml(text: str, path: Path, sweeps: str = "") -> tuple[Any, yaml.Node | None]:
    """The data and the node tree (for line numbers) of YAML `text` read from `path`, or a one-line `UserError`
    for invalid YAML or a key given twice in a mapping. `sweeps`: as `_UniqueKeyLoader.sweeps`."""
    try:
        loader = _UniqueKeyLoader(text)  # its reader rejects control characters at once
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML ({getattr(exc, 'reason', exc)}); is it a scenario file?") from None
    loader.sweeps = sweeps
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    except _DuplicateKey as exc:
        first, second = exc.lines
        where = f"lines {first} and {second}" if first != second else f"on line {second}"
        raise UserError(f"{path}:{second}: key '{exc.key}' given twice ({where}); keep one{exc.hint}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: invalid YAML ({problem}); check indentation and quoting") from None
    finally:
        loader.dispose()


def _where(path: Path, lines: dict[str, int], loc: tuple[Any, ...]) -> str:
    """'file:line: key 'a.b'' for a pydantic error location (union member tags are skipped)."""
    parts: list[str] = []
    for p in map(str, loc):
        if ".".join([*parts, p]) in lines or (not parts and p in Scenario.model_fields):
            parts.append(p)
    key = ".".join(parts) or ".".join(map(str, loc))
    line = lines.get(key)
    return f"{path}:{line}: key '{key}'" if line else f"{path}: key '{key}'"


def _suggest(word: str, choices: list[str]) -> str:
    match = closest(word, choices)
    return f"; did you mean '{match}'?" if match else f"; valid keys: {', '.join(sorted(choices))}"


def parse_scenario_text(text: str, path: Path) -> ScenarioFile:
    """Parse scenario YAML `text` (read from `path`) or raise a one-line `UserError`."""
    data, node = load_yaml(text, path)
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: a scenario must be a YAML mapping of keys (name, dataset, ...), got {type(data).__name__}"
        )
    return parse_scenario_data(data, path, _key_lines(node) if node is not None else {})


def parse_scenario_data(data: dict[str, Any], path: Path, lines: dict[str, int]) -> ScenarioFile:
    """Validate scenario keys `data` read from `path` (`lines`: each key's line there, for the errors) or
    raise a one-line `UserError`."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise UserError(_explain(exc, path, lines, data)) from None
    stateful = scenario.axis("stateful")
    if scenario.shuffle and all(stateful):
        raise UserError(
            f"{_where(path, lines, ('shuffle',))}: shuffle applies to stateless runs only "
            "(shuffling breaks the state carried between batches); remove it or add stateful: false"
        )
    for name in scenario.axis("engine"):
        runs_on = registry.engine(name).runs_on()
        if not set(runs_on) & set(scenario.axis("backend")):
            raise UserError(
                f"{_where(path, lines, ('engine',))}: engine: {name} runs on backend {', '.join(runs_on)} only; "
                f"add backend: {runs_on[0]}"
            )
    searched = scenario.search.fields() & scenario.model_fields_set if scenario.search else set()
    if searched:
        key = sorted(searched)[0]
        raise UserError(f"{_where(path, lines, (key,))}: {key} is both given and searched (search.space); remove one")
    for dim, optimizer in (scenario.search.optimizers() if scenario.search else {}).items():
        if scenario.optimizer != optimizer:
            raise UserError(
                f"{_where(path, lines, ('search',))}: search.space.{dim} is a hyperparameter of {optimizer}, but the "
                f"optimizer is {scenario.optimizer}; use optimizer: {optimizer} or search another dimension"
            )
    if scenario.search and "beta_2_half_life" in scenario.search.space and scenario.beta_2_scaling != "none":
        raise UserError(
            f"{_where(path, lines, ('beta_2_scaling',))}: a searched beta_2_half_life already keeps the half-life "
            "fixed in samples; remove beta_2_scaling"
        )
    sgd_only = sorted({"momentum", "nesterov"} & scenario.model_fields_set)
    if sgd_only and scenario.optimizer != "sgd":
        raise UserError(
            f"{_where(path, lines, ('optimizer',))}: {', '.join(sgd_only)} set SGD's hyperparameters, but the "
            f"optimizer is {scenario.optimizer}; use optimizer: sgd or remove them"
        )
    adam_only = sorted({"beta_1", "beta_2", "epsilon"} & scenario.model_fields_set)
    adam_only += ["beta_2_scaling"] if scenario.beta_2_scaling != "none" else []
    adam_only += ["lr_scaling: adam_sqrt"] if scenario.lr_scaling == "adam_sqrt" else []
    if adam_only and scenario.optimizer != "adam":
        raise UserError(
            f"{_where(path, lines, ('optimizer',))}: {', '.join(adam_only)} set Adam's hyperparameters, but the "
            f"optimizer is {scenario.optimizer}; use optimizer: adam or remove them"
        )
    if "steps" in scenario.model_fields_set and "epochs" in scenario.model_fields_set:
        raise UserError(
            f"{_where(path, lines, ('steps',))}: a scenario gives a budget in epochs or in steps, not both; "
            "remove one of them"
        )
    if scenario.target is not None and scenario.target.metric.startswith("val_") and not scenario.validation_fraction:
        raise UserError(
            f"{_where(path, lines, ('target',))}: target metric {scenario.target.metric} needs a validation part; "
            "add validation_fraction (e.g. 0.2) or use test_rmse"
        )
    if scenario.target is not None and scenario.eval_every not in (0, 1) and "steps" not in scenario.model_fields_set:
        raise UserError(
            f"{_where(path, lines, ('eval_every',))}: a target is checked every epoch, so eval_every must be 0 or 1 "
            "(with a steps budget, eval_every counts steps)"
        )
    return ScenarioFile(path=path, scenario=scenario, lines=lines)


def _explain(exc: ValidationError, path: Path, lines: dict[str, int], data: dict[str, Any]) -> str:
    errors = exc.errors()
    # an unknown key is the likeliest root cause (a typo also makes its real key "missing")
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        model = Target if len(loc) > 1 and loc[0] == "target" else Scenario
        return f"{_where(path, lines, loc)}: unknown key{_suggest(key, list(model.model_fields))}"
    if err["type"] == "missing":
        return f"{path}: missing required key '{'.'.join(map(str, loc))}'; add it to the scenario"
    # a sweep key's error lists every union member: the useful one is the list member's for a list, else the scalar's
    listed = isinstance(data.get(str(loc[0])), list)
    err = next(
        (
            e
            for e in errors
            if tuple(e["loc"])[:1] == loc[:1] and any(str(p).startswith("list[") for p in e["loc"]) == listed
        ),
        err,
    )
    loc = tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    shown = "" if isinstance(given, (dict, list)) or ", got " in msg else f" (got {given!r})"
    return f"{_where(path, lines, loc)}: {msg}{shown}; see the scenario reference in docs/scenarios.md"


def load_scenario(path: str | Path) -> ScenarioFile:
    """Read and validate one scenario file."""
    p = Path(path)
    if p.is_dir():
        raise UserError(_directory(p))
    if not p.is_file():
        raise UserError(f"{p}: scenario file not found; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read scenario ({exc.__class__.__name__}: {exc})") from None
    return parse_scenario_text(text, p)


def _directory(folder: Path) -> str:
    """One line for a scenario path that is a folder: a scenario file in it to give instead."""
    try:
        found = sorted(f.name for f in folder.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    except OSError:
        found = []
    shown = f"{str(folder).rstrip('/')}/"
    if not found:
        return f"{shown} is a directory, not a scenario file; give the path of a .yaml scenario file"
    also = f", or all of them with {shown}*{Path(found[0]).suffix}" if len(found) > 1 else ""
    return f"{shown} is a directory, not a scenario file; give a .yaml file in it, e.g. {shown}{found[0]}{also}"
