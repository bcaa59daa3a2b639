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
    assert reasons[("A", "failed", 1)] == "status failed"
    assert reasons[("A", "diverged", 1)] == "status diverged"
    assert reasons[("B", "diverged", 1)] == "status diverged"
    only_b = unpaired[unpaired["reason"].str.startswith("no ok run in A")]
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
    assert rows.loc[1, "verdict"] == "slower" and rows.loc[32, "verdict"] == "faster"
    assert rows.loc[4, "verdict"] == "indistinguishable"
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
