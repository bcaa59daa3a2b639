"""Benchmark suites: the suite file (workloads and shared keys, validated like scenarios), performance profiles,
AlgoPerf scores and geometric-mean speed-ups on a hand-made table, and a suite run into its suite report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.profiles import profile, ratios, score, speedups
from bench.errors import UserError
from bench.suite import load_suite
from clitools import write

INF = np.inf
#: Three workloads x three submissions (lower is better; inf: missed the target).
COSTS = pd.DataFrame({"A": [10.0, 20.0, INF], "B": [20.0, 10.0, 30.0], "C": [40.0, INF, 30.0]},
                     index=pd.Index(["w1", "w2", "w3"], name="workload"))  # fmt: skip


def test_performance_profiles_on_a_hand_made_table() -> None:
    r = ratios(COSTS)
    # w1: A best (1), B 2, C 4; w2: B best, A 2, C missed; w3: B and C tie at best, A missed
    assert r.to_numpy().tolist() == [[1, 2, 4], [2, 1, INF], [INF, 1, 1]]
    rho = profile(r, np.array([1.0, 1.5, 2.0, 3.9, 4.0]))
    assert rho.loc["A"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert rho.loc["B"].tolist() == pytest.approx([2 / 3, 2 / 3, 1, 1, 1])
    assert rho.loc["C"].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1 / 3, 2 / 3])
    # AlgoPerf's score: the area under rho over [1, 4] / 3
    scores = score(profile(r))
    assert scores["A"] == pytest.approx((1 / 3 * 1 + 2 / 3 * 2) / 3, abs=2e-3)
    assert scores["B"] == pytest.approx((2 / 3 * 1 + 1 * 2) / 3, abs=2e-3)
    assert scores["C"] == pytest.approx(1 / 3, abs=2e-3)


def test_a_workload_every_submission_missed_counts_against_all_and_not_run_is_a_miss() -> None:
    costs = COSTS.assign(D=[10.0, np.nan, np.nan])
    costs.loc["w4"] = [INF, INF, INF, INF]
    rho = profile(ratios(costs), np.array([1.0, 4.0]))
    assert rho.loc["D"].tolist() == [0.25, 0.25] and rho.loc["B"].tolist() == [0.5, 0.75]


def test_geometric_mean_speedups_count_a_miss_as_the_budget_plus_one() -> None:
    up = speedups(COSTS, pd.Series([100.0, 100.0, 100.0], index=COSTS.index), "A")
    assert up["A"] == pytest.approx(1.0)
    assert up["B"] == pytest.approx((10 / 20 * 20 / 10 * 101 / 30) ** (1 / 3))
    assert up["C"] == pytest.approx((10 / 40 * 20 / 101 * 101 / 30) ** (1 / 3))


SUITE = """suite: mini
description: two small workloads
shared:
  engine: scan
  backend: jax
  batch_size: [1, 4]
  stateful: false
  validation_fraction: 0.2
  look_back: 3
  steps: 60
  eval_every: 10
  repeats: 2
  search: {trials: 4, studies: 2, space: {learning_rate: {low: 0.001, high: 0.1}}}
workloads:
  - name: sine
    note: a sine is easy; set from a pilot run
    dataset: {name: sine, length: 120, period: 12, noise: 0.05}
    target: {metric: val_rmse, value: 0.3}
  - name: ar
    dataset: {name: ar, length: 200}
    target: {metric: val_rmse, value: 1.5}
