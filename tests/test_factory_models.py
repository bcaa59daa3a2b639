"""Any Keras model from a Python file: identity by content, the content carried to workers, every bad
factory refused before training in one line, and a factory model through both engines into runs.csv."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import UserError
from bench.scenario import parse_scenario_text
from bench.specs import expand
from clitools import write

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "models" / "gru_lstm.py"

BAD = """
import keras


def raises(look_back, n_features, batch_size, stateful, horizon):
    raise ValueError("units must be even")


def not_a_model(look_back, n_features, batch_size, stateful, horizon):
    return "a model"


def wrong_input(look_back, n_features, batch_size, stateful, horizon):
    inputs = keras.Input(batch_shape=(batch_size, look_back + 1, n_features))
    return keras.Model(inputs, keras.layers.Dense(horizon)(keras.layers.LSTM(2, stateful=stateful)(inputs)))


def wrong_output(look_back, n_features, batch_size, stateful, horizon):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LSTM(2, stateful=stateful)(inputs)))


def fixed_batch(look_back, n_features, batch_size, stateful, horizon):
    inputs = keras.Input(batch_shape=(8, look_back, n_features))
    return keras.Model(inputs, keras.layers.Dense(horizon)(keras.layers.LSTM(2, stateful=stateful)(inputs)))


def compiled(look_back, n_features, batch_size, stateful, horizon):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    model = keras.Model(inputs, keras.layers.Dense(horizon)(keras.layers.LSTM(2, stateful=stateful)(inputs)))
    model.compile(optimizer="sgd", loss="mae")
    return model


def never_stateful(look_back, n_features, batch_size, stateful, horizon):
    inputs = keras.Input(batch_shape=(batch_size, look_back, n_features))
    return keras.Model(inputs, keras.layers.Dense(horizon)(keras.layers.LSTM(2)(inputs)))
