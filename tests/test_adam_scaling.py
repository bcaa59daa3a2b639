"""Adam's hyperparameters as scenario keys, and the rules that scale them with batch size: `beta_2_scaling:
half_life` (beta_2's half-life fixed in samples) and `lr_scaling: adam_sqrt` (Malladi et al. 2022); both
engines train with the values a run records (fit against scan: tests/engines/test_equivalence.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.scenario import parse_scenario_text
from bench.specs import expand
from clitools import write

BASE = "name: a\ndataset: airline\nepochs: 2\nbatch_size: [1, 4, 16]\nstateful: false\n"


def by_batch(extra: str) -> dict[int, object]:
    return {s.batch_size: s for s in expand(parse_scenario_text(BASE + extra, Path("a.yaml")))}


def test_the_defaults_keep_the_run_ids_and_are_keras_adams():
    default = by_batch("")
    assert [s.run_id for s in default.values()] == [
        s.run_id for s in by_batch("beta_1: 0.9\nbeta_2: 0.999\nepsilon: 1.0e-7\n").values()
    ]
    assert {(s.beta_1, s.beta_2, s.epsilon) for s in default.values()} == {(0.9, 0.999, 1e-7)}


def test_half_life_keeps_beta_2s_half_life_in_samples():
    runs = by_batch("beta_2: 0.99\nbeta_2_scaling: half_life\n")
    for b, s in runs.items():
        assert s.beta_2 == pytest.approx(0.99**b)
        half_life_samples = b * math.log(0.5) / math.log(s.beta_2)  # steps x batch size
        assert half_life_samples == pytest.approx(math.log(0.5) / math.log(0.99))
    assert runs[1].beta_1 == 0.9 and runs[16].learning_rate == runs[1].learning_rate


def test_adam_sqrt_is_malladis_square_root_rule():
    runs = by_batch("learning_rate: 0.001\nbeta_1: 0.99\nbeta_2: 0.9999\nepsilon: 1.0e-6\nlr_scaling: adam_sqrt\n")
    s = runs[16]
    assert s.learning_rate == pytest.approx(0.004) and s.base_learning_rate == 0.001
    assert 1 - s.beta_1 == pytest.approx(16 * 0.01) and 1 - s.beta_2 == pytest.approx(16 * 0.0001)
    assert s.epsilon == pytest.approx(1e-6 / 4)
    assert (runs[1].beta_1, runs[1].beta_2, runs[1].epsilon) == (0.99, 0.9999, 1e-6)


@pytest.mark.parametrize(
    "extra,message",
    [
        ("lr_scaling: adam_sqrt\n", "adam_sqrt takes beta_1 to -0.6 at batch size 16"),
        ("optimizer: sgd\nbeta_2: 0.99\n", "beta_2 set Adam's hyperparameters, but the optimizer is sgd"),
        ("optimizer: rmsprop\nbeta_2_scaling: half_life\n", "beta_2_scaling set Adam's hyperparameters"),
        ("beta_1: 1.0\n", "beta_1"),
        ("beta_2_scaling: halflife\n", "beta_2_scaling"),
    ],
)
def test_impossible_adam_settings_are_one_line(extra: str, message: str, tmp_path: Path, cli):
    write(tmp_path / "a.yaml", BASE + extra)
    ran = cli("validate", "a.yaml")
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert message in ran.stderr and "Traceback" not in ran.stderr
