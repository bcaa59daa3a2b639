"""The generated "findings" paragraph: what the tables say, and no more than they support."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.baselines import BASELINES
from bench.report.trials import describe
from bench.report.load import Results
from bench.vocabulary import STATELESS, scope_label
from bench.report.stats import ALPHA, EQUIVALENCE_LEVEL, THROUGHPUT, Interval, relative_difference, speedup
from bench.report.tuning import interval_text, unbounded

#: Panels beyond this many are left to the tables, so the paragraph stays readable.
MAX_PANELS = 12


def _name(row: pd.Series) -> str:
    return f"batch size {int(row['batch_size'])} ({row['mode']})"


def _samples(ok: pd.DataFrame, config: str, column: str) -> np.ndarray:
    return ok.loc[ok["config"] == config, column].to_numpy(dtype=np.float64)


def _interval(d: Interval) -> str:
    return f"{d.value:+.1%}, {EQUIVALENCE_LEVEL:.0%} bootstrap interval {d.low:+.1%} to {d.high:+.1%}"


def _speed_vs_accuracy(ok: pd.DataFrame, acc: pd.DataFrame, speed: pd.DataFrame, margin: float) -> list[str]:
    best = acc.loc[acc["rmse_mean"].idxmin()]
    ci = (
        f", 95% CI {best['rmse_ci_low']:.4g}-{best['rmse_ci_high']:.4g}"
        if np.isfinite(best["rmse_ci_low"])
        else ", single run, no CI"
    )
    out = [f"Most accurate: {_name(best)}, mean test RMSE {best['rmse_mean']:.4g} (n={int(best['n'])}{ci})."]
    if speed.empty:
        return out + ["No throughput was recorded, so there is no fastest configuration."]
    fast = speed.loc[speed["sps_median"].idxmax()]
    fast_speed = Interval(fast["sps_median"], fast["sps_low"], fast["sps_high"])
    out.append(f"Fastest: {_name(fast)}, {fast_speed.text(',.0f')} {THROUGHPUT}.")
    if fast["config"] == best["config"]:
        out.append("The most accurate configuration is also the fastest.")
        return out
    best_row = speed.loc[speed["config"] == best["config"]]
    fast_acc = acc.loc[acc["config"] == fast["config"], "rmse_mean"]
    if best_row.empty or fast_acc.empty:
        return out
    b = best_row.iloc[0]
    faster = speedup(fast_speed, Interval(b["sps_median"], b["sps_low"], b["sps_high"]))
    if faster is None:
        return out
    same = " (indistinguishable: the intervals overlap)" if faster.low <= 1.0 <= faster.high else ""
    cost = fast_acc.iloc[0] - best["rmse_mean"]
    # the Recommendation's test: within the margin when the interval's upper end is below it
    worse = relative_difference(_samples(ok, fast["config"], "test_rmse"), _samples(ok, best["config"], "test_rmse"))
    if worse is None:
        verdict = "with single runs there is no interval for the difference"
    elif worse.high <= margin:
        verdict = f"shown to be within the {margin:.0%} margin ({_interval(worse)})"
    else:
        verdict = f"not shown to be within the {margin:.0%} margin ({_interval(worse)})"
    out.append(
        f"The fastest trains {faster.text('.2f', 'x')} as fast as the most accurate{same}, at an accuracy cost of "
        f"{cost:+.4g} RMSE; the RMSE difference is {verdict}."
    )
    return out


def _stateful_vs_stateless(ok: pd.DataFrame, acc: pd.DataFrame) -> str:
    stateful = acc[acc["mode"] != STATELESS]
    stateless = acc[acc["mode"] == STATELESS]
    if stateful.empty or stateless.empty:
        return (
            f"Only {'stateless' if stateful.empty else 'stateful'} runs succeeded: no stateful vs stateless comparison."
        )
    a = stateful.loc[stateful["rmse_mean"].idxmin()]
    b = stateless.loc[stateless["rmse_mean"].idxmin()]
    win, lose = (a, b) if a["rmse_mean"] < b["rmse_mean"] else (b, a)
    # the Recommendation's bootstrap interval of the relative difference: the loser's mean RMSE over the winner's
    worse = relative_difference(_samples(ok, lose["config"], "test_rmse"), _samples(ok, win["config"], "test_rmse"))
    who = "stateful" if win is a else "stateless"
    other = "stateless" if win is a else "stateful"
    head = (
        f"Best stateful ({_name(a)}, RMSE {a['rmse_mean']:.4g}) vs best stateless "
        f"({_name(b)}, RMSE {b['rmse_mean']:.4g}): "
    )
    if worse is None:
        return head + f"{who} has the lower mean; with single runs there is no interval for the difference."
    if worse.low > 0:
        return head + f"{who} beat {other}: {other}'s mean RMSE is higher by {_interval(worse)}."
    return (
        head + f"{who} has the lower mean, but {who} did not demonstrably beat {other}: {other}'s mean RMSE is "
        f"higher by {_interval(worse)}, an interval that includes 0."
    )


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
    name, rmse = best["best_baseline"], best["best_baseline_rmse"]
    if name != BASELINES[0].label and np.isfinite(rmse):
        # a simpler forecast than persistence does better: the bar is that one
        head = (
            f"The best simple baseline is the {name} (RMSE {rmse:.4g}; persistence {persistence:.4g}); the most "
            f"accurate LSTM's skill against it is {best['baseline_skill']:+.3f} (1 - RMSE/baseline). "
        )
        persistence, what = rmse, f"the {name}"
    else:
        what = "persistence"
    if hi < persistence:
        return head + f"It beats {what}: the 95% CI of its mean RMSE lies entirely below the baseline."
    if lo > persistence:
        return head + f"It does not beat {what}: the 95% CI of its mean RMSE lies entirely above the baseline."
    return head + f"It cannot be told apart from {what}: the 95% CI of its mean RMSE contains the baseline."


def findings(results: Results, acc: pd.DataFrame, speed: pd.DataFrame, margin: float) -> list[tuple[str, list[str]]]:
    """Per panel, a list of sentences: best for accuracy, best for speed, the trade-off between
    them, stateful vs stateless, and the best LSTM vs persistence. Returns (panel, sentences). Differences
    are judged as the Recommendation judges them (`relative_difference` against `margin`), never by
    another test."""
    ok = results.ok
    panels = list(dict.fromkeys(acc["panel"])) if not acc.empty else []
    out: list[tuple[str, list[str]]] = []
    if not panels:
        return [("", ["No successful run has a test RMSE, so there are no findings to report."])]
    for panel in panels[:MAX_PANELS]:
        a = acc[acc["panel"] == panel]
        s = speed[speed["panel"] == panel]
        sentences = _speed_vs_accuracy(ok, a, s, margin)
        sentences.append(_stateful_vs_stateless(ok, a))
        sentences.append(_vs_persistence(a))
        out.append((panel, sentences))
    if len(panels) > MAX_PANELS:
        out.append(("", [f"{len(panels) - MAX_PANELS} more panels: see the tables."]))
    return out


def _tuned_accuracy(tuned: pd.DataFrame) -> list[str]:
    scored = tuned[tuned["test_rmse_mean"].notna()]
    if scored.empty:
        return []
    best = scored.loc[scored["test_rmse_mean"].idxmin()]
    ci = (
        f", 95% CI {best['test_rmse_ci_low']:.4g}-{best['test_rmse_ci_high']:.4g}"
        if np.isfinite(best["test_rmse_ci_low"])
        else ", single run, no CI"
    )
    chosen = describe(best.get("trial"), best.get("search_point")) or f"base rate {best['base_learning_rate']:.3g}"
    head = (
        f"Tuned on validation: the most accurate batch size at its own learning rate is {int(best['batch_size'])} "
        f"({chosen}, "
        f"mean test RMSE {best['test_rmse_mean']:.4g}, "
        f"n={int(best['n'])}{ci})."
    )
    others = scored[scored.index != best.name]
    if others.empty:
        return [head + " It is the only batch size with a tuned rate."]
    beaten = others[others["p_vs_best"] < ALPHA]
    p = others["p_vs_best"].dropna()
    low, high = (f"{p.min():.2g}", f"{p.max():.2g}") if len(p) else ("", "")
    span = "" if not low else f" (Mann-Whitney, p {low})" if low == high else f" (Mann-Whitney, p {low} to {high})"
    if len(beaten) == len(others):
        verdict = f"It beats every other batch size significantly{span}."
    elif beaten.empty:
        verdict = f"It does not demonstrably beat any other batch size{span}."
    else:
        sizes = ", ".join(str(int(b)) for b in beaten["batch_size"])
        rest = ", ".join(str(int(b)) for b in others.loc[~others.index.isin(beaten.index), "batch_size"])
        verdict = f"It beats batch sizes {sizes} significantly, but not {rest}{span}."
    return [head + " " + verdict]


def _trial_or_rate(row: pd.Series, prefix: str) -> str:
    trial = row.get(f"{prefix}_trial")
    rate = f"base rate {row[f'{prefix}_base_learning_rate']:.3g}"
    return f"trial {int(trial)}, {rate}" if trial is not None and np.isfinite(trial) else rate


def _fastest_to_target(scaling: pd.DataFrame) -> list[str]:
    out = []
    for prefix, what, unit in (("steps", "Fewest steps", "steps"), ("seconds", "Least time", "s")):
        column = f"{prefix}_median"
        if column not in scaling:
            continue
        hit = scaling[scaling[column].notna()]
        if hit.empty:
            out.append(f"{what} to target: no batch size reached {scaling['target'].iloc[0]} with its median run.")
            continue
        best = hit.loc[hit[column].idxmin()]
        value = f"{best[column]:,.0f}" if prefix == "steps" else f"{best[column]:.3g}"
        out.append(
            f"{what} to reach {best['target']}: batch size {int(best['batch_size'])}, median {value} {unit} "
            f"({_trial_or_rate(best, prefix)}, the fastest for that batch size)."
        )
    if "steps_median" in scaling:
        missed = scaling.loc[scaling["steps_median"].isna(), "batch_size"]
        if len(missed) and len(missed) < len(scaling):
            out.append(
                "Batch sizes whose median run never reached the target at any rate: "
                + ", ".join(str(int(b)) for b in missed)
                + "."
            )
    return out


def _critical(row: pd.Series) -> list[str]:
    out = []
    fit = np.isfinite(row["b_crit"])
    if fit:
        sizes = [float(b) for b in str(row["batch_sizes"]).split()]
        ci = (
            "95% bootstrap CI " + interval_text(row["b_crit_ci_low"], row["b_crit_ci_high"], min(sizes), max(sizes))
            if np.isfinite(row["b_crit_ci_low"]) and sizes
            else "no CI"
        )
        if unbounded(row["b_crit"], row["b_crit_ci_high"], max(sizes)):
            head = f"B_crit at least {max(sizes):g} (its interval runs past the largest batch size tried)"
        else:
            head = f"B_crit {row['b_crit']:.3g} ({ci})"
        out.append(
            f"Critical batch size from steps to target: {head}, S_min "
            f"{row['s_min']:,.0f} steps, fitting S(B) = S_min (1 + B_crit / B) over batch sizes "
            f"{row['batch_sizes'].replace(' ', ', ')}."
        )
    noise = row["b_simple_n"] > 0
    # read where each run met the target when there is one (`tuning.noise_scale_at_target`)
    read_at = f"when each run met {row['target']}" if row["target"] else "at the end of training"
    if noise:
        out.append(
            f"From the gradient noise scale: B_simple {row['b_simple_median']:.3g} {read_at} "
            f"(median of {int(row['b_simple_n'])} runs, IQR {row['b_simple_q1']:.3g}-{row['b_simple_q3']:.3g})."
        )
    if fit and noise and row["disagree"] is not None and not pd.isna(row["disagree"]):
        if bool(row["disagree"]):
            out.append(
                "The two estimates of the critical batch size disagree "
                f"({row['b_crit']:.3g} vs {row['b_simple_median']:.3g}): B_simple only approximates it "
                f"(it ignores curvature, and is read {read_at}), while steps to target measure it directly."
            )
        else:
            out.append("The two estimates of the critical batch size agree: within 2x, with overlapping intervals.")
    if row["note"] and fit and "edge" in row["note"]:
        out.append(f"Caveat: {row['note'].split(';')[0]}.")
    return out


def tuning_findings(tuned: pd.DataFrame, scaling: pd.DataFrame, critical: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Per tuning panel and mode (`bench.report.tuning`): the most accurate batch size at its validation-tuned
    rate with Mann-Whitney tests against the others, the batch sizes reaching the target in the fewest steps
    and the least time, and the critical batch size from steps (B_crit) and from the noise scale (B_simple).
    Returns (label, sentences); nothing where the tables are empty."""
    keys: list[tuple[str, str]] = []
    for table in (tuned, scaling, critical):
        if not table.empty:
            keys += list(zip(table["tuning_panel"], table["mode"]))
    out: list[tuple[str, list[str]]] = []
    for panel, mode in list(dict.fromkeys(keys))[:MAX_PANELS]:
        sentences: list[str] = []
        for table, say in ((tuned, _tuned_accuracy), (scaling, _fastest_to_target)):
            if not table.empty:
                sub = table[(table["tuning_panel"] == panel) & (table["mode"] == mode)]
                if not sub.empty:
                    sentences += say(sub)
        if not critical.empty:
            sub = critical[(critical["tuning_panel"] == panel) & (critical["mode"] == mode)]
            for _, row in sub.iterrows():
                sentences += _critical(row)
        if sentences:
            out.append((scope_label(panel, mode), sentences))
    return out
