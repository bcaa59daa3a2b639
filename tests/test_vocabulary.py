"""The words that mean one thing are spelled once (bench/vocabulary.py), and everything else imports them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from bench import vocabulary as v

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_every_status_is_typed_grouped_and_mapped_to_an_mlflow_state():
    assert set(get_args(v.Status)) == set(v.STATUSES) and len(set(v.STATUSES)) == len(v.STATUSES)
    assert set(v.DONE) <= set(v.STATUSES) and set(v.ATTEMPTED) <= set(v.DONE)
    assert set(v.MLFLOW_STATE) == set(v.STATUSES)
    assert {v.MLFLOW_STATE[s] for s in v.DONE} == {"FINISHED"} and v.MLFLOW_STATE[v.FAILED] == "FAILED"


def _lines_matching(pattern: re.Pattern[str]) -> list[str]:
    """'module:line' of every code line outside bench/vocabulary.py that matches."""
    sources = [p for p in BENCH.rglob("*.py") if p.name != "vocabulary.py" and "testing" not in p.parts]
    return [
        f"{p.relative_to(BENCH)}:{i}"
        for p in sources
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("word", ["ok", "failed", "diverged", "unsupported"])
def test_no_module_spells_a_status_itself(word: str):
    # a status written as a string of its own next to `status` (a comparison, a default, a set) is a second
    # spelling; prose that quotes it ('ok') is not
    pattern = re.compile(rf"""status\W[^\n]{{0,40}}"{word}"|"{word}"[^\n]{{0,40}}\bstatus\b""")
    found = _lines_matching(pattern)
    assert not found, f"spell the status '{word}' with bench.vocabulary, not at {found}"


def test_no_module_builds_a_mode_scope_or_target_label_itself():
    patterns = {
        "mode": re.compile(r"""f["']stateful/\{|["']stateful/["']\s*\+"""),
        "scope": re.compile(r"""f["']\{\w+\}, \{\w+\}["'] if \w+ else"""),
        "target": re.compile(r"""\} <= \{[^}]*:g\}"""),
    }
    found = {name: where for name, pattern in patterns.items() if (where := _lines_matching(pattern))}
    assert not found, f"use bench.vocabulary's mode_label, scope_label and target_label: {found}"


def test_labels_read_as_users_write_them():
    assert v.mode_label(True, "streams") == "stateful/streams" and v.mode_label(False, "none") == v.STATELESS
    assert v.mode_label(True, "sequential") in v.MODE_ORDER and v.mode_label(True, "streams") in v.MODE_ORDER
    assert v.scope_label("", "stateless") == "stateless"
    assert v.scope_label("look_back=3", "stateless") == "look_back=3, stateless"
    assert v.target_label("val_rmse", 0.10) == "val_rmse <= 0.1"
