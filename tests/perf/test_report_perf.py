"""How long the report takes on 5,000 runs (64 configurations x 78 repeats, 20 epochs each).

A measurement, not a timed assertion: run with `pytest tests/perf --benchmark-only -k report -s`
and read the printed seconds (the budget is under 60 s on a 2-core machine).
"""

from __future__ import annotations

import sys
from typing import Any
from pathlib import Path


# The synthetic-results helpers live with the report tests; tests/ is not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from report_fixtures import synthetic_results  # noqa: E402

from bench.report import write_report  # noqa: E402
from bench.store import Store  # noqa: E402


def test_report_on_5000_runs(benchmark: Any, seconds: dict[str, float], tmp_path: Path) -> None:
    folder = tmp_path / "results"
    with Store.open(folder) as store:
        for look_back in (3, 6):
            for units in (4, 8):
                for result in synthetic_results(
                    batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128),
                    repeats=78,
                    n_epochs=20,
                    look_back=look_back,
                    units=units,
                    target=True,
                ):
                    store.save(result)
        assert len(store.runs()) == 5000
    index = benchmark.pedantic(write_report, args=([folder], tmp_path / "report"), rounds=1, iterations=1).index
    print(f"\nreport on 5,000 runs: {benchmark.stats.stats.median:.1f} s")
    benchmark.extra_info["wall_seconds"] = benchmark.stats.stats.median
    seconds["report on 5,000 runs"] = benchmark.stats.stats.median
    assert index.is_file()
