"""A fair batch-size sweep end to end through the CLI: validation split, learning rates trained
together, a step budget, steps to a validation target and the gradient noise scale, into runs.csv."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.store import Store
from clitools import run_in_process, write
from runspecs import run_scenario

TUNED = """
name: tuned
dataset: {name: sine, length: 120, period: 12, noise: 0.05}
look_back: 2
batch_size: [1, 4]
stateful: [true, false]
learning_rate: [0.003, 0.03]
validation_fraction: 0.25
steps: 60
eval_every: 10
target: {metric: val_rmse, value: 10}
noise_scale: true
repeats: 2
backend: jax
engine: scan
"""

# the tuned protocol end to end (every run of a sweep): with the slow checks
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tuned")
    write(root / "tuned.yaml", TUNED)
    done = run_in_process("run", "tuned.yaml", "--out", "out", "--no-report", cwd=root)
    assert done.returncode == 0, done.stderr
    with closing(Store.open(root / "out", create=False)) as store:
        epochs = store.epochs()
    return pd.read_csv(root / "out" / "runs.csv"), epochs


def test_every_run_takes_exactly_its_step_budget(tuned) -> None:
    runs, epochs = tuned
    assert len(runs) == 2 * 2 * 2 * 2 and set(runs.status) == {"ok"}
    assert set(runs.steps_run) == {60} and runs.epochs.isna().all()
    # 58 training windows: batch 1 takes 58 steps an epoch, then 2 of a partial one; stateless batch 4 takes
    # 15 steps an epoch (4 whole epochs), stateful batch 4 keeps 56 windows in 14 steps (4 whole epochs and 4 steps)
    epochs_run = runs.groupby(["batch_size", "stateful"]).epochs_run.max()
    assert dict(epochs_run) == {(1, False): 2, (1, True): 2, (4, False): 4, (4, True): 5}
    assert set(epochs.groupby("run_id").step.max()) == {60}


def test_validation_metrics_and_steps_to_a_validation_target_are_recorded(tuned) -> None:
    runs, epochs = tuned
    assert runs.val_rmse.notna().all() and runs.val_mae.notna().all()
    assert (runs.val_rmse != runs.test_rmse).all()
    assert set(runs.target_metric) == {"val_rmse"}
    # a target this loose is met at the first evaluation, 10 steps into the first epoch (58, 14 or 15 steps long)
    assert set(runs.steps_to_target) == {10} and set(runs.target_resolution) == {10}
    assert runs.epochs_to_target.eq(1).all()


def test_learning_rates_and_repeats_of_a_batch_size_train_together(tuned) -> None:
    runs, _ = tuned
    assert set(runs.base_learning_rate) == {0.003, 0.03} and (runs.learning_rate == runs.base_learning_rate).all()
    assert set(runs.trained_together) == {4}  # 2 rates x 2 repeats in one vmapped program


def test_the_gradient_noise_scale_is_recorded_per_epoch_and_per_run(tuned) -> None:
    runs, epochs = tuned
    assert np.isfinite(runs.grad_noise_scale).all()
    assert epochs.grad_noise_scale.notna().all()


def test_an_engine_without_the_noise_scale_runs_and_says_so(tmp_path: Path, workers) -> None:
    text = "name: f\ndataset: {name: sine, length: 60}\nsteps: 5\nnoise_scale: true\n"
    (run,) = workers["tensorflow"].submit(run_scenario, text, str(tmp_path)).result()
    assert run.status == "ok" and run.steps_run == 5 and run.grad_noise_scale is None
    assert "grad_noise_scale: unsupported by engine fit" in run.notes


def test_compiled_programs_outlive_the_process(tuned) -> None:
    # the workers wrote their compiled epochs to the persistent cache (this session's own folder, conftest.py)
    assert any(Path(os.environ["LSTM_BENCH_CACHE_DIR"]).iterdir())


def test_the_compilation_cache_folder_is_per_user_and_can_be_moved_or_turned_off(monkeypatch, tmp_path: Path) -> None:
    from bench.backends.jax import compilation_cache_dir

    monkeypatch.delenv("LSTM_BENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "lstm-bench" / "jax"
    monkeypatch.setenv("LSTM_BENCH_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert compilation_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("LSTM_BENCH_CACHE_DIR", "off")
    assert compilation_cache_dir() is None
