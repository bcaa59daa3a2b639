"""A benchmark suite file: workloads (scenarios) and the settings they share, run by one `lstm-bench run`.

    suite: forecasting
    description: ...
    shared: {engine: scan, backend: jax, batch_size: [1, 4, 16], search: {...}}
    workloads:
      - name: airline
        note: how its target was set
        dataset: airline
        target: {metric: val_rmse, value: 32}

Each workload is a scenario: the shared keys, then its own (which replace shared ones), named after the
workload. A workload may also be a scenario file, alone (`- nile.yaml`) or with keys that replace its
own (`- {scenario: nile.yaml, steps: 400, name: nile_short}`); the path is relative to the suite file,
the workload is named after the file's `name` unless given one, and the file's relative paths (data
files, model factories) resolve against the scenario file as when it runs alone. `run --workload NAME`
runs some workloads only. Results go to `<suite folder>/<workload>/` (the suite folder: `--out`, else
`results/<suite>/`), and the suite report (`bench.report.suite`) to `<suite folder>/report/`. The suite
folder keeps `suite.json`, so `lstm-bench report <suite folder>` writes the suite report again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.errors import UserError, closest
from bench.scenario import ScenarioFile, _key_lines, load_yaml, parse_scenario_data

SUITE_KEYS = ("suite", "description", "shared", "workloads")
#: A workload's own keys besides scenario keys (`scenario`: the scenario file it reads).
WORKLOAD_KEYS = ("name", "note", "scenario")
#: What the suite folder records about its suite.
MARKER = "suite.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Workload:
    """One workload: its name, how its target was set, and its scenario."""

    name: str
    note: str
    scenario: ScenarioFile


@dataclass(frozen=True)
class SuiteFile:
    """A suite and where it came from."""

    path: Path
    name: str
    description: str
    workloads: tuple[Workload, ...]  # those to run (`--workload`), all by default
    listed: tuple[tuple[str, str], ...] = ()  # every workload's (name, note), run now or not

    def folder(self, out_dir: Path | None) -> Path:
        """The suite folder: `out_dir`, else results/<suite>."""
        return out_dir if out_dir is not None else Path("results") / self.name

    def record(self) -> dict[str, Any]:
        """`suite.json`: what the suite report needs to be written again from the suite folder."""
        return {
            "suite": self.name,
            "description": self.description,
            "file": str(self.path),
            "workloads": [
                {"name": n, "note": note} for n, note in self.listed or ((w.name, w.note) for w in self.workloads)
            ],
        }


def is_suite(path: Path) -> bool:
    """Whether `path` is a suite file (a YAML mapping with a top-level `suite` or `workloads` key: `load_suite`
    says what a file with workloads but no suite lacks); anything unreadable is
    left to the scenario reader to explain."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ("suite" in data or "workloads" in data)


