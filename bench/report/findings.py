"""The generated "findings" paragraph: what the tables say, and no more than they support."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.load import Results
from bench.report.stats import mann_whitney

#: Panels beyond this many are left to the tables, so the paragraph stays readable.
MAX_PANELS = 12


def _name(row: pd.Series) -> str:
    return f"batch size {int(row['batch_size'])} ({row['mode']})"


def _samples(ok: pd.DataFrame, config: str, column: str) -> np.ndarray:
    return ok.loc[ok["config"] == config, column].to_numpy(dtype=np.float64)


def _speed_vs_accuracy(ok: pd.DataFrame, acc: pd.DataFrame, speed: pd.DataFrame) -> list[str]:
    best = acc.loc[acc["rmse_mean"].idxmin()]
    ci = (
        f", 95% CI {best['rmse_ci_low']:.4g}-{best['rmse_ci_high']:.4g}"
        if np.isfinite(best["rmse_ci_low"])
        else ", single run, no CI"
    )
    out = [f"Most accurate: {_name(best)}, mean test RMSE {best['rmse_mean']:.4g} (n={int(best['n'])}{ci})."]
    if speed.empty:
        return out + ["No throughput was recorded, so there is no fastest configuration."]
    fast = speed.loc[speed["sps_mean"].idxmax()]
    out.append(f"Fastest: {_name(fast)}, {fast['sps_mean']:,.0f} samples/s.")
    if fast["config"] == best["config"]:
        out.append("The most accurate configuration is also the fastest.")
        return out
    best_speed = speed.loc[speed["config"] == best["config"], "sps_mean"]
    fast_acc = acc.loc[acc["config"] == fast["config"], "rmse_mean"]
    if best_speed.empty or fast_acc.empty:
        return out
    speedup = fast["sps_mean"] / best_speed.iloc[0]
    cost = fast_acc.iloc[0] - best["rmse_mean"]
    test = mann_whitney(_samples(ok, fast["config"], "test_rmse"), _samples(ok, best["config"], "test_rmse"))
    out.append(
        f"The fastest trains {speedup:.1f}x faster than the most accurate, at an accuracy cost of "
        f"{cost:+.4g} RMSE ({cost / best['rmse_mean']:+.1%}); the RMSE difference is {test.describe()}."
    )
    return out


def _stateful_vs_stateless(ok: pd.DataFrame, acc: pd.DataFrame) -> str:
    stateful = acc[acc["mode"] != "stateless"]
    stateless = acc[acc["mode"] == "stateless"]
    if stateful.empty or stateless.empty:
        return (
            f"Only {'stateless' if stateful.empty else 'stateful'} runs succeeded: no stateful vs stateless comparison."
        )
    a = stateful.loc[stateful["rmse_mean"].idxmin()]
    b = stateless.loc[stateless["rmse_mean"].idxmin()]
    test = mann_whitney(_samples(ok, a["config"], "test_rmse"), _samples(ok, b["config"], "test_rmse"))
    win, lose = (a, b) if a["rmse_mean"] < b["rmse_mean"] else (b, a)
    who = "stateful" if win is a else "stateless"
    other = "stateless" if win is a else "stateful"
    head = (
        f"Best stateful ({_name(a)}, RMSE {a['rmse_mean']:.4g}) vs best stateless "
        f"({_name(b)}, RMSE {b['rmse_mean']:.4g}): "
    )
    if test.significant:
        return head + f"{who} beat {other}, {test.describe()}."
    return head + f"{who} has the lower mean, but {who} did not demonstrably beat {other}: {test.describe()}."


def _vs_persistence(acc: pd.DataFrame) -> str:
    best = acc.loc[acc["rmse_mean"].idxmin()]
    persistence = best["persistence_rmse"]
    if not np.isfinite(persistence):
        return "No persistence RMSE was recorded, so there is no baseline comparison."
    head = (
        f"Persistence forecast RMSE {persistence:.4g}; the most accurate LSTM's mean skill is "
        f"{best['skill_mean']:+.3f} (1 - RMSE/persistence). "
    )
    lo, hi = best["rmse_ci_low"], best["rmse_ci_high"]
    if not np.isfinite(lo):
        return head + "With a single run it cannot be said whether the LSTM beats persistence."
    if hi < persistence:
        return head + "It beats persistence: the 95% CI of its mean RMSE lies entirely below the baseline."
    if lo > persistence:
        return head + "It does not beat persistence: the 95% CI of its mean RMSE lies entirely above the baseline."
    return head + "It cannot be told apart from persistence: the 95% CI of its mean RMSE contains the baseline."


def findings(results: Results, acc: pd.DataFrame, speed: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Per panel, a list of sentences: best for accuracy, best for speed, the trade-off between
    them, stateful vs stateless, and the best LSTM vs persistence. Returns (panel, sentences)."""
    ok = results.ok
    panels = list(dict.fromkeys(acc["panel"])) if not acc.empty else []
    out: list[tuple[str, list[str]]] = []
    if not panels:
        return [("", ["No successful run has a test RMSE, so there are no findings to report."])]
    for panel in panels[:MAX_PANELS]:
        a = acc[acc["panel"] == panel]
        s = speed[speed["panel"] == panel]
        sentences = _speed_vs_accuracy(ok, a, s)
        sentences.append(_stateful_vs_stateless(ok, a))
        sentences.append(_vs_persistence(a))
        out.append((panel, sentences))
    if len(panels) > MAX_PANELS:
        out.append(("", [f"{len(panels) - MAX_PANELS} more panels: see the tables."]))
    return out
