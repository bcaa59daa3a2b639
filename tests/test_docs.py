"""The docs stay true: generated tables current, the scenario reference and the code map complete, every
link and every path they name present, every dotted name they cite defined."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from bench.reference import END, GENERATORS, MARKER, render_blocks
from bench.runspec import spec_columns
from bench.scenario import SWEEP_KEYS, Scenario

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
REGENERATE = "run `python -m bench.reference docs/` and commit the result"


def text_outside_code(path: Path) -> str:
    """The page without its fenced code blocks (links and paths there are examples, not references)."""
    return re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def block(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index(MARKER.format(name=name))
    return text[start : text.index(END, start)]


@pytest.mark.parametrize(
    ("page", "name"),
    [("scenarios.md", "scenario keys"), ("commands.md", "commands"), ("reading-the-report.md", "report catalog")],
)
def test_generated_blocks_are_what_the_code_renders_now(page: str, name: str):
    text = (DOCS / page).read_text(encoding="utf-8")
    assert MARKER.format(name=name) in text, f"docs/{page} lost its generated '{name}' block"
    assert block(DOCS / page, name).strip() != MARKER.format(name=name), f"docs/{page}: '{name}' is empty; {REGENERATE}"
    assert render_blocks(text) == text, f"docs/{page}: the generated '{name}' block is out of date; {REGENERATE}"


def test_every_generator_has_a_block_somewhere():
    text = "".join(p.read_text(encoding="utf-8") for p in PAGES)
    assert [n for n in GENERATORS if MARKER.format(name=n) not in text] == []


def test_scenario_reference_matches_the_scenario_keys_their_defaults_and_sweeps():
    table = block(DOCS / "scenarios.md", "scenario keys")
    rows = re.findall(r"^\| `(\w+)`( \*)? \| ([^|]+) \|", table, re.M)
    assert [k for k, _, _ in rows] and {k for k, _, _ in rows} == set(Scenario.model_fields)
    assert len(rows) == len(Scenario.model_fields), "a key is listed twice"
    assert {k for k, star, _ in rows if star} == set(SWEEP_KEYS)
    shown = {k: default.strip() for k, _, default in rows}
    for c in spec_columns():
        if c.scenario_type is not None:
            value = str(c.default).lower() if isinstance(c.default, bool) else c.default
            assert shown[c.name] == ("none" if c.default is None else f"`{value}`"), c.name
    assert shown["name"] == shown["dataset"] == "required"


def test_the_shipped_scenarios_are_all_listed():
    page = (DOCS / "scenarios.md").read_text(encoding="utf-8")
    shipped = [*(ROOT / "scenarios").glob("*.yaml"), *(ROOT / "examples").glob("*/*.yaml")]
    missing = [str(p.relative_to(ROOT)) for p in shipped if f"`{p.relative_to(ROOT)}`" not in page]
    assert not missing, f"docs/scenarios.md does not list {missing}"


def test_the_readme_scenario_is_the_quickstart():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert shown, "the README shows the quickstart scenario"
    assert yaml.safe_load(shown.group(1)) == yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())


def test_the_mlflow_install_hint_is_the_documented_install(monkeypatch: pytest.MonkeyPatch):
    """The one line without MLflow gives the install command docs/operations.md gives, for the extra pyproject.toml
    declares, from the checkout (the README installs with `pip install .`, not from a package index)."""
    from bench.errors import UserError
    from bench.mlflow_export import client

    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    with pytest.raises(UserError) as info:
        client(None)
    command = re.search(r"pip install '\.\[(\w+)\]'", str(info.value))
    assert command, f"the hint installs from the checkout, as the README does: {info.value}"
    assert f"`{command.group(0)}`" in (DOCS / "operations.md").read_text(encoding="utf-8")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert command.group(1) in extras and "pip install ." in (ROOT / "README.md").read_text(encoding="utf-8")


def test_code_map_names_every_module():
    code_map = (DOCS / "architecture.md").read_text(encoding="utf-8")
    code_map = code_map[code_map.index("## Code map") : code_map.index("## One schema")]
    names = [
        f"bench/{p.relative_to(ROOT / 'bench').as_posix()}{'/' if p.is_dir() else ''}"
        for p in sorted((ROOT / "bench").rglob("*"))
        if (p.is_dir() and p.name != "__pycache__" and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name not in ("__init__.py", "__main__.py"))
    ]
    missing = [n for n in names if not re.search(rf"(?<![\w/]){re.escape(n)}(?![\w])", code_map)]
    assert not missing, f"the code map in docs/architecture.md does not mention {missing}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text_outside_code(path), re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_to_files_and_headings(page: Path):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text_outside_code(page)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


#: Paths the docs name that are outputs or examples, not files of the repository.
NOT_IN_REPO = re.compile(r"^results/(?!reference)|^models/|^path/")
PATH = re.compile(r"(?<![\w./~-])((?:bench|tests|examples|scenarios|suites|benchmarks|docs|results)/[\w./<>-]*)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_in_backticks_exists(page: Path):
    missing = []
    for span in re.findall(r"`([^`\n]+)`", page.read_text(encoding="utf-8")):
        for path in PATH.findall(span):
            path = path.split("::")[0].rstrip(".")
            if "<" in path or NOT_IN_REPO.search(path):
                continue
            if not (ROOT / path).exists():
                missing.append(path)
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {sorted(set(missing))}"


def _defines(source: str, name: str) -> bool:
    """Whether module `source` defines or imports `name` (read as text: importing the module could start Keras)."""
    return bool(re.search(rf"(^|\n)\s*(def|class) {name}\b|(^|\n)\s*{name}\s*[:=]|\bimport\b[^\n]*\b{name}\b", source))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_bench_name_is_defined(page: Path):
    """`bench.x.y.Name` in the docs names a module of bench/ and, after it, a name that module defines."""
    unknown = []
    for dotted in set(re.findall(r"`(bench(?:\.\w+)+)", page.read_text(encoding="utf-8"))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            base = ROOT.joinpath(*parts[:cut])
            module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
            if module.exists():
                rest = parts[cut:]
                if rest and not _defines(module.read_text(encoding="utf-8"), rest[0]):
                    unknown.append(dotted)
                break
        else:
            unknown.append(dotted)
    assert not unknown, f"{page.relative_to(ROOT)} names what bench/ does not define: {sorted(unknown)}"
