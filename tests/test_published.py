"""lstm-bench against a published table: the stateful-LSTM batch-size experiment on the shampoo series."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clitools import run_in_process

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_BATCH_1 = 98.70  # mean test RMSE over 30 repeats in the published table; persistence 136.761


@pytest.mark.slow
def test_brownlee_shampoo_reproduces_the_published_batch_1_figure(tmp_path: Path) -> None:
    done = run_in_process(
        "run", str(ROOT / "scenarios" / "brownlee_shampoo.yaml"), "--out", "out", "--no-report", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 3 * 2 * 30 and set(runs.status) == {"ok"}  # batch sizes x layouts x repeats
    batch_1 = runs[runs.batch_size == 1].test_rmse
    assert batch_1.mean() == pytest.approx(PUBLISHED_BATCH_1, abs=3.0)  # our 95% interval is about +-2
    assert runs.persistence_rmse.iloc[0] == pytest.approx(136.761, abs=1e-3)