"""


def test_a_suite_gives_each_workload_the_shared_keys_and_its_own(tmp_path: Path) -> None:
    write(tmp_path / "s.yaml", SUITE.replace("    target: {metric: val_rmse, value: 1.5}", "    target: {metric: "
          "val_rmse, value: 1.5}\n    batch_size: 8"))  # fmt: skip
    suite = load_suite(tmp_path / "s.yaml")
    sine, ar = (w.scenario.scenario for w in suite.workloads)
    assert [w.name for w in suite.workloads] == ["sine", "ar"] and suite.workloads[0].note.startswith("a sine")
    assert sine.name == "sine" and sine.engine == "scan" and sine.batch_size == [1, 4] and ar.batch_size == 8
    assert sine.search is not None and sine.search.trials == 4


@pytest.mark.parametrize(
    "change,message",
    [
        (("workloads:", "workload:"), "unknown suite key 'workload'; did you mean 'workloads'?"),
        (("  - name: ar", "  - name: sine"), "workload 'sine' is named twice"),
        (("    dataset: {name: ar, length: 200}", "    datset: {name: ar, length: 200}"), "s.yaml:20: key 'datset'"),
        (("  steps: 60", "  steps: -60"), "s.yaml:10: key 'steps'"),
        (("suite: mini", "suite: a/b"), "suite must be a name"),
        (
            ("  steps: 60", "  steps: 60\n  look_back: 5"),
            "s.yaml:11: key 'shared.look_back' given twice (lines 9 and 11); keep one "
            "(a list sweeps: look_back: [3, 5])",
        ),
        (
            (
                "    target: {metric: val_rmse, value: 1.5}",
                "    target: {metric: val_rmse, value: 1.5}\n    dataset: sine",
            ),
            "s.yaml:22: key 'workloads.1.dataset' given twice (lines 20 and 22); keep one (a list sweeps: dataset: "
            "[{name: ar, length: 200}, sine])",
        ),
        (
            ("  - name: ar", "  - name: ar\n    note: x\n    note: y"),
            "key 'workloads.1.note' given twice (lines 20 and 21); keep one\n",
        ),
        (("suite: mini\n", ""), "s.yaml:13: a file with workloads is a suite and needs 'suite: NAME' at the top"),
        (("  - name: sine\n", "  - scenario: nope.yaml\n    name: sine\n"), "s.yaml:15: scenario file "),
    ],
)
def test_a_bad_suite_is_one_line_naming_where(change: tuple[str, str], message: str, tmp_path: Path, cli) -> None:
    write(tmp_path / "s.yaml", SUITE.replace(*change))
    ran = cli("validate", "s.yaml")
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert message in ran.stderr and "Traceback" not in ran.stderr


NILE = """name: nile
dataset: {name: sine, length: 120, period: 12, noise: 0.05}
look_back: 2
batch_size: [1, 2]
epochs: 3
"""


def test_a_workload_may_be_a_scenario_file_with_overrides(tmp_path: Path) -> None:
    """`- nile.yaml` and `- {scenario: nile.yaml, ...}`, relative to the suite file; keys replace the file's,
    and the file's relative paths resolve against the file."""
    write(tmp_path / "scenarios" / "nile.yaml", NILE.replace("{name: sine, length: 120, period: 12, noise: 0.05}",
                                                             "{csv: data/nile.csv, column: value}"))  # fmt: skip
    write(tmp_path / "scenarios" / "data" / "nile.csv", "value\n" + "\n".join(str(i % 7) for i in range(60)) + "\n")
    write(
        tmp_path / "suites" / "s.yaml",
        "suite: files\nshared: {epochs: 2, look_back: 4}\nworkloads:\n  - ../scenarios/nile.yaml\n"
        "  - {scenario: ../scenarios/nile.yaml, name: nile_short, batch_size: 4, note: fewer}\n",
    )
    suite = load_suite(tmp_path / "suites" / "s.yaml")
    plain, short = suite.workloads
    assert (plain.name, short.name, short.note) == ("nile", "nile_short", "fewer")
    # shared, then the file's keys, then the workload's own
    assert plain.scenario.scenario.epochs == 3 and plain.scenario.scenario.look_back == 2
    assert short.scenario.scenario.batch_size == 4 and short.scenario.scenario.epochs == 3
    assert plain.scenario.path == tmp_path / "suites" / "../scenarios/nile.yaml"
    from bench.specs import expand

    assert len(expand(short.scenario)) == 1  # the data file is found from the scenario file's folder
    only = load_suite(tmp_path / "suites" / "s.yaml", ("nile_short",))
    assert [w.name for w in only.workloads] == ["nile_short"] and [n for n, _ in only.listed] == ["nile", "nile_short"]
    with pytest.raises(UserError, match="--workload nope: .* has no such workload; its workloads are nile, nile_short"):
        load_suite(tmp_path / "suites" / "s.yaml", ("nope",))
    write(tmp_path / "scenarios" / "bad.yaml", NILE.replace("epochs: 3", "epochs: -3"))
    write(tmp_path / "suites" / "bad.yaml", "suite: b\nworkloads:\n  - ../scenarios/bad.yaml\n")
    with pytest.raises(UserError, match=r"bad.yaml:3: workload 'nile': .*bad.yaml:5: key 'epochs'"):
        load_suite(tmp_path / "suites" / "bad.yaml")


