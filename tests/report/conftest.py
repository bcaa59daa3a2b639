"""Fixtures for the report tests: synthetic results folders with known numbers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from report_fixtures import save, synthetic_results


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[..., Path]:
    """Factory: make_db(name, **synthetic_results kwargs) -> a results folder under tmp_path."""

    def factory(name: str = "results", **kwargs: object) -> Path:
        return save(tmp_path / name, synthetic_results(**kwargs))  # type: ignore[arg-type]

    return factory


@pytest.fixture(scope="session")
def target_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One report, built once per session, on the default synthetic sweep with a target:
    (results folder, index.html). Tests must only read it."""
    from bench.report import write_report

    folder = save(tmp_path_factory.mktemp("target") / "results", synthetic_results(target=True))
    return folder, write_report([folder], folder / "report").index
