"""The optimal learning rate against batch size: the rates chosen on validation per batch size
(`bench.report.tuning.select_rates`) fitted to four forms in log space, the best by AIC.

- constant: eta*(B) = c;
- linear: eta*(B) = c B (Goyal et al. 2017, SGD);
- sqrt: eta*(B) = c sqrt(B) (Malladi et al. 2022, adaptive optimizers);
- surge: eta*(B) = 2 eta_max / (sqrt(B_noise / B) + sqrt(B / B_noise)), rising to eta_max at B = B_noise and
  falling beyond it (Li et al. 2024, Adam's "surge phenomenon").

A chosen rate is one of the rates tried, so the fit sees optimum values quantised to them; with few batch
sizes a two-parameter form must fit clearly better to win, which AIC's penalty sees to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FORMS = ("constant", "linear", "sqrt", "surge")
#: At least this many batch sizes with a chosen rate before forms are compared.
MIN_SIZES = 3
#: The residual variance is floored here, so exact fits tie and AIC's penalty decides between them.
RSS_FLOOR = 1e-12


@dataclass(frozen=True)
class RateFit:
    """One form fitted to (batch size, chosen rate) pairs: its parameters and AIC (lower is better)."""

    form: str
    params: dict[str, float] = field(default_factory=dict)
    aic: float = float("nan")

    def predict(self, batch_sizes: np.ndarray) -> np.ndarray:
        b = np.asarray(batch_sizes, dtype=np.float64)
        p = self.params
        if self.form == "surge":
            return 2 * p["eta_max"] / (np.sqrt(p["b_noise"] / b) + np.sqrt(b / p["b_noise"]))
        slope = {"constant": 0.0, "linear": 1.0, "sqrt": 0.5}[self.form]
        return p["c"] * b**slope


def _aic(residuals: np.ndarray, k: int) -> float:
    n = len(residuals)
    return n * math.log(max(float(np.sum(residuals**2)) / n, RSS_FLOOR)) + 2 * k


def fit_forms(batch_sizes: np.ndarray, rates: np.ndarray) -> list[RateFit]:
    """Every form fitted by least squares on log rates, best (lowest AIC) first."""
    x, y = np.log(np.asarray(batch_sizes, dtype=np.float64)), np.log(np.asarray(rates, dtype=np.float64))
    fits = []
    for form, slope in (("constant", 0.0), ("linear", 1.0), ("sqrt", 0.5)):
        c = float(np.mean(y - slope * x))
        fits.append(RateFit(form, {"c": math.exp(c)}, _aic(y - c - slope * x, 1)))
    # surge: for a peak position the best height is a mean; the peak is searched on a fine log grid
    best: tuple[float, float, float] | None = None
    for log_bn in np.linspace(x.min() - 2.0, x.max() + 2.0, 801):
        shape = -np.log(np.exp((log_bn - x) / 2) + np.exp((x - log_bn) / 2))
        height = float(np.mean(y - shape))
        rss = float(np.sum((y - height - shape) ** 2))
        if best is None or rss < best[0]:
            best = (rss, height, float(log_bn))
    assert best is not None
    rss, height, log_bn = best
    surge_res = y - height + np.log(np.exp((log_bn - x) / 2) + np.exp((x - log_bn) / 2))
    fits.append(RateFit("surge", {"eta_max": math.exp(height) / 2, "b_noise": math.exp(log_bn)}, _aic(surge_res, 2)))
    return sorted(fits, key=lambda f: (f.aic, FORMS.index(f.form)))


def optimum_table(
    rates: pd.DataFrame, critical: pd.DataFrame | None = None, facets: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, dict]:
    """Per tuning panel and mode (with the panel's `facets` columns), the forms' AIC and the best one, from the
    chosen (effective) rates; where the surge form wins, its peak beside B_crit and B_simple of `critical`.
    Also the best fit per (panel, mode)."""
    labels = ["tuning_panel", *(f for f in facets if f in rates), "mode"]
    cols = [*labels, "batch_sizes", "best", *(f"aic_{f}" for f in FORMS), "surge_peak", "note"]
    rows, fits = [], {}
    if rates.empty or "learning_rate" not in rates:
        return pd.DataFrame(columns=cols), fits
    for (panel, mode), g in rates.groupby(["tuning_panel", "mode"], sort=False):
        g = g[pd.to_numeric(g["learning_rate"], errors="coerce") > 0].sort_values("batch_size")
        row: dict[str, object] = {**{c: g[c].iloc[0] for c in labels if len(g)}, "tuning_panel": panel, "mode": mode}
        row.update(dict.fromkeys(cols[len(labels) :], np.nan))
        row["batch_sizes"] = " ".join(str(int(b)) for b in g["batch_size"])
        if g["batch_size"].nunique() < MIN_SIZES:
            row.update(best="", note=f"fewer than {MIN_SIZES} batch sizes with a chosen rate: no fit")
            rows.append(row)
            continue
        ranked = fit_forms(g["batch_size"].to_numpy(), g["learning_rate"].to_numpy(dtype=np.float64))
        fits[panel, mode] = ranked[0]
        row.update({f"aic_{f.form}": f.aic for f in ranked}, best=ranked[0].form)
        notes = []
        if ranked[0].form == "surge":
            peak = ranked[0].params["b_noise"]
            row["surge_peak"] = peak
            notes.append(f"the optimal rate peaks near batch size {peak:.3g}")
            if critical is not None and not critical.empty:
                c = critical[(critical["tuning_panel"] == panel) & (critical["mode"] == mode)]
                if len(c):
                    notes.append(f"B_crit {c['b_crit'].iloc[0]:.3g}, B_simple {c['b_simple_median'].iloc[0]:.3g}")
        notes.append("each chosen rate is one of the rates tried, so the fit sees the optimum to their spacing")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)[cols], fits
