"""The fit engine: steps_per_execution, devices, the per-epoch bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scenario import parse_scenario_text
from bench.specs import expand
from runspecs import run_scenario

SPE = """
name: spe
dataset: {{name: sine, length: 120, period: 12, noise: 0.05}}
look_back: 2
batch_size: 4
stateful: {stateful}
epochs: 3
backend: {backend}
steps_per_execution: {spe}
"""


# JAX's fit runs only stateless work here (its stateful fit drops the state): checked with -m slow
@pytest.mark.parametrize(
    "backend,stateful",
    [
        pytest.param("tensorflow", True, marks=pytest.mark.slow),
        pytest.param("tensorflow", False, marks=pytest.mark.slow),
        pytest.param("jax", False, marks=pytest.mark.slow),
    ],
)
def test_steps_per_execution_gives_identical_losses(backend: str, stateful: bool, workers, tmp_path: Path):
    losses = {}
    for spe in ("1", "8", "auto"):
        text = SPE.format(backend=backend, stateful=str(stateful).lower(), spe=spe)
        (result,) = workers[backend].submit(run_scenario, text, str(tmp_path)).result()
        assert result.status == "ok", result.error
        losses[spe] = [e.loss for e in result.epochs]
    assert losses["1"] == losses["8"] == losses["auto"]
    assert len(losses["1"]) == 3


def test_a_gpu_run_without_a_gpu_is_unsupported_with_the_reason(workers, tmp_path: Path):
    text = SPE.format(backend="tensorflow", stateful="false", spe="1") + "device: gpu\n"
    (result,) = workers["tensorflow"].submit(run_scenario, text, str(tmp_path)).result()
    assert result.status == "unsupported"
    assert "sees no GPU" in result.error and "device: cpu or auto" in result.error


@pytest.mark.parametrize("gpu_backends,expected", [(set(), "cpu"), ({"tensorflow"}, "gpu"), ({"jax"}, "cpu")])
def test_device_auto_picks_the_gpu_for_backends_that_can_use_one(gpu_backends: set[str], expected: str):
    sf = parse_scenario_text("name: a\ndataset: airline\ndevice: auto\n", Path("s.yaml"))
    (spec,) = expand(sf, gpu_backends)
    assert spec.device == expected


def test_target_and_eval_every_record_per_epoch_test_rmse(workers, tmp_path: Path):
    text = SPE.format(backend="tensorflow", stateful="true", spe="1") + "target: {metric: test_rmse, value: 1000.0}\n"
    (result,) = workers["tensorflow"].submit(run_scenario, text, str(tmp_path)).result()
    assert all(e.test_rmse is not None for e in result.epochs)
    assert result.epochs_to_target == 1  # any model beats an RMSE of 1000 on a unit sine
    # compilation left out: the first epoch counts as long as the median later one
    later = sorted(e.seconds for e in result.epochs[1:])
    assert result.seconds_to_target == pytest.approx(min(result.epochs[0].seconds, (later[0] + later[1]) / 2))
    # 3 epochs leave 2 steady rounds: calibration times more of the compiled epoch, and the first, compiling
    # epoch is never one of them
    t = result.throughput
    assert t.timed_rounds >= 5 and t.calibration_rounds == t.timed_rounds - 2
    assert 0 < t.compile_seconds < result.epochs[0].seconds
    assert t.sps_min <= t.sps_q1 <= t.sps_median <= t.sps_q3 <= t.sps_max


def test_non_finite_loss_is_recorded_as_diverged(workers, tmp_path: Path):
    text = (
        SPE.format(backend="tensorflow", stateful="false", spe="1").replace("epochs: 3", "epochs: 4")
        + "learning_rate: 1.0e+30\noptimizer: sgd\n"
    )
    (result,) = workers["tensorflow"].submit(run_scenario, text, str(tmp_path)).result()
    assert result.status == "diverged" and result.diverged_epoch is not None
    assert len(result.epochs) == result.diverged_epoch and result.metrics is None