"""


def scenario(model: str, extra: str = "", engine: str = "scan") -> str:
    return (
        "name: f\ndataset: {name: sine, length: 120, period: 12, noise: 0.05}\nlook_back: 2\nbatch_size: 2\n"
        f"backend: jax\nengine: {engine}\nepochs: 2\nmodel: {model}\n{extra}"
    )


def factory_specs(folder: Path, model: str = "{factory: m.py:build, params: {gru_units: 4}}", extra: str = ""):
    return expand(parse_scenario_text(scenario(model, extra), folder / "s.yaml"))


def test_a_factory_is_its_content_function_and_params_not_its_path(tmp_path: Path):
    shutil.copy(EXAMPLE, tmp_path / "m.py")
    here = factory_specs(tmp_path)[0]
    (tmp_path / "moved").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "moved" / "m.py")
    assert factory_specs(tmp_path / "moved")[0].run_id == here.run_id
    assert factory_specs(tmp_path, "{factory: m.py:build, params: {gru_units: 6}}")[0].run_id != here.run_id
    (tmp_path / "m.py").write_text(EXAMPLE.read_text() + "\n# changed\n")
    assert factory_specs(tmp_path)[0].run_id != here.run_id
    assert here.model.label == "m.py:build gru_units=4"


@pytest.mark.parametrize(
    "model, message",
    [
        ("{factory: gone.py:build}", "factory file not found"),
        ("{factory: m.py:make}", "defines no function 'make' (its functions: build)"),
        ("{factory: m.py}", "factory must be 'FILE.py:FUNCTION'"),
        ("{factory: m.py:build, units: 3}", "takes 'factory: FILE.py:FUNCTION' and 'params', not 'units'"),
        ("factory", "a factory model is {factory: FILE.py:FUNCTION"),
    ],
)
def test_a_factory_that_cannot_be_found_is_one_line(tmp_path: Path, model: str, message: str):
    shutil.copy(EXAMPLE, tmp_path / "m.py")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        factory_specs(tmp_path, model)


def built_from_content(spec) -> tuple[int, str | None]:  # noqa: ANN001 (runs in a worker)
    from bench.model import build_model
    from bench.models.check import check_model

    return build_model(spec, spec.batch_size).count_params(), check_model(spec)


def weight_notes(spec) -> tuple[str, str]:  # noqa: ANN001 (runs in a worker)
    from bench.engines.scan import weights_note
    from bench.model import seeded_model

    return weights_note(spec), seeded_model(spec, spec.batch_size)[1]


def test_a_factorys_own_compile_is_in_each_runs_notes_on_both_engines(tmp_path: Path, workers):
    write(tmp_path / "bad.py", BAD)
    spec = factory_specs(tmp_path, "{factory: bad.py:compiled}")[0]
    scan_note, fit_note = workers["jax"].submit(weight_notes, spec).result()
    for found in (scan_note, fit_note):
        assert "its factory compiles it (optimizer SGD, loss mae)" in found and "compile() is replaced" in found
    plain = factory_specs(tmp_path, "{factory: bad.py:fixed_batch}")[0]
    assert "compile" not in workers["jax"].submit(weight_notes, plain).result()[0]


def test_a_worker_builds_the_factory_from_its_content_without_the_file(tmp_path: Path, workers):
    shutil.copy(EXAMPLE, tmp_path / "m.py")
    spec = factory_specs(tmp_path)[0]
    (tmp_path / "m.py").unlink()  # as on another machine of a cluster
    params, problem = workers["jax"].submit(built_from_content, spec).result()
    assert params > 0 and problem is None


def problems(specs) -> list[str | None]:  # noqa: ANN001 (runs in a worker)
    from bench.models.check import check_model

    return [check_model(s) for s in specs]


def test_every_bad_factory_is_named_before_training(tmp_path: Path, workers):
    write(tmp_path / "bad.py", BAD)
    cases = {
        "raises": "factory bad.py:raises raised ValueError: units must be even; fix the factory",
        "not_a_model": "factory bad.py:not_a_model returned str, not a keras.Model",
        "wrong_input": "its input is (2, 3, 1), the run's windows are (batch, 2, 1)",
        "wrong_output": "its output is (2, 3), the run needs (batch, horizon), horizon 1",
        "fixed_batch": "its batch size is 8, the run asked for 2; use the batch_size argument",
        "never_stateful": "the run is stateful but the model has no stateful layer",
    }
    specs = [factory_specs(tmp_path, f"{{factory: bad.py:{name}}}")[0] for name in cases]
    found = workers["jax"].submit(problems, specs).result()
    for (name, message), problem in zip(cases.items(), found):
        assert problem is not None and message in problem and "\n" not in problem, (name, problem)


def test_a_bad_factory_stops_validate_with_one_line(tmp_path: Path, cli):
    write(tmp_path / "bad.py", BAD)
    write(tmp_path / "s.yaml", scenario("{factory: bad.py:never_stateful}"))
    refused = cli("validate", "s.yaml")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "no stateful layer" in refused.stderr
    # a factory's own compile() is replaced, and said so before anything runs
    write(tmp_path / "c.yaml", scenario("{factory: bad.py:compiled}"))
    noted = cli("validate", "c.yaml")
    assert noted.returncode == 0, noted.stderr
    assert (
        "note: model bad.py:compiled: its factory compiles it (optimizer SGD, loss mae); lstm-bench trains every "
        "model with the scenario's optimizer (adam) and mean squared error" in " ".join(noted.stderr.split())
    )


@pytest.mark.slow
def test_a_factory_model_runs_on_both_engines_into_runs_csv(tmp_path: Path, cli):
    shutil.copy(EXAMPLE, tmp_path / "m.py")
    write(
        tmp_path / "s.yaml",
        scenario("{factory: m.py:build, params: {gru_units: 4}}", "stateful: false\n", engine="[scan, fit]"),
    )
    ran = cli("run", "s.yaml", "--out", "r", "--no-report", "--quiet")
    assert ran.returncode == 0, ran.stderr
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert sorted(runs["engine"]) == ["fit", "scan"] and (runs["status"] == "ok").all()
    assert set(runs["model"]) == {"m.py:build gru_units=4"}
    assert set(runs["model_summary"]) == {"GRU(4) > LSTM(4) > Dense(16) > Dense(1)"}
    assert runs["n_params"].nunique() == 1 and runs["n_params"].iloc[0] > 0


def probe_own_model(spec) -> tuple[bool, str, str | None]:
    """`scan`'s state probe on the run's own model, and the engine's verdict on the run (in a JAX worker)."""
    from bench.engines.scan import Scan, probe_model

    result = probe_model(spec)
    return result.carries_state, result.detail, Scan().unsupported_reason(spec)


def test_scans_probe_runs_on_the_runs_own_model(tmp_path: Path, workers):
    """A model whose layers ignore `stateful` passes the stand-in probe but not its own: the run is turned away
    (check_models refuses it earlier in a plan; the probe guards runs that reach a worker)."""
    write(tmp_path / "bad.py", BAD)
    shutil.copy(EXAMPLE, tmp_path / "m.py")
    (own,) = factory_specs(tmp_path)
    (never,) = factory_specs(tmp_path, "{factory: bad.py:never_stateful}")
    carries, detail, reason = workers["jax"].submit(probe_own_model, own).result()
    assert carries and "predictions depend on it" in detail and reason is None
    carries, detail, reason = workers["jax"].submit(probe_own_model, never).result()
    assert not carries and "no stateful recurrent layer" in detail
    assert reason is not None and "does not carry the state of this model" in reason
