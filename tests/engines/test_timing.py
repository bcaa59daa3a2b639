"""Speed measured like a benchmark and evaluation inside the epoch, on the real engines: calibration that
leaves the metrics alone, a throughput band for runs trained together, mid-epoch steps to target, and a
busy machine flagged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.diagnostics import Evidence, check
from bench.report.load import Results
from bench.report.stats import busy_runs
from runspecs import run_scenario
from worker_checks import run_scenario_calibrated, run_scenario_together

AIRLINE = "name: t\ndataset: airline\nlook_back: 3\nunits: 4\nlearning_rate: 0.01\n"
MID_EPOCH = (
    AIRLINE + "batch_size: 1\nstateful: true\nvalidation_fraction: 0.2\nsteps: 120\neval_every: 10\n"
    "target: {{metric: val_rmse, value: {value}}}\nbackend: {backend}\nengine: {engine}\n"
)


# TensorFlow `fit` takes about 15 s a check here: behind -m slow, which CI runs too
ENGINES = [("jax", "scan"), pytest.param("tensorflow", "fit", marks=pytest.mark.slow)]


@pytest.mark.parametrize("backend,engine", ENGINES)
def test_a_step_budget_evaluates_inside_the_epoch(backend: str, engine: str, workers, tmp_path: Path) -> None:
    # airline at batch 1 with a validation split: 74 steps an epoch; evaluation every 10 steps
    text = MID_EPOCH.format(value=1.0e9, backend=backend, engine=engine)
    (easy,) = workers[backend].submit(run_scenario, text, str(tmp_path)).result()
    assert easy.status == "ok", easy.error
    assert easy.epochs[0].step == 74 and easy.target_resolution == 10
    assert easy.steps_to_target == 10  # the first evaluation, 10 steps into the first epoch (74 before)
    assert easy.seconds_to_target < easy.epochs[0].seconds  # training time to step 10, evaluation excluded
    # the first epoch's row carries its last evaluation (step 70), the second's its own (step 120)
    assert [e.eval_step for e in easy.epochs] == [70, 120]
    # a target met later is still found to 10 steps, not to the 74 of an epoch
    (later,) = workers[backend].submit(run_scenario, text.replace("1000000000", "60"), str(tmp_path)).result()
    if later.steps_to_target is not None:
        assert later.steps_to_target % 10 == 0


@pytest.mark.parametrize("backend,engine", ENGINES)
def test_calibration_times_more_rounds_without_changing_what_the_run_learned(
    backend: str, engine: str, workers, tmp_path: Path
) -> None:
    text = AIRLINE + f"batch_size: 4\nstateful: [true, false]\nepochs: 3\nbackend: {backend}\nengine: {engine}\n"
    plain = workers[backend].submit(run_scenario_calibrated, text, str(tmp_path), 0).result()
    calibrated = workers[backend].submit(run_scenario_calibrated, text, str(tmp_path), 12).result()
    for a, b in zip(plain, calibrated, strict=True):
        assert a.status == b.status == "ok", (a.error, b.error)
        assert a.throughput.calibration_rounds == 0 and a.throughput.timed_rounds == 2  # epochs 2 and 3
        assert b.throughput.calibration_rounds >= 10 and b.throughput.timed_rounds >= 12
        assert a.metrics == b.metrics
        assert [e.loss for e in a.epochs] == [e.loss for e in b.epochs]


def test_runs_trained_together_record_the_machine_throughput_and_a_band(workers, tmp_path: Path) -> None:
    text = AIRLINE + "batch_size: 2\nstateful: true\nepochs: 4\nrepeats: 5\nbackend: jax\nengine: scan\n"
    results = workers["jax"].submit(run_scenario_together, text, str(tmp_path)).result()
    assert {r.trained_together for r in results} == {5}
    t = results[0].throughput
    assert t.machine_samples_per_sec == pytest.approx(5 * t.samples_per_sec)
    assert t.timed_rounds >= 5 and t.sps_q1 < t.sps_q3  # the rounds' spread: a band, though repeats share it
    assert all(r.conditions is not None and r.conditions.other_cpu_share is not None for r in results)


def test_a_sweep_timed_while_the_cpu_is_busy_is_flagged(workers, tmp_path: Path) -> None:
    text = AIRLINE + "batch_size: 1\nstateful: true\nepochs: 30\nbackend: jax\nengine: scan\n"
    burners = [
        subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 60: pass"])
        for _ in range(2)
    ]
    try:
        busy = workers["jax"].submit(run_scenario, text, str(tmp_path)).result()
    finally:
        for p in burners:
            p.kill()
    frame = lambda results: pd.DataFrame(  # noqa: E731
        [dict(status=r.status, other_cpu_share=r.conditions.other_cpu_share, cpu_steal=r.conditions.cpu_steal)
         for r in results]
    )  # fmt: skip
    assert busy_runs(frame(busy)).all(), frame(busy)
    busy_machine = lambda runs: check("busy_machine")(Evidence(Results(runs, pd.DataFrame(), ()), runs, 0.02))  # noqa: E731
    (warning,) = busy_machine(frame(busy))
    assert "busy machine" in warning.message and np.isfinite(frame(busy)["other_cpu_share"]).all()
    # the same runs with the load taken away are not flagged: a condition this test sets, so it holds on a machine
    # that is busy before the test starts (an idle run measured here would not be idle there)
    quiet = frame(busy).assign(other_cpu_share=0.0, cpu_steal=0.0)
    assert not busy_runs(quiet).any() and busy_machine(quiet) == []
