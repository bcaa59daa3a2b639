"""The report on synthetic databases with known numbers: files, tables, listed problems, edge cases."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.report import accuracy_table, load_results, speed_table, write_report
from bench.report.answer import MARGIN
from bench.report.catalog import FIGURES
from bench.report.stats import pareto_mask
from bench.report.findings import findings
from bench.report.stats import bootstrap_ci, mann_whitney, olympic_mean
from bench.store import Store
from report_fixtures import DIVERGED_RMSE, expected_epochs_to_target, expected_rmse, save, synthetic_results

# the figures of a sweep that tunes nothing and records no steps to target (test_tuning_report.py has the others)
# the figures of a plain sweep: every one but those of tuning and of steps to target
# (and rmse_by_lead, of multi-step forecasts: test_multi_step_forecasts_get_the_rmse_per_lead)
STEMS = [e.stem for e in FIGURES if e.section == "detail" and e.stem != "rmse_by_lead"] + [
    "epochs_to_target",
    "seconds_to_target",
]


def _mode(stateful: bool) -> str:
    return "stateful/streams" if stateful else "stateless"


@pytest.fixture
def report(target_report: tuple[Path, Path]) -> tuple[Path, Path]:
    return target_report


def test_every_figure_written_as_png_and_svg_and_embedded(report: tuple[Path, Path]) -> None:
    _, index = report
    for stem in STEMS:
        for ext in ("png", "svg"):
            f = index.parent / f"{stem}.{ext}"
            assert f.is_file() and f.stat().st_size > 5_000, f
    page = index.read_text()
    assert page.count('<img src="data:image/png;base64,') == len(STEMS)
    # Self-contained: nothing to fetch, nothing to run.
    assert not re.search(r"<script|<link|src=\"http|url\(http", page)


def test_accuracy_and_speed_tables_match_pandas(report: tuple[Path, Path]) -> None:
    folder, index = report
    with Store.open(folder, create=False) as store:
        runs = store.runs()
    ok = runs[runs["status"] == "ok"].assign(mode=lambda d: d["stateful"].astype(bool).map(_mode))
    for csv, column, prefix in (("accuracy.csv", "test_rmse", "rmse"), ("speed.csv", "samples_per_sec", "sps")):
        expected = ok.groupby(["mode", "batch_size"])[column].agg(["count", "mean", "std", "median", "min", "max"])
        table = pd.read_csv(index.parent / csv).set_index(["mode", "batch_size"]).sort_index()
        assert list(table.index) == list(expected.index)
        np.testing.assert_array_equal(table["n"], expected["count"])
        for stat in ("mean", "std", "median", "min", "max"):
            np.testing.assert_allclose(table[f"{prefix}_{stat}"], expected[stat], rtol=1e-12, err_msg=stat)
    acc = pd.read_csv(index.parent / "accuracy.csv")
    assert acc["rmse_max"].max() < DIVERGED_RMSE  # the diverged run's RMSE never enters a statistic
    assert (acc["rmse_ci_low"] <= acc["rmse_mean"]).all() and (acc["rmse_mean"] <= acc["rmse_ci_high"]).all()
    assert (acc["rmse_ci_low"] >= acc["rmse_min"]).all() and (acc["rmse_ci_high"] <= acc["rmse_max"]).all()
    np.testing.assert_allclose(acc["skill_mean"], 1 - acc["rmse_mean"] / 48.0)


def test_failed_and_diverged_runs_listed(report: tuple[Path, Path]) -> None:
    folder, index = report
    with Store.open(folder, create=False) as store:
        bad = store.runs().query("status != 'ok'")
    assert set(bad["status"]) == {"failed", "diverged"}
    summary = (index.parent / "summary.md").read_text()
    assert "Runs not counted in the statistics (2)" in summary
    assert "18 ok, 1 diverged, 1 failed" in summary
    for run_id, status, error in bad[["run_id", "status", "error"]].itertuples(index=False):
        line = next(row for row in summary.splitlines() if run_id in row)
        assert status in line and error in line
        assert run_id in index.read_text()


def test_time_to_target_olympic_means(report: tuple[Path, Path]) -> None:
    _, index = report
    table = pd.read_csv(index.parent / "time_to_target.csv").set_index(["mode", "batch_size"])
    for stateful in (True, False):
        for bs in (4, 16):
            values = [expected_epochs_to_target(bs, r) for r in range(3)]
            hits = sorted(v for v in values if v is not None)
            # one miss counts as the slowest run and is dropped with the fastest
            expected = hits[1:] if None in values else hits[1:-1]
            row = table.loc[(_mode(stateful), bs)]
            assert row["epochs_olympic"] == pytest.approx(np.mean(expected))
            assert row["reached"] == len(hits)
    # the diverged stateful batch-1 run counts as an attempt that missed the target
    assert table.loc[("stateful/streams", 1), "n"] == 4


def test_mann_whitney_against_best(make_db: Callable[..., Path]) -> None:
    results = load_results(make_db(repeats=4))
    acc = accuracy_table(results).set_index(["mode", "batch_size"])
    ok = results.ok
    for mode in ("stateful/streams", "stateless"):
        assert acc.loc[(mode, 1), "vs_best"] == "best"
        best = ok[(ok["mode"] == mode) & (ok["batch_size"] == 1)]["test_rmse"]
        for bs in (4, 16):
            other = ok[(ok["mode"] == mode) & (ok["batch_size"] == bs)]["test_rmse"]
            p = sps.mannwhitneyu(other, best, alternative="two-sided").pvalue
            assert acc.loc[(mode, bs), "p_vs_best"] == pytest.approx(p)
    assert acc.loc[("stateless", 16), "vs_best"].startswith("significant")


def test_too_few_repeats_are_not_tested(make_db: Callable[..., Path]) -> None:
    results = load_results(make_db(repeats=2))
    acc = accuracy_table(results)
    assert acc["p_vs_best"].isna().all()
    assert acc.loc[acc["vs_best"] != "best", "vs_best"].str.startswith("too few repeats to test").all()
    text = " ".join(" ".join(s) for _, s in findings(results, acc, speed_table(results), MARGIN))
    # the findings judge differences as the Recommendation does: two repeats are not shown within the margin
    assert "not shown to be within the 2% margin" in text and "significant" not in text


def test_findings_do_not_overclaim(report: tuple[Path, Path]) -> None:
    _, index = report
    findings = (index.parent / "summary.md").read_text().split("## Findings")[1].split("## Figures")[0]
    assert "Most accurate: batch size 1 (stateful/streams)" in findings
    assert "Fastest: batch size 16 (stateless)" in findings
    # the findings run no test of their own: differences are the Recommendation's bootstrap intervals
    sentences = [line for line in findings.splitlines() if not line.startswith("- warning")]
    assert not [line for line in sentences if "Mann-Whitney" in line or "p=" in line], sentences
    # three repeats each cannot reach p < 0.05 with Mann-Whitney: said once, with the repeats that can
    assert findings.count("smallest p possible") == 1 and "use at least 4 repeats" in findings
    assert "stateful beat stateless: stateless's mean RMSE is higher by +7.2%, 90% bootstrap interval" in findings
    assert "the RMSE difference is not shown to be within the 2% margin" in findings
    assert "beats persistence" in findings


def test_only_failed_runs(tmp_path: Path) -> None:
    folder = save(tmp_path / "bad", [r for r in synthetic_results() if r.status == "failed"])
    index = write_report([folder], tmp_path / "report").index
    summary = (index.parent / "summary.md").read_text()
    assert "1 failed" in summary and "synthetic failure" in summary
    assert "No successful run has a test RMSE" in summary
    assert "**Missing:** No figure 'rmse_by_batch_size'" in summary
    assert not list(index.parent.glob("*.png"))


def test_single_run(tmp_path: Path) -> None:
    one = synthetic_results(batch_sizes=(1,), repeats=1, stateful=(True,), failed=False, diverged=False)
    folder = save(tmp_path / "one", one)
    index = write_report([folder], tmp_path / "report").index
    summary = (index.parent / "summary.md").read_text()
    assert "single run: no CI" in summary and "With a single run it cannot be said" in summary
    assert "Only stateful runs succeeded" in summary
    for stem in STEMS[:4]:
        assert (index.parent / f"{stem}.png").stat().st_size > 0


def test_stale_target_figures_removed(report: tuple[Path, Path], make_db: Callable[..., Path], tmp_path: Path) -> None:
    out = shutil.copytree(report[1].parent, tmp_path / "report")
    assert (out / "epochs_to_target.svg").is_file()
    summary = write_report([make_db("without", batch_sizes=(1,), repeats=1)], out).index.parent / "summary.md"
    assert not (out / "epochs_to_target.svg").exists()
    assert "No scenario set a target" in summary.read_text()


def test_facets_follow_what_varies(tmp_path: Path) -> None:
    both = synthetic_results(device="cpu") + synthetic_results(device="gpu", failed=False, diverged=False)
    assert load_results(save(tmp_path / "dev", both)).facets == ("device",)
    # steps_per_execution follows the engine: faceting by engine alone says it all
    engines = synthetic_results(engine="fit", steps_per_execution=64) + synthetic_results(
        engine="scan", failed=False, diverged=False
    )
    results = load_results(save(tmp_path / "eng", engines))
    assert results.facets == ("engine",)
    assert set(results.runs["panel"]) == {"engine=fit", "engine=scan"}
    assert set(speed_table(results)["engine"]) == {"fit", "scan"}


def test_several_folders_concatenated(make_db: Callable[..., Path]) -> None:
    a, b = make_db("a"), make_db("b", device="gpu")
    results = load_results(a, b)
    assert set(results.runs["source"]) == {"a", "b"} and set(results.epochs["source"]) == {"a", "b"}
    assert len(results.runs) == 40


def test_a_run_copied_into_two_folders_counts_once(make_db: Callable[..., Path], tmp_path: Path) -> None:
    a = make_db("a")
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    results = load_results(a, copy)
    assert len(results.runs) == len(load_results(a).runs) == results.runs["run_id"].nunique()
    assert len(results.epochs) == len(load_results(a).epochs)


def test_olympic_mean() -> None:
    assert olympic_mean(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))[0] == pytest.approx(3.0)
    assert olympic_mean(np.array([np.nan, 1.0, 2.0, 3.0]))[0] == pytest.approx(2.5)
    value, note = olympic_mean(np.array([np.nan, np.nan, 1.0, 2.0]))
    assert np.isnan(value) and "2 of 4 runs did not reach" in note
    value, note = olympic_mean(np.array([2.0, 4.0]))
    assert value == 3.0 and "plain mean" in note


def test_mann_whitney_floor_note() -> None:
    assert mann_whitney(np.arange(3.0), np.arange(3.0) + 10).note == "smallest p possible with n=3 vs 3 is 0.1"
    assert mann_whitney(np.arange(4.0), np.arange(4.0) + 10).significant


def test_pareto_mask() -> None:
    speed = np.array([1.0, 2.0, 3.0, 2.0, 3.0])
    error = np.array([1.0, 2.0, 3.0, 3.0, 3.0])  # 3 is dominated by 1; 4 duplicates 2 (both kept)
    assert pareto_mask(speed, error).tolist() == [True, True, True, False, True]


def test_bootstrap_ci_of_the_mean() -> None:
    # two points: each resampled mean is a, (a+b)/2 or b, each extreme with probability 1/4, so the
    # 95% percentile interval is exactly the two values
    assert bootstrap_ci(np.array([3.0, 7.0])) == (3.0, 7.0)
    assert bootstrap_ci(np.array([3.0])) is None
    x = np.random.default_rng(1).normal(10.0, 2.0, 30)
    assert bootstrap_ci(x) == bootstrap_ci(x)  # seeded: a report is reproducible
    assert bootstrap_ci(x, seed=1) != bootstrap_ci(x, seed=2)
    lo95, hi95 = bootstrap_ci(x)
    lo50, hi50 = bootstrap_ci(x, level=0.5)
    assert lo95 < lo50 < x.mean() < hi50 < hi95  # the level matters
    # the interval of a mean: about mean +- 1.96 standard errors
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert (lo95 + hi95) / 2 == pytest.approx(x.mean(), abs=0.2 * se)
    assert hi95 - lo95 == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_figures_drawn_side_by_side_in_forked_workers_give_the_same_report(
    target_report: tuple[Path, Path], tmp_path: Path
) -> None:
    """The same report from a fresh process (no JAX: its figures are drawn by forked workers) as from this
    one (JAX imported: drawn one after another)."""
    import subprocess
    import sys

    folder, index = target_report
    code = (
        "from pathlib import Path; import bench.report.build as b\n"
        "assert b._fork_is_safe(), 'the fork path must be the one under test'\n"
        f"b.write_report([Path({str(folder)!r})], Path({str(tmp_path / 'forked')!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    forked, serial = tmp_path / "forked", index.parent
    assert sorted(p.name for p in forked.iterdir()) == sorted(p.name for p in serial.iterdir())
    assert (forked / "summary.md").read_text() == (serial / "summary.md").read_text().replace(
        "report: results", "report: results"
    )
    assert all((forked / f"{stem}.png").stat().st_size > 10_000 for stem in STEMS)


def test_multi_step_forecasts_get_the_rmse_per_lead(tmp_path: Path) -> None:
    """horizon 2: the per-lead table averages each lead over repeats, beside persistence at that lead."""
    import dataclasses
    import json

    runs = [
        dataclasses.replace(
            r,
            spec=dataclasses.replace(r.spec, horizon=2),
            metrics=dataclasses.replace(
                r.metrics,
                test_rmse_by_lead=json.dumps([r.metrics.test_rmse - 1, r.metrics.test_rmse + 1]),
                persistence_rmse_by_lead=json.dumps([30.0, 60.0]),
            ),
        )
        if r.status == "ok"
        else r
        for r in synthetic_results(failed=False, diverged=False)
    ]
    index = write_report([save(tmp_path / "h", runs)], tmp_path / "report").index
    table = pd.read_csv(index.parent / "accuracy_by_lead.csv")
    row = table[(table["batch_size"] == 4) & (table["mode"] == "stateless")].set_index("lead")
    expected = np.mean([expected_rmse(4, rep, False) for rep in range(3)])
    assert row.loc[1, "rmse_mean"] == pytest.approx(expected - 1)
    assert row.loc[2, "rmse_mean"] == pytest.approx(expected + 1)
    assert list(row["persistence_rmse"]) == [30.0, 60.0] and (row["horizon"] == 2).all()
    assert (index.parent / "rmse_by_lead.png").stat().st_size > 0
    assert not (tmp_path / "plain").exists()
    plain = write_report([save(tmp_path / "plain", synthetic_results())], tmp_path / "plain_report").index
    assert not (plain.parent / "rmse_by_lead.png").exists() and not (plain.parent / "accuracy_by_lead.csv").exists()


@pytest.mark.parametrize("margin", [0.02, 0.5])
def test_findings_and_the_recommendation_give_one_verdict(make_db: Callable[..., Path], margin: float) -> None:
    """One mode, the fastest batch size not the most accurate: the findings' verdict on its accuracy cost is the
    Recommendation's (within the margin or not), at a margin that rejects it and at one that accepts it."""
    from bench.report.analysis import analyse

    results = load_results(make_db(stateful=(True,), failed=False, diverged=False, speed=lambda bs: float(bs)))
    a = analyse(results, margin=margin)
    (rec,) = a.answer.recommendations
    fastest = max(rec.options, key=lambda o: o.speed.value)
    assert fastest.batch_size != rec.most_accurate
    text = " ".join(" ".join(s) for _, s in findings(results, a.accuracy, a.speed, margin))
    shown = f"the RMSE difference is shown to be within the {margin:.0%} margin" in text
    not_shown = f"the RMSE difference is not shown to be within the {margin:.0%} margin" in text
    assert shown != not_shown and shown == fastest.within_margin
    assert (rec.batch_size == fastest.batch_size) == fastest.within_margin
