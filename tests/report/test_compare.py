"""Compare two synthetic results folders with known throughput ratios."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bench.commands.compare import comparison_table, comparison_text
from bench.report.compare import write_comparison
from report_fixtures import save, synthetic_results

RATIOS = {1: 0.5, 4: 1.0, 32: 4.0}  # B (gpu) relative to A (cpu)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("compare")
    cpu = synthetic_results(batch_sizes=tuple(RATIOS), device="cpu")
    gpu = synthetic_results(batch_sizes=(*RATIOS, 64), device="gpu", speed=lambda bs: RATIOS.get(bs, 8.0), failed=False)
    a = save(root / "cpu", [dataclasses.replace(r, kernel="generic") for r in cpu])
    b = save(root / "gpu", [dataclasses.replace(r, kernel="cudnn") for r in gpu])
    return write_comparison(a, b, "cpu", "gpu")


def test_speedups_and_crossover(comparison) -> None:
    table = comparison.table
    assert set(table["series"]) == {"stateful/streams", "stateless"}
    for (_, bs), row in table.set_index(["series", "batch_size"]).iterrows():
        assert row["speedup"] == pytest.approx(RATIOS[bs])
        assert row["pairs"] == 3
        assert row["rmse_diff"] == pytest.approx(0.0)  # same seeds, same synthetic accuracy
    assert [c.batch_size for c in comparison.crossovers] == [32, 32]
    assert "faster from batch size 32" in comparison.crossovers[0].verdict


def test_unpaired_runs_listed(comparison) -> None:
    unpaired = comparison.unpaired
    reasons = dict(zip(zip(unpaired["side"], unpaired["status"], unpaired["batch_size"]), unpaired["reason"]))
    assert reasons[("cpu", "failed", 1)] == "status failed"
    assert reasons[("cpu", "diverged", 1)] == "status diverged"
    assert reasons[("gpu", "diverged", 1)] == "status diverged"
    only_b = unpaired[unpaired["reason"].str.startswith("no ok run in cpu")]
    assert sorted(only_b["batch_size"]) == [64] * 6


def test_files_and_terminal_table(comparison) -> None:
    out: Path = comparison.out
    assert out == comparison.out.parent / "compare" and out.parent.name == "gpu"
    for name in ("index.html", "summary.md", "speedup.png", "speedup.svg", "comparison.csv"):
        assert (out / name).stat().st_size > 0, name
    csv = pd.read_csv(out / "comparison.csv")
    assert len(csv) == 6
    assert "faster from batch size 32" in (out / "summary.md").read_text()
    assert comparison_table(comparison).row_count == 6
    text = comparison_text(comparison)
    assert "samples/s gpu" in text and "140,800" in text and "stateless: gpu is faster from batch size 32" in text
    assert "9 unpaired runs" in text
    # counted per reason, each run listed with its reason
    assert "6 of gpu: no ok run in cpu with the same configuration and repeat" in text
    assert "1 of cpu: status failed" in text and "2 of" not in text.split("unpaired runs")[1].split("\n")[1]
    assert "cpu " + comparison.unpaired.query("status == 'failed'")["run_id"].iloc[0] in text
    # which LSTM kernel each side ran, per batch size
    assert set(csv["kernel_a"]) == {"generic"} and set(csv["kernel_b"]) == {"cudnn"}
    assert "LSTM kernel gpu" in (out / "summary.md").read_text()


def test_b_faster_everywhere_has_no_crossover(tmp_path: Path) -> None:
    a = save(tmp_path / "a", synthetic_results(stateful=(True,), failed=False, diverged=False))
    b = save(
        tmp_path / "b",
        synthetic_results(stateful=(True,), failed=False, diverged=False, engine="scan", speed=lambda bs: 2.0),
    )
    c = write_comparison(a, b, out=tmp_path / "out")
    assert c.crossover is None and "faster at every batch size" in c.crossovers[0].verdict
    assert c.table["speedup"].tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert set(c.table["kernel_a"]) == {"not recorded"}  # runs that predate the kernel column
    assert c.unpaired.empty


def test_nothing_in_common(tmp_path: Path) -> None:
    a = save(tmp_path / "a", synthetic_results(look_back=3, failed=False, diverged=False))
    b = save(tmp_path / "b", synthetic_results(look_back=6, failed=False, diverged=False))
    c = write_comparison(a, b, out=tmp_path / "out")
    assert c.table.empty and c.crossover is None and len(c.unpaired) == 36
    assert "nothing to compare" in (tmp_path / "out" / "summary.md").read_text()


def test_backends_that_trained_repeats_differently_pair_on_machine_throughput(tmp_path: Path) -> None:
    """TensorFlow fit (repeats one at a time, steps_per_execution auto) against a backend whose runs
    trained 3 repeats together: every run pairs, and speeds compare as machine throughput."""
    a = save(tmp_path / "tf", synthetic_results(failed=False, diverged=False, steps_per_execution="auto"))
    together = [
        dataclasses.replace(
            r, spec=dataclasses.replace(r.spec, backend="torch", steps_per_execution=1), trained_together=3
        )
        for r in synthetic_results(failed=False, diverged=False)
    ]
    b = save(tmp_path / "torch", together)
    c = write_comparison(a, b, "tf", "torch", tmp_path / "out")
    assert c.unpaired.empty and c.table["pairs"].sum() == 18
    assert c.basis.startswith("machine throughput") and "tf: 1 at a time, torch: 3" in c.basis_note
    assert c.table["speedup"].tolist() == pytest.approx([3.0] * 6)  # the same per-run samples/s, 3 runs at once
    assert (
        "machine throughput" in comparison_text(c)
        and "machine samples/s" in (tmp_path / "out" / "summary.md").read_text()
    )


def test_each_speedup_has_an_interval_and_overlapping_ones_are_indistinguishable(comparison) -> None:
    rows = comparison.table[comparison.table["series"] == "stateless"].set_index("batch_size")
    # the repeats' speeds spread +-10%: 0.5x is slower, 1x cannot be told apart, 4x is faster
    assert rows.loc[1, "speed_verdict"] == "slower" and rows.loc[32, "speed_verdict"] == "faster"
    assert rows.loc[4, "speed_verdict"] == "indistinguishable"
    assert rows.loc[4, "speedup_low"] < 1.0 < rows.loc[4, "speedup_high"]
    assert "indistinguishable" in comparison_text(comparison)


def test_a_busy_side_and_different_conditions_are_warned_about(tmp_path: Path) -> None:
    from bench.results import Conditions

    def timed(results, other: float):
        return [dataclasses.replace(r, conditions=Conditions(0.5, 0.0, other)) for r in results]

    plain = dict(failed=False, diverged=False)
    a = save(tmp_path / "a", timed(synthetic_results(**plain), 0.02))
    b = save(tmp_path / "b", timed(synthetic_results(**plain, engine="scan"), 0.6))
    c = write_comparison(a, b, out=tmp_path / "out")
    assert len(c.warnings) == 2
    assert c.warnings[0].startswith("B: 18 of 18 runs were timed on a busy machine")
    assert "different conditions" in c.warnings[1] and "warning: B: 18 of 18" in comparison_text(c)
    assert "warning: the sides ran under different conditions" in (tmp_path / "out" / "summary.md").read_text()
    quiet = write_comparison(a, save(tmp_path / "c", timed(synthetic_results(**plain, engine="scan"), 0.03)))
    assert quiet.warnings == ()


def _models(results, name: str):
    from bench.models.base import ModelSpec

    return [dataclasses.replace(r, spec=dataclasses.replace(r.spec, model=ModelSpec(name=name))) for r in results]


def test_models_swept_in_both_folders_on_different_engines_pair_every_run(tmp_path: Path) -> None:
    """Folder A trains lstm and gru on fit, folder B the same on scan: the engine is what differs, the model
    stays in the pairing key and becomes a column and a series."""
    plain = dict(failed=False, diverged=False)
    a = save(
        tmp_path / "fit", [*_models(synthetic_results(**plain), "lstm"), *_models(synthetic_results(**plain), "gru")]
    )
    runs_b = [
        *_models(synthetic_results(**plain, engine="scan"), "lstm"),
        *_models(synthetic_results(**plain, engine="scan"), "gru"),
    ]
    b = save(tmp_path / "scan", runs_b)
    c = write_comparison(a, b, "fit", "scan", tmp_path / "out")
    assert c.pairing.differing == ("engine",)
    assert c.unpaired.empty and c.table["pairs"].sum() == 36
    assert set(c.table["model"]) == {"lstm", "gru"} and "model" in pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert {s.split(", ")[1] for s in c.table["series"]} == {"model=lstm", "model=gru"}
    assert len(c.pairing.sentences) == 4


def test_a_compared_axis_with_a_shared_value_pairs_on_it_and_says_why_others_are_ambiguous(tmp_path: Path) -> None:
    plain = dict(failed=False, diverged=False, stateful=(True,))
    a = save(
        tmp_path / "a", [*_models(synthetic_results(**plain), "lstm"), *_models(synthetic_results(**plain), "gru")]
    )
    b = save(tmp_path / "b", _models(synthetic_results(**plain, engine="scan"), "simple_rnn"))
    c = write_comparison(a, b, out=tmp_path / "out")
    # no model in common: the model is compared too, so A's two models compete for each run of B
    assert set(c.pairing.differing) == {"engine", "model"} and c.table.empty
    reasons = set(c.unpaired.loc[c.unpaired["side"] == "A", "reason"])
    assert reasons == {"ambiguous: 2 ok runs in A share this configuration and repeat, differing in model "
                       "(compare those with --by model)"}  # fmt: skip
    assert "18 of A: ambiguous: 2 ok runs in A" in comparison_text(c)


def test_a_folder_with_three_backends_compared_by_backend_pairs_every_backend(tmp_path: Path, cli) -> None:
    from bench.report.compare import compare_by

    plain = dict(failed=False, diverged=False, stateful=(True,))
    runs = [
        *synthetic_results(**plain, backend="tensorflow"),
        *synthetic_results(**plain, backend="jax", speed=lambda bs: 2.0),
        *synthetic_results(**plain, backend="torch", speed=lambda bs: 4.0),
    ]
    folder = save(tmp_path / "crossover", runs)
    comparisons = compare_by(folder, "backend")
    assert [(c.label_a, c.label_b) for c in comparisons] == [
        ("jax", "tensorflow"),
        ("jax", "torch"),
        ("tensorflow", "torch"),
    ]
    for c, ratio in zip(comparisons, (0.5, 2.0, 4.0), strict=True):
        assert c.unpaired.empty and c.table["pairs"].sum() == 9
        assert c.table["speedup"].tolist() == pytest.approx([ratio] * 3)
        assert (c.out / "summary.md").exists() and c.out.parent == folder / "compare" / "by-backend"
    ran = cli("compare", str(folder), "--by", "backend")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.count("every run paired") == 3 and "torch vs jax" in ran.stdout
    for args, message in (
        (("--by", "look_back"), "--by look_back: compare along one of dataset, engine, backend, device, model"),
        (("--by", "engine"), "holds one engine (fit); sweep engine"),
        ((str(folder), "--by", "backend"), "compares inside one folder"),
        ((), "compare needs two results folders"),
    ):
        bad = cli("compare", str(folder), *args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def _shifted(results, rmse_shift):
    return [
        dataclasses.replace(
            r,
            metrics=dataclasses.replace(
                r.metrics, test_rmse=r.metrics.test_rmse + rmse_shift(r.spec.batch_size, r.spec.repeat)
            ),
        )
        for r in results
    ]


def test_accuracy_verdicts_judge_the_paired_difference_against_the_margin(tmp_path: Path) -> None:
    """B's RMSE is A's minus 5 at batch 1 (better), plus 5 at 4 (worse), within +-0.1 at 16 (A's RMSE is about
    49, so the 2% margin is about 1: within margin), and -3, 0, +3 over the repeats at 64 (inconclusive)."""
    plain = dict(failed=False, diverged=False, stateful=(True,), batch_sizes=(1, 4, 16, 64))
    shift = {1: lambda r: -5.0, 4: lambda r: 5.0, 16: lambda r: 0.1 * (r - 1), 64: lambda r: 3.0 * (r - 1)}
    a = save(tmp_path / "a", synthetic_results(**plain))
    b = save(tmp_path / "b", _shifted(synthetic_results(**plain, engine="scan"), lambda bs, rep: shift[bs](rep)))
    c = write_comparison(a, b, out=tmp_path / "out")
    verdicts = dict(zip(c.table["batch_size"], c.table["accuracy_verdict"]))
    assert verdicts == {1: "better", 4: "worse", 16: "within margin", 64: "inconclusive"}
    row = c.table.set_index("batch_size").loc[1]
    assert row["rmse_diff"] == pytest.approx(-5.0) and row["rmse_diff_low"] == row["rmse_diff_high"] == pytest.approx(
        -5.0
    )
    assert (
        c.table.set_index("batch_size").loc[64, "rmse_diff_low"]
        < 0
        < c.table.set_index("batch_size").loc[64, "rmse_diff_high"]
    )
    assert "better at 1, worse at 4, within margin at 16, inconclusive at 64 on test RMSE" in c.pairing.sentences[0]
    # a wider margin takes batch 16's and 64's differences as equal
    wide = write_comparison(a, b, out=tmp_path / "wide", margin=0.2)
    assert dict(zip(wide.table["batch_size"], wide.table["accuracy_verdict"]))[64] == "within margin"
