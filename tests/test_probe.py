"""The state-carry probe's result is kept on disk once it passes, per versions, code and device."""

from __future__ import annotations

from pathlib import Path

from bench import probe, registry
from bench.probe import ProbeResult, remembered


def test_a_passing_probe_is_remembered_until_what_it_checked_changes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LSTM_BENCH_CACHE_DIR", str(tmp_path / "jax"))
    calls: list[bool] = []

    def run(ok: bool = True) -> ProbeResult:
        calls.append(ok)
        return ProbeResult("jax", "scan", ok, "carried state |h|+|c| = 0.5")

    engine = registry.engine("scan")
    first = remembered(engine, "jax", "cpu", run)
    assert remembered(engine, "jax", "cpu", run) == first and len(calls) == 1  # the second read from disk
    remembered(engine, "jax", "gpu", run)  # another device probes again
    assert len(calls) == 2
    monkeypatch.setattr(probe, "_versions", lambda distributions: {"keras": "9.9"})  # another Keras
    remembered(engine, "jax", "cpu", run)
    assert len(calls) == 3
    # a failing probe is never kept, and a damaged file is probed again
    for _ in range(2):
        assert not remembered(engine, "jax", "tpu", lambda: run(False)).carries_state
    assert calls[-2:] == [False, False]
    for kept in (tmp_path / "jax-probes").iterdir():
        kept.write_text("{not json")
    remembered(engine, "jax", "cpu", run)
    assert len(calls) == 6
    monkeypatch.setenv("LSTM_BENCH_CACHE_DIR", "off")  # no cache folder: every call probes
    remembered(engine, "jax", "cpu", run), remembered(engine, "jax", "cpu", run)
    assert len(calls) == 8