def load_suite(path: Path, only: tuple[str, ...] = ()) -> SuiteFile:
    """Read and validate a suite file and each of its workloads (`only`: just these, by name), or raise a
    one-line `UserError`."""
    data, node = load_yaml(path.read_text(encoding="utf-8"), path, sweeps=r"shared|workloads\.\d+")
    lines = _key_lines(node)
    if isinstance(data, dict) and "workloads" in data and "suite" not in data:
        raise UserError(
            f"{path}:{lines.get('workloads', 1)}: a file with workloads is a suite and needs 'suite: NAME' at the top "
            "(a scenario has no workloads key)"
        )
    for key in data:
        if key not in SUITE_KEYS:
            match = closest(str(key), list(SUITE_KEYS))
            hint = f"did you mean '{match}'?" if match else f"a suite has {', '.join(SUITE_KEYS)}"
            raise UserError(f"{path}:{lines.get(str(key), 1)}: unknown suite key '{key}'; {hint}")
    name, shared, workloads = data.get("suite"), data.get("shared") or {}, data.get("workloads")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"{path}:{lines.get('suite', 1)}: suite must be a name of letters, digits, '_', '-' or '.'")
    if not isinstance(shared, dict):
        raise UserError(f"{path}:{lines.get('shared', 1)}: shared must be a mapping of scenario keys")
    if not isinstance(workloads, list) or not workloads or not all(isinstance(w, (dict, str)) for w in workloads):
        raise UserError(
            f"{path}:{lines.get('workloads', 1)}: workloads must be a list of mappings (name, keys...) or scenario "
            "files (- nile.yaml)"
        )
    if "name" in shared:
        raise UserError(f"{path}:{lines['shared.name']}: shared cannot set name; each workload has its own")
    shared_lines = {k.removeprefix("shared."): v for k, v in lines.items() if k.startswith("shared.")}
    out, seen, listed = [], set(), []
    for i, entry in enumerate(workloads):
        where = f"{path}:{lines.get(f'workloads.{i}', 1)}"
        w = {"scenario": entry} if isinstance(entry, str) else entry
        prefix = f"workloads.{i}."
        own_lines = {k.removeprefix(prefix): v for k, v in lines.items() if k.startswith(prefix)}
        own = {k: v for k, v in w.items() if k not in WORKLOAD_KEYS}
        source, keys, key_lines = path, {**shared, **own}, {**shared_lines, **own_lines}
        if "scenario" in w:
            source, from_file = _scenario_file(w["scenario"], path, where)
            # keys of the file are lined in the file; those that replace them are the suite's (no line there)
            keys = {**shared, **from_file[0], **own}
            key_lines = {k: v for k, v in from_file[1].items() if k.split(".")[0] not in own}
        wname = w.get("name", keys.get("name") if "scenario" in w else None)
        if not isinstance(wname, str) or not _NAME.match(wname):
            raise UserError(f"{where}: each workload needs a name of letters, digits, '_', '-' or '.'")
        if wname == "report":
            raise UserError(f"{where}: a workload cannot be named 'report' (the suite report's folder); rename it")
        if wname in seen:
            raise UserError(f"{where}: workload '{wname}' is named twice; give each workload its own name")
        seen.add(wname)
        listed.append((wname, str(w.get("note", ""))))
        if only and wname not in only:
            continue
        try:
            scenario = parse_scenario_data({**keys, "name": wname}, source, key_lines)
        except UserError as exc:
            if source == path:
                raise
            raise UserError(f"{where}: workload '{wname}': {exc}") from None
        out.append(Workload(wname, str(w.get("note", "")), scenario))
    unknown = [n for n in only if n not in seen]
    if unknown:
        raise UserError(
            f"--workload {unknown[0]}: {path} has no such workload; its workloads are {', '.join(sorted(seen))}"
        )
    return SuiteFile(path, name, str(data.get("description", "")), tuple(out), tuple(listed))


def _scenario_file(value: Any, suite: Path, where: str) -> tuple[Path, tuple[dict[str, Any], dict[str, int]]]:
    """A workload's scenario file (relative to the suite file): its path, keys and their lines."""
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}: scenario must be the path of a scenario file, e.g. scenario: nile.yaml")
    file = suite.parent / value
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "not found"
        raise UserError(f"{where}: scenario file {file} {what}; paths are relative to the suite file ({suite})")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: cannot read scenario file {file} ({exc.__class__.__name__})") from None
    data, node = load_yaml(text, file)
    if not isinstance(data, dict) or "suite" in data or "workloads" in data:
        raise UserError(f"{where}: {file} is not a scenario file (a mapping of scenario keys, no suite or workloads)")
    return file, (data, _key_lines(node))


def write_marker(suite: SuiteFile, folder: Path) -> None:
    """Record the suite in its folder (`MARKER`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps(suite.record(), indent=2) + "\n", encoding="utf-8")


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The suite a suite folder recorded, or None when `folder` is not one."""
    marker = folder / MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{marker}: damaged suite record ({exc}); run the suite again to rewrite it") from None
