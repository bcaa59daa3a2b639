"""The optimal learning rate against batch size: each form recovered from synthetic optima by AIC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report.optimum import fit_forms, optimum_table

SIZES = 2.0 ** np.arange(0, 8)  # 1 .. 128


def surge(b: np.ndarray, eta_max: float = 0.05, b_noise: float = 8.0) -> np.ndarray:
    return 2 * eta_max / (np.sqrt(b_noise / b) + np.sqrt(b / b_noise))


@pytest.mark.parametrize(
    "form,rates",
    [
        ("constant", np.full(len(SIZES), 0.01)),
        ("linear", 0.001 * SIZES),
        ("sqrt", 0.001 * np.sqrt(SIZES)),
        ("surge", surge(SIZES)),
    ],
)
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_each_form_is_recovered_from_its_own_optima(form: str, rates: np.ndarray, noise: float) -> None:
    noisy = rates * np.exp(np.random.default_rng(1).normal(0, noise, len(rates)))
    best = fit_forms(SIZES, noisy)[0]
    assert best.form == form
    if form == "surge":
        assert best.params["b_noise"] == pytest.approx(8.0, rel=0.25)
        assert best.params["eta_max"] == pytest.approx(0.05, rel=0.1)
    np.testing.assert_allclose(best.predict(SIZES), rates, rtol=0.15)


def test_the_table_names_the_best_form_and_the_surge_peak_beside_the_critical_batch_size() -> None:
    rates = pd.DataFrame(
        {"tuning_panel": "", "mode": "stateless", "batch_size": SIZES.astype(int), "learning_rate": surge(SIZES)}
    )
    critical = pd.DataFrame({"tuning_panel": [""], "mode": ["stateless"], "b_crit": [6.0], "b_simple_median": [9.0]})
    table, fits = optimum_table(rates, critical)
    row = table.iloc[0]
    assert row["best"] == "surge" and row["surge_peak"] == pytest.approx(8.0, rel=0.05)
    assert "peaks near batch size 8" in row["note"] and "B_crit 6, B_simple 9" in row["note"]
    assert row["aic_surge"] < min(row["aic_constant"], row["aic_linear"], row["aic_sqrt"])
    assert fits["", "stateless"].form == "surge"
    few = optimum_table(rates.head(2))[0].iloc[0]
    assert few["best"] == "" and "fewer than 3 batch sizes" in few["note"]


def test_aic_charges_each_form_for_its_parameters() -> None:
    """AIC = n ln(RSS / n) + 2 k on log rates: k = 1 for the one-constant forms, 2 for the surge form."""
    rates = 0.01 * np.exp(np.random.default_rng(2).normal(0, 0.1, len(SIZES)))
    for fit in fit_forms(SIZES, rates):
        rss = float(np.sum((np.log(rates) - np.log(fit.predict(SIZES))) ** 2))
        k = 2 if fit.form == "surge" else 1
        assert fit.aic == pytest.approx(len(SIZES) * np.log(rss / len(SIZES)) + 2 * k, rel=1e-6), fit.form