def test_the_suite_answer_names_the_best_submission_of_each_mode_against_the_runner_up() -> None:
    from bench.report.suite import best_by_mode

    costs = pd.DataFrame(
        {
            "submission": ["stateful, batch 1", "stateful, batch 4", "stateless, batch 1"],
            "mode": ["stateful/streams", "stateful/streams", "stateless"],
        }  # fmt: skip
    )
    scores = pd.DataFrame(
        {"score_steps_to_target": [0.4, 0.9, 0.7], "score_test_rmse": [0.9, 0.1, 0.5]},
        index=pd.Index(costs["submission"], name="submission"),
    )
    assert best_by_mode(costs, scores) == (
        "stateful, batch 4 scores best of the stateful/streams submissions on steps to the validation target (0.90 of "
        "1, the area under its performance profile), ahead of stateful, batch 1 (0.40).",
        "stateless, batch 1 is the only stateless submission scored on steps to the validation target (score 0.70 of "
        "1).",
    )


@pytest.mark.slow
def test_a_suite_runs_into_its_workloads_folders_and_the_suite_report(tmp_path: Path, cli, monkeypatch) -> None:
    from bench.report import build, suite

    calls = {"workload reports": 0, "suite report": 0}

    def counted(module, key: str) -> None:  # noqa: ANN001
        analyse = module.analyse

        def count(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls[key] += 1
            return analyse(*args, **kwargs)

        monkeypatch.setattr(module, "analyse", count)

    counted(build, "workload reports")
    counted(suite, "suite report")
    write(tmp_path / "s.yaml", SUITE)
    some = cli("run", "s.yaml", "--quiet", "--workload", "sine")
    assert some.returncode == 0, some.stderr
    folder = tmp_path / "results" / "mini"
    assert (folder / "sine" / "runs.csv").is_file() and not (folder / "ar").exists()
    assert "not run yet: ar" in some.stdout
    assert (
        "Not run yet, so not scored: ar (lstm-bench run SUITE.yaml --workload ar)"
        in (folder / "report" / "summary.md").read_text()
    )
    calls.update({"workload reports": 0, "suite report": 0})
    ran = cli("run", "s.yaml", "--quiet")  # the rest; sine's runs are already done
    assert ran.returncode == 0, ran.stderr
    # each workload analysed once, for its own report; the suite's report reads those analyses
    assert calls == {"workload reports": 2, "suite report": 0}
    for name in ("sine", "ar"):
        assert (folder / name / "runs.csv").is_file() and (folder / name / "report" / "index.html").is_file()
    report = folder / "report"
    costs = pd.read_csv(report / "costs.csv")
    assert set(costs["workload"]) == {"sine", "ar"} and set(costs["batch_size"]) == {1, 4}
    scores = pd.read_csv(report / "scores.csv").set_index("submission")
    assert set(scores.index) == {"stateless, batch 1", "stateless, batch 4"}
    assert scores["score_test_rmse"].between(0, 1).all() and scores["score_test_rmse"].max() > 0
    assert "speedup_vs_stateless, batch 1" in scores and (report / "performance_profiles.png").stat().st_size > 0
    summary = (report / "summary.md").read_text()
    assert "a sine is easy" in summary and "Performance profiles" in summary and "Not run yet" not in summary
    assert "scores best of the stateless submissions on steps to the validation target" in summary
    assert summary.index("Scores across workloads") < summary.index("Each workload's recommendation")  # answer first
    again = cli("report", str(folder))  # the suite report is written again from the suite folder
    assert again.returncode == 0 and "Suite mini: 2 workloads" in again.stdout, again.stderr
    assert calls["suite report"] == 2
