"""Scenario parsing, sweep expansion, and the one-line errors for every kind of bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.scenario import parse_scenario_text
from bench.specs import derive_seed, expand

BASE = "name: t\ndataset: airline\nepochs: 2\n"


def parse(text: str):
    return parse_scenario_text(text, Path("s.yaml"))


def test_defaults_match_the_issue():
    sc = parse("name: t\ndataset: airline\n").scenario
    assert (sc.test_fraction, sc.difference, sc.scale) == (0.33, False, "minmax")
    assert (sc.units, sc.epochs, sc.learning_rate, sc.backend, sc.device, sc.engine) == (
        4,
        100,
        0.001,
        "tensorflow",
        "cpu",
        "fit",
    )
    assert (sc.layout, sc.layers, sc.optimizer, sc.shuffle, sc.repeats, sc.seed, sc.eval_every) == (
        "streams",
        1,
        "adam",
        False,
        1,
        0,
        0,
    )


def test_sweep_is_the_cartesian_product_with_stateless_runs_once_per_layout():
    sf = parse(
        BASE
        + "look_back: [1, 3]\nbatch_size: [1, 2, 4]\nstateful: [true, false]\n"
        + "layout: [streams, sequential]\nrepeats: 3\n"
    )
    specs = expand(sf)
    # stateful: 2 look_backs x 3 batches x 2 layouts; stateless: 2 x 3 x 1; times 3 repeats
    assert len(specs) == (2 * 3 * 2 + 2 * 3) * 3
    assert {s.layout for s in specs if not s.stateful} == {"none"}
    assert len({s.run_id for s in specs}) == len(specs)


def test_run_id_is_a_content_hash_stable_across_parses_and_scenario_names():
    a = expand(parse(BASE + "batch_size: [1, 2]\n"))
    b = expand(parse(BASE.replace("name: t", "name: other") + "batch_size: [1, 2]\n"))
    assert [s.run_id for s in a] == [s.run_id for s in b]
    c = expand(parse(BASE + "batch_size: [1, 2]\nlearning_rate: 0.01\n"))
    assert not {s.run_id for s in a} & {s.run_id for s in c}


def test_repeat_seeds_are_derived_and_distinct():
    specs = expand(parse(BASE + "repeats: 4\nseed: 7\n"))
    assert [s.seed for s in specs] == [derive_seed(7, r) for r in range(4)]
    assert len({s.seed for s in specs}) == 4


def test_target_turns_on_per_epoch_evaluation():
    (spec,) = expand(parse(BASE + "target: {metric: test_rmse, value: 50.0}\n"))
    assert (spec.eval_every, spec.target_metric, spec.target_value) == (1, "test_rmse", 50.0)


def test_dataset_list_is_a_sweep_axis_and_csv_paths_resolve_against_the_scenario(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.csv").write_text("v\n" + "\n".join(str(i % 7) for i in range(60)))
    sf = parse_scenario_text("name: t\ndataset: [airline, {csv: data/s.csv, column: v}]\n", tmp_path / "s.yaml")
    specs = expand(sf)
    assert [s.dataset.label for s in specs] == ["airline", "s:v"]
    assert specs[1].dataset.params["csv"] == str((tmp_path / "data" / "s.csv").resolve())


BAD = {
    "yaml syntax": ("name: t\ndataset: airline\nbatch_size: [1, 2\n", r"s.yaml:\d+: invalid YAML"),
    "not a mapping": ("- a\n- b\n", "must be a YAML mapping"),
    "unknown key with hint": (
        BASE + "batchsize: 4\n",
        "s.yaml:4: key 'batchsize': unknown key; did you mean 'batch_size'",
    ),
    "unknown nested key": (
        BASE + "target: {metric: test_rmse, valeu: 3}\n",
        "key 'target.valeu': unknown key; did you mean 'value'",
    ),
    "wrong type": (BASE + "batch_size: eight\n", "s.yaml:4: key 'batch_size'"),
    "bool is not an int": (BASE + "units: true\n", "key 'units'"),
    "zero batch": (BASE + "batch_size: [1, 0]\n", "key 'batch_size.1'.*positive"),
    "fraction out of range": (BASE + "test_fraction: 1.5\n", "key 'test_fraction'"),
    "bad choice": (BASE + "layout: interleaved\n", "key 'layout'"),
    "bad name": ("name: 'a b'\ndataset: airline\n", "key 'name'"),
    "missing name": ("dataset: airline\n", "missing required key 'name'"),
    "missing dataset": ("name: t\n", "missing required key 'dataset'"),
    "empty sweep": (BASE + "batch_size: []\n", "empty list"),
    "unknown dataset": ("name: t\ndataset: airlines\n", "unknown dataset 'airlines'; did you mean 'airline'"),
    "bad dataset parameter": (
        "name: t\ndataset: {name: sine, lenght: 100}\n",
        "no parameter 'lenght'; did you mean 'length'",
    ),
    "missing csv": ("name: t\ndataset: {csv: nope.csv, column: v}\n", "s.yaml:2: dataset: CSV file not found"),
    "shuffle with stateful only": (BASE + "shuffle: true\n", "shuffle applies to stateless runs only"),
    "series too short": (BASE + "look_back: 200\n", "look_back 200 leaves no training windows"),
    "batch too large": (BASE + "batch_size: 500\n", "batch_size 500 is larger than the"),
    "dataset name not a string": ("name: t\ndataset: {name: [a]}\n", "s.yaml:2: dataset: give a built-in name"),
    "zero sampling step": ("name: t\ndataset: {name: mackey_glass, sample_every: 0}\n", "'sample_every' must be > 0"),
    "explosive ar": ("name: t\ndataset: {name: ar, coefficients: [1.5]}\n", "explosive process"),
    "only dots": ("name: '..'\ndataset: airline\n", "key 'name': must not be only dots"),
    "bad steps_per_execution": (BASE + "steps_per_execution: all\n", "positive integer or 'auto'"),
    "epochs and steps": (
        BASE + "steps: 500\n",
        "s.yaml:4: key 'steps': a scenario gives a budget in epochs or in steps",
    ),
    "zero steps": ("name: t\ndataset: airline\nsteps: [100, 0]\n", "key 'steps.1'.*positive"),
    "validation target without validation": (
        BASE + "target: {metric: val_rmse, value: 50}\n",
        "target metric val_rmse needs a validation part; add validation_fraction",
    ),
    "validation fraction out of range": (BASE + "validation_fraction: 1\n", "key 'validation_fraction'"),
    "validation part too small": (BASE + "validation_fraction: 0.001\n", "validation_fraction 0.001 of 96"),
    "unknown scaling rule": (BASE + "lr_scaling: square\n", "key 'lr_scaling'"),
    "scan without jax": (
        BASE + "engine: scan\n",
        "key 'engine': engine: scan runs on backend jax only; add backend: jax",
    ),
    "unknown dataset kind": (
        "name: t\ndataset: {xlsx: data.xlsx, column: v}\n",
        r"s.yaml:2: dataset: unknown dataset kind 'xlsx'; the kinds are name: \(a built-in dataset, e.g. airline\), "
        r"csv: FILE or parquet: FILE or excel: FILE; an Excel workbook is read with excel: FILE \(and sheet: "
        r"NAME\), an OpenDocument one once exported$",
    ),
    "misspelt dataset kind": (
        "name: t\ndataset: {cvs: d.csv, column: v}\n",
        r"unknown dataset kind 'cvs'; the kinds are name: .*; did you mean 'csv'\?$",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_line_error(case: str, tmp_path: Path):
    text, pattern = BAD[case]
    with pytest.raises(UserError, match=pattern) as info:
        expand(parse_scenario_text(text, Path("s.yaml")))
    assert "\n" not in str(info.value)


def test_scan_in_a_backend_sweep_runs_only_on_jax():
    specs = expand(parse(BASE + "engine: [fit, scan]\nbackend: [tensorflow, jax]\n"))
    assert sorted((s.backend, s.engine) for s in specs) == [("jax", "fit"), ("jax", "scan"), ("tensorflow", "fit")]


def test_torch_takes_one_batch_per_call():
    (spec,) = expand(parse(BASE + "backend: torch\nsteps_per_execution: auto\n"))
    assert spec.steps_per_execution == 1


def test_the_same_csv_elsewhere_gives_the_same_run_ids(tmp_path: Path):
    ids = []
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "d.csv").write_text("v\n" + "\n".join(str(i % 5) for i in range(60)))
        ids.append(
            [
                s.run_id
                for s in expand(
                    parse_scenario_text("name: t\ndataset: {csv: d.csv, column: v}\n", tmp_path / where / "s.yaml")
                )
            ]
        )
    assert ids[0] == ids[1]
    (tmp_path / "b" / "d.csv").write_text("v\n" + "\n".join(str(i % 6) for i in range(60)))
    changed = [
        s.run_id
        for s in expand(parse_scenario_text("name: t\ndataset: {csv: d.csv, column: v}\n", tmp_path / "b" / "s.yaml"))
    ]
    assert changed != ids[0]


def test_missing_csv_column_names_the_columns(tmp_path: Path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(UserError, match="column 'v' not in .*d.csv; its columns are a, b"):
        expand(parse_scenario_text("name: t\ndataset: {csv: d.csv, column: v}\n", tmp_path / "s.yaml"))


def test_non_numeric_csv_value_names_the_row(tmp_path: Path):
    (tmp_path / "d.csv").write_text("v\n1\n2\nx\n" + "5\n" * 40)
    with pytest.raises(UserError, match=r"d.csv: row 3, column 'v': 'x' is not a number"):
        expand(parse_scenario_text("name: t\ndataset: {csv: d.csv, column: v}\n", tmp_path / "s.yaml"))


def test_run_ids_are_those_lstm_bench_0_1_0_gave(tmp_path: Path):
    """Pinned: the digest of the 1,152 run ids lstm-bench 0.1.0 (commit 00ceef0) expanded from this
    scenario. A change to the schema must not change them, or every older run reruns."""
    (tmp_path / "d.csv").write_text("v\n" + "\n".join(str((i * 7) % 11) for i in range(80)))
    text = (
        "name: golden\ndataset: [airline, {name: sine, length: 200, period: 20, noise: 0.1}, {csv: d.csv, column: v}]\n"
        "look_back: [1, 3]\nbatch_size: [1, 4]\nstateful: [true, false]\nlayout: [streams, sequential]\n"
        "learning_rate: [0.01, 1]\nbackend: [tensorflow, jax, torch]\nengine: [fit, scan]\ndevice: [cpu, gpu]\n"
        "steps_per_execution: auto\nshuffle: true\ntarget: {metric: test_mae, value: 2.5}\nrepeats: 2\nseed: 3\n"
    )
    ids = sorted(s.run_id for s in expand(parse_scenario_text(text, tmp_path / "s.yaml")))
    assert len(ids) == 1152
    assert hashlib.sha256(",".join(ids).encode()).hexdigest()[:16] == "aea943ad1c76fa47"


@pytest.mark.parametrize(
    "rule,expected",
    [
        ("none", [0.01, 0.01, 0.01, 0.01]),
        ("linear", [0.005, 0.01, 0.02, 0.08]),
        ("sqrt", [0.01 / 2**0.5, 0.01, 0.01 * 2**0.5, 0.01 * 8**0.5]),
    ],
)
def test_the_learning_rate_is_scaled_from_the_base_batch_size(rule: str, expected: list[float]):
    specs = expand(
        parse(BASE + f"batch_size: [1, 2, 4, 16]\nlearning_rate: 0.01\nlr_scaling: {rule}\nbase_batch_size: 2\n")
    )
    by_batch = {s.batch_size: s for s in specs}
    assert [by_batch[b].learning_rate for b in (1, 2, 4, 16)] == pytest.approx(expected)
    assert {s.base_learning_rate for s in specs} == {0.01} and {s.lr_scaling for s in specs} == {rule}


def test_a_step_budget_replaces_epochs_and_sweeps():
    specs = expand(parse("name: t\ndataset: airline\nsteps: [100, 300]\n"))
    assert sorted((s.epochs, s.steps) for s in specs) == [(None, 100), (None, 300)]
    assert len({s.run_id for s in specs}) == 2


def test_new_keys_at_their_defaults_leave_run_ids_alone():
    plain = expand(parse(BASE))
    explicit = expand(
        parse(BASE + "validation_fraction: 0\nlr_scaling: none\nbase_batch_size: 1\nnoise_scale: false\n")
    )
    assert [s.run_id for s in plain] == [s.run_id for s in explicit]
    assert expand(parse(BASE + "noise_scale: true\n"))[0].run_id != plain[0].run_id


def test_a_validation_target_with_a_step_budget_evaluates_every_eval_every_steps():
    text = (
        "name: t\ndataset: airline\nvalidation_fraction: 0.2\nsteps: 400\neval_every: 50\n"
        "target: {metric: val_rmse, value: 40}\n"
    )
    (spec,) = expand(parse(text))
    assert (spec.eval_every, spec.target_metric, spec.steps, spec.epochs) == (50, "val_rmse", 400, None)


TWICE = {
    "top level": (
        "name: t\ndataset: airline\nbatch_size: [1, 4]\nepochs: 2\nbatch_size: 16\n",
        "s.yaml:5: key 'batch_size' given twice (lines 3 and 5); keep one (a list sweeps: batch_size: [1, 4, 16])",
    ),
    "quoted the second time": (
        BASE + '"epochs": 3\n',
        "s.yaml:4: key 'epochs' given twice (lines 3 and 4); keep one (a list sweeps: epochs: [2, 3])",
    ),
    "a dataset": (
        "name: t\ndataset: airline\nepochs: 2\ndataset: {name: sine, length: 100}\n",
        "s.yaml:4: key 'dataset' given twice (lines 2 and 4); keep one (a list sweeps: dataset: [airline, {name: sine, "
        "length: 100}])",
    ),
    "inside a dataset": (
        "name: t\ndataset: {name: sine, length: 100, length: 200}\n",
        "s.yaml:2: key 'dataset.length' given twice (on line 2); keep one",
    ),
    "in a dataset list": (
        "name: t\ndataset:\n  - airline\n  - name: sine\n    period: 12\n    name: ar\n",
        "s.yaml:6: key 'dataset.1.name' given twice (lines 4 and 6); keep one",
    ),
    "in a search block": (
        BASE + "search:\n  trials: 4\n  space:\n    learning_rate: {low: 0.001, high: 0.1}\n"
        "    learning_rate: {low: 0.01, high: 1}\n",
        "s.yaml:8: key 'search.space.learning_rate' given twice (lines 7 and 8); keep one",
    ),
    "in a target": (
        BASE + "target:\n  value: 3\n  metric: test_rmse\n  value: 4\n",
        "s.yaml:7: key 'target.value' given twice (lines 5 and 7); keep one",
    ),
}


@pytest.mark.parametrize("case", sorted(TWICE))
def test_a_key_given_twice_is_an_error_at_any_depth(case: str) -> None:
    text, message = TWICE[case]
    with pytest.raises(UserError) as info:
        parse(text)
    assert str(info.value) == message


def test_a_merged_key_may_be_given_again() -> None:
    (spec,) = expand(parse("name: t\nepochs: 2\ndataset: {<<: {name: sine, length: 100}, length: 200}\n"))
    assert spec.dataset.params["length"] == 200


def test_a_scenario_path_that_is_a_directory_names_a_file_in_it(tmp_path: Path, cli) -> None:
    for name in ("quickstart.yaml", "sweep.yaml"):
        (tmp_path / "scenarios").mkdir(exist_ok=True)
        (tmp_path / "scenarios" / name).write_text(BASE)
    (tmp_path / "empty").mkdir()
    ran = cli("validate", "scenarios")
    assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.strip().splitlines() == [
        "error: scenarios/ is a directory, not a scenario file; give a .yaml file in it, e.g. "
        "scenarios/quickstart.yaml, or all of them with scenarios/*.yaml"
    ]
    ran = cli("run", "empty/")
    assert ran.returncode == 2 and ran.stderr.strip().splitlines() == [
        "error: empty/ is a directory, not a scenario file; give the path of a .yaml scenario file"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "scenarios"]
