"""One throughput statistic (issue 27): a configuration's samples/s is the median over runs of each run's median
timed round, and the terminal table, the Recommendation, speed.csv and the throughput figure all show it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from bench.report import load_results
from bench.report.analysis import analyse
from bench.results import Throughput
from report_fixtures import save, synthetic_results

SAMPLES = 1000
# each run's rounds: mostly fast, two slow (another process took the CPU): the rate over all rounds is far
# below the median round's, which is what the old terminal table's mean of per-run totals showed
ROUNDS = {1: [0.010, 0.011, 0.012, 0.050, 0.060], 4: [0.004, 0.0042, 0.0045, 0.03, 0.04], 16: [0.002] * 4 + [0.02]}


def with_rounds(results):  # noqa: ANN001, ANN201
    out = []
    for r in results:
        if r.throughput is None:
            out.append(r)
            continue
        seconds = [s * (1 + 0.05 * r.spec.repeat) for s in ROUNDS[r.spec.batch_size]]
        t = Throughput.from_rounds(seconds, SAMPLES, SAMPLES // r.spec.batch_size, 0.5, sum(seconds), None, 300.0)
        out.append(dataclasses.replace(r, throughput=t))
    return out


def test_a_runs_throughput_is_its_median_round() -> None:
    t = Throughput.from_rounds([0.01, 0.011, 0.012, 0.05, 0.06], 1000, 250, None, 0.143, None, 1.0)
    assert t.samples_per_sec == pytest.approx(1000 / 0.012) == t.sps_median
    assert t.steps_per_sec == pytest.approx(250 / 0.012)
    assert t.samples_per_sec != pytest.approx(5 * 1000 / 0.143)  # not the rate over all rounds together


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = with_rounds(synthetic_results(repeats=3, failed=False, diverged=False))
    return save(tmp_path_factory.mktemp("one_throughput"), results)


def test_terminal_recommendation_csv_and_figure_show_the_same_number(folder: Path, tmp_path: Path) -> None:
    from bench.commands import run as run_command
    from bench.report import figures
    from bench.report.build import write_report
    from bench.store import Store

    a = analyse(load_results(folder))
    speed = a.speed.set_index(["mode", "batch_size"])["sps_median"]
    runs = a.results.ok
    for (mode, bs), value in speed.items():
        g = runs[(runs["mode"] == mode) & (runs["batch_size"] == bs)]
        assert value == pytest.approx(np.median([SAMPLES / np.median(ROUNDS[bs]) / (1 + 0.05 * k) for k in range(3)]))
        assert value == pytest.approx(float(np.median(g["samples_per_sec"])))  # the dots' statistic, aggregated

    # the Recommendation
    assert a.answer is not None
    assert {rec.scope for rec in a.answer.recommendations} == {"stateful/streams", "stateless"}
    for rec in a.answer.recommendations:  # one per mode: its scope is the mode
        for option in rec.options:
            assert option.speed.value == pytest.approx(speed[rec.scope, option.batch_size])

    # the terminal table after `lstm-bench run`
    console = Console(record=True, width=200)
    original = run_command.out
    run_command.out = console
    try:
        with Store.open(folder) as store:
            run_command._summary(store)
    finally:
        run_command.out = original
    text = console.export_text()
    for (mode, bs), value in speed.items():
        row = next(line for line in text.splitlines() if re.search(rf"│\s*{bs}\s*│\s*{re.escape(mode)}\s*│", line))
        assert f"{value:,.0f}" in row, (row, value)

    # speed.csv
    write_report([folder], out=tmp_path / "report")
    csv = pd.read_csv(tmp_path / "report" / "speed.csv")
    for (mode, bs), value in speed.items():
        row = csv[(csv["mode"] == mode) & (csv["batch_size"] == bs)]
        assert row["sps_median"].iloc[0] == pytest.approx(value, rel=1e-6)

    # the figure: each mode's line goes through the medians, and its dots are the runs' own medians
    fig = figures.throughput_by_batch_size(a)
    ax = fig.axes[0]
    lines = {tuple(np.round(line.get_ydata(), 3)) for line in ax.get_lines() if len(line.get_xdata()) == 3}
    for mode in ("stateful/streams", "stateless"):
        assert tuple(np.round([speed[mode, b] for b in (1, 4, 16)], 3)) in lines
    from matplotlib.collections import PathCollection

    dots = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if isinstance(c, PathCollection)])
    assert set(np.round(dots, 3)) == set(np.round(runs["samples_per_sec"], 3))


def test_trials_trained_together_share_one_throughput_panel(tmp_path: Path) -> None:
    from bench.report import figures

    results = []
    for lr in (0.001, 0.01):
        for r in with_rounds(
            synthetic_results(repeats=2, failed=False, diverged=False, learning_rate=lr, base_learning_rate=lr)
        ):
            results.append(dataclasses.replace(r, trained_together=4))
    a = analyse(load_results(save(tmp_path / "tuned", results)))
    assert "base_learning_rate" in a.results.facets
    fig = figures.throughput_by_batch_size(a)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    assert "base_learning_rate: trained together, timed as one program" in fig._suptitle.get_text()
