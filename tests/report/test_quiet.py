"""A quiet terminal: building a report or a comparison raises no library warning (pandas, numpy, matplotlib,
seaborn), on ordinary results and on the edge cases that used to raise one. Every warning is an error here,
but for the few in `bench.cli.LIBRARY_NOISE`, which the command line ignores; the figures draw in this
process (LSTM_BENCH_REPORT_WORKERS=1) so a warning in one fails the test rather than a forked worker's stderr."""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.cli import quiet_library_noise
from bench.report import write_report
from bench.report.compare import write_comparison
from bench.results import RunResult
from clitools import run_cli
from report_fixtures import save, synthetic_results, tuning_results

pytestmark = pytest.mark.filterwarnings("error")

PLAIN = {"failed": False, "diverged": False}


@contextmanager
def strict() -> Iterator[None]:
    """Every warning an error but the command line's `LIBRARY_NOISE`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_library_noise()
        yield


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTM_BENCH_REPORT_WORKERS", "1")


def ok_runs(results: list[RunResult], **changes: object) -> list[RunResult]:
    return [dataclasses.replace(r, **changes) if r.status == "ok" else r for r in results]


def with_metrics(results: list[RunResult], **changes: object) -> list[RunResult]:
    return [dataclasses.replace(r, metrics=dataclasses.replace(r.metrics, **changes)) for r in results]


def with_speed(results: list[RunResult], sps: Callable[[RunResult], float]) -> list[RunResult]:
    return [
        dataclasses.replace(r, throughput=dataclasses.replace(r.throughput, samples_per_sec=sps(r))) for r in results
    ]


CASES: dict[str, Callable[[], list[RunResult]]] = {
    # failed and diverged runs, a target: every figure of a plain sweep
    "ordinary": lambda: synthetic_results(target=True),
    # a single throughput value: one batch size, one mode, one run
    "one run": lambda: synthetic_results(batch_sizes=(4,), repeats=1, stateful=(True,), **PLAIN),
    # every run met the target 0 s in: the time-to-target figure's y range was (0, 0) ("identical low and high ylims")
    "target met at 0 s": lambda: ok_runs(synthetic_results(target=True, **PLAIN), seconds_to_target=0.0),
    # a perfect fit: the RMSE difference relative to it divided by zero ("divide by zero"; 0 / 0 where every
    # batch size fits perfectly)
    "RMSE 0 at batch size 1": lambda: [
        with_metrics([r], test_rmse=0.0)[0] if r.spec.batch_size == 1 else r for r in synthetic_results(**PLAIN)
    ],
    "RMSE 0": lambda: with_metrics(synthetic_results(**PLAIN), test_rmse=0.0, train_rmse=0.0),
    # no positive throughput: the accuracy-vs-speed figure put 0 on a log axis ("no positive values")
    "0 samples/s": lambda: with_speed(synthetic_results(**PLAIN), lambda r: 0.0),
    # a tuned sweep (budget, S(B), noise scale, heat map figures) ...
    "tuning": lambda: tuning_results(),
    # ... whose target was met in 0 steps: log axes of zeros, and perfect scaling from 0 steps divided 0 by 0
    "tuning, target met in 0 steps": lambda: ok_runs(
        tuning_results(), steps_to_target=0, seconds_to_target=0.0, epochs_to_target=1
    ),
}


# the first two cases run by default; the edge cases (about a minute together) with the slow checks
@pytest.mark.parametrize("case", [c if i < 2 else pytest.param(c, marks=pytest.mark.slow) for i, c in enumerate(CASES)])
def test_a_report_raises_no_library_warning(case: str, tmp_path: Path) -> None:
    folder = save(tmp_path / "results", CASES[case]())
    with strict():
        write_report([folder], tmp_path / "report")


def test_a_comparison_raises_no_library_warning(tmp_path: Path) -> None:
    """Pairing used to add columns one at a time to the wide merged frame: pandas' PerformanceWarning
    ("DataFrame is highly fragmented"), five times per comparison."""
    a = save(tmp_path / "a", synthetic_results(batch_sizes=(1, 4, 32), device="cpu"))
    b = save(tmp_path / "b", synthetic_results(batch_sizes=(1, 4, 32, 64), device="gpu", speed=lambda bs: bs / 4))
    one_a = save(tmp_path / "one_a", synthetic_results(batch_sizes=(4,), repeats=1, stateful=(True,), **PLAIN))
    one_b = save(
        tmp_path / "one_b",
        synthetic_results(batch_sizes=(4,), repeats=1, stateful=(True,), engine="scan", **PLAIN),
    )
    zero = with_speed(synthetic_results(batch_sizes=(1, 4, 32), engine="scan", **PLAIN), lambda r: 0.0)
    zero = save(tmp_path / "zero", zero)
    with strict():
        assert len(write_comparison(a, b, "cpu", "gpu", tmp_path / "c1").table) == 6
        assert len(write_comparison(one_a, one_b, out=tmp_path / "c2").table) == 1  # one speed-up, its own interval
        assert len(write_comparison(a, zero, out=tmp_path / "c3").table) == 6  # B timed at 0 samples/s


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="figures draw in forked workers on Linux only")
def test_the_terminal_shows_no_library_warning(tmp_path: Path) -> None:
    """The commands themselves, every warning shown (-W default), figures drawn in forked workers whose stderr
    is the terminal's: `report` and `compare` print no warning of a library."""
    a = save(tmp_path / "a", synthetic_results(target=True))
    b = save(tmp_path / "b", synthetic_results(target=True, engine="scan", speed=lambda bs: 2.0))
    env = {"PYTHONWARNINGS": "default", "LSTM_BENCH_REPORT_WORKERS": "0"}  # "0": forked workers where they pay
    for args in (("report", str(a)), ("compare", str(a), str(b))):
        ran = run_cli(*args, cwd=tmp_path, extra_env=env)
        assert ran.returncode == 0, ran.stderr
        assert "Warning" not in ran.stderr, ran.stderr
