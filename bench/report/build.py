"""`write_report`: results folders in, a report folder out (index.html, summary.md, figures, CSV tables)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.report.answer import MARGIN, Answer, answer
from bench.report.figures import FIGURES, STEPS_STEMS, TUNING_STEMS, NothingToPlot
from bench.report.findings import findings, tuning_findings
from bench.report.load import Results, load_results
from bench.report.render import (
    Block,
    Bullets,
    Callout,
    Heading,
    Missing,
    Paragraph,
    Picture,
    Table,
    render_html,
    render_markdown,
    save_figure,
    write_text,
)
from bench.report.stats import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    MIN_REPEATS,
    accuracy_table,
    problem_table,
    speed_table,
    status_counts,
    target_table,
)
from bench.report.tuning import (
    NO_VALIDATION,
    critical_table,
    noise_scale_at_target,
    has_validation,
    is_tuning_sweep,
    target_scaling_table,
    tuned_table,
)

log = logging.getLogger(__name__)

CAPTIONS: dict[str, str] = {
    "rmse_by_batch_size": "Test RMSE by batch size. Boxes span the repeats of one configuration (whiskers 1.5 IQR), "
    "dots are individual runs (at most 300 per panel, a fixed random sample), the dashed line is the persistence "
    "forecast (predict the last value).",
    "throughput_by_batch_size": "Training samples per second by batch size, log-log, from steady-state timed rounds "
    "(never the first, compiling epoch). Line: median over runs of each run's median round; band: the interquartile "
    "range of the rounds, widened to the 95% bootstrap interval over repeats; dots: individual runs. Runs trained "
    "together (trained_together > 1) show each run's share of the machine's throughput.",
    "tradeoff": "Mean test RMSE against mean throughput per configuration, labelled with the batch size. Ringed and "
    "joined: Pareto-optimal configurations, for which no other is both faster and more accurate.",
    "learning_curves": "Training loss by epoch for successful runs: mean over repeats per batch size, band from "
    "min to max.",
    "epochs_to_target": "Epochs each run needed to reach the target. Crosses on the top line never reached it; "
    "bars are olympic means (fastest and slowest run dropped).",
    "seconds_to_target": "Training seconds each run needed to reach the target. Crosses on the top line never reached "
    "it; bars are olympic means (fastest and slowest run dropped).",
    "tuned_rmse_by_batch_size": "Test RMSE per batch size at the base learning rate chosen for that batch size on the "
    "validation split (lowest median validation RMSE; the test set plays no part in the choice), written above each "
    "box. Boxes span that rate's runs, dots are individual runs, diamonds the mean with its 95% bootstrap CI, the "
    "dashed line the persistence forecast. One panel per mode and per value of the other varying axes.",
    "lr_batch_heatmap": "Median validation RMSE of each batch size x base learning rate (diverged runs count as worst; "
    "grey: not run or mostly diverged), outlined: the rate chosen for each batch size. Without a validation split "
    "the cells show the test RMSE instead, as the title and colour bar say, and no rate is outlined.",
    "steps_to_target": "Median optimizer steps to reach the target by batch size, log-log, at the base learning rate "
    "that needs the fewest median steps for that batch size (label); a run that never reached the target counts as "
    "slowest, so a rate whose median run missed it has no value. Faint dots: runs of the chosen rate. Dashed: "
    "perfect scaling from the smallest batch size (S_0 B_0 / B). Solid: the fit S(B) = S_min (1 + B_crit / B) "
    "(McCandlish et al. 2018) with the bootstrap 95% CI of B_crit (runs resampled within each batch size).",
    "time_to_target": "Median training seconds to reach the target by batch size, log-log, at the base learning rate "
    "that needs the least median time for that batch size (label); runs that never reached the target count as "
    "slowest. Faint dots: runs of the chosen rate.",
    "noise_scale": "The gradient noise scale B_simple (McCandlish et al. 2018) over training, against optimizer steps: "
    "per batch size, the median over runs at each epoch, of runs at the rate chosen on validation (every rate pooled "
    "without a validation split, as the title says). Dotted: the batch sizes tried. A batch size well below the "
    "curve is where larger batches still cut the steps needed; well above it they mostly add cost. Non-positive "
    "early estimates are not drawn (log scale).",
}

_ACCURACY_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "n": "n",
    "rmse_mean": "mean RMSE",
    "rmse_std": "std",
    "rmse_median": "median",
    "rmse_min": "min",
    "rmse_max": "max",
    "rmse_ci_low": "95% CI low",
    "rmse_ci_high": "95% CI high",
    "persistence_rmse": "persistence RMSE",
    "skill_mean": "mean skill",
    "vs_best": "vs best batch size (Mann-Whitney)",
    "note": "note",
}
SPEED_CAPTION = (
    "Samples/s from steady-state timed rounds (whole epochs after the first, plus calibration rounds of the compiled "
    "epoch where training gave too few). For runs trained together each run's share of the machine; 'machine "
    "samples/s' is all of them together. 'busy' counts runs timed while other processes used the CPU."
)
_SPEED_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "n": "n",
    "sps_mean": "mean samples/s",
    "sps_std": "std",
    "sps_median": "median",
    "sps_min": "min",
    "sps_max": "max",
    "sps_low": "interval low",
    "sps_high": "interval high",
    "machine_sps_median": "machine samples/s",
    "rounds_median": "timed rounds (median)",
    "busy": "busy",
    "train_seconds_mean": "mean train s",
    "compile_seconds_median": "median compile s",
}
_TARGET_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "target": "target",
    "n": "runs",
    "reached": "reached",
    "epochs_olympic": "epochs (olympic mean)",
    "seconds_olympic": "seconds (olympic mean)",
    "note": "note",
}
_PROBLEM_NAMES = {
    "kind": "kind",
    "run_id": "run id",
    "source": "source",
    "mode": "mode",
    "batch_size": "batch size",
    "repeat": "repeat",
    "status": "status",
    "error": "error",
}

METHODS = (
    f"Statistics use runs with status 'ok'; diverged, failed and unsupported runs are listed below, not dropped. "
    f"A configuration is every setting except repeat and seed. CI: percentile bootstrap of the mean "
    f"({BOOTSTRAP_RESAMPLES} resamples, fixed seed), none for single runs. Each batch size is compared with the "
    f"most accurate batch size of the same panel and mode by a two-sided Mann-Whitney U test (alpha {ALPHA}), "
    f"only with {MIN_REPEATS}+ runs on each side; p-values are not corrected for multiple comparisons, and the "
    f"'best' of many configurations is optimistically biased. Time to target counts ok and diverged runs and "
    f"scores them MLPerf style: the olympic mean drops the fastest and slowest run. "
    f"Learning rate per batch size (sweeps over the base learning rate): for each batch size, mode and panel the base "
    f"rate with the lowest median validation RMSE is chosen (a diverged run counts as worst) and the test RMSE of "
    f"that rate's runs is reported; the test set is never used to choose, and without a validation split there is "
    f"no tuned accuracy. For steps and time to target each batch size takes the rate reaching the target in the "
    f"fewest median steps (seconds), a run that never reached it counting as slowest (Shallue et al. 2019). The "
    f"critical batch size B_crit is the fit of S(B) = S_min (1 + B_crit / B) (McCandlish et al. 2018) to those "
    f"median steps, least squares on log steps, with a percentile bootstrap CI (runs resampled within each batch "
    f"size, {BOOTSTRAP_RESAMPLES} resamples, fixed seed); B_simple is the median gradient noise scale over ok "
    f"runs at every rate, with its interquartile range: each run's estimate when it first met the target (the "
    f"loss level the steps are counted to), or its final estimate when the scenario set no target."
)


def _display(table: pd.DataFrame, facets: tuple[str, ...], names: dict[str, str]) -> pd.DataFrame:
    cols = [c for c in (*facets, *names) if c in table.columns]
    out = table[cols].copy()
    # Alignment follows dtype: text columns get left-aligned, and the mode name is text.
    for c in ("mode", "vs_best", "note", "target", "error", "run_id", "source", "status", "batch_sizes", "disagree"):
        if c in out:
            out[c] = out[c].astype(object)
    return out.rename(columns=names)


def _overview(results: Results) -> list[str]:
    runs = results.runs
    counts = status_counts(results)
    items = [
        "Sources: " + ", ".join(f"{s} ({n} runs)" for s, n in runs["source"].value_counts(sort=False).items()),
        "Runs by status: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        "Scenarios: " + ", ".join(sorted(runs["scenario"].dropna().astype(str).unique())),
        ("Panels split by: " + ", ".join(results.facets))
        if results.facets
        else "Only batch size and stateful mode vary, so every figure has a single panel.",
    ]
    hosts = sorted(runs["hostname"].dropna().astype(str).unique())
    if hosts:
        items.append("Hosts: " + ", ".join(hosts))
    gpus = sorted(g for g in runs["gpus"].dropna().astype(str).unique() if g)
    items.append("GPUs: " + ("; ".join(gpus) if gpus else "none recorded"))
    return items


def _measured_noise(results: Results) -> bool:
    runs = results.runs
    measured = runs["grad_noise_scale"].notna().any() if "grad_noise_scale" in runs else False
    asked = runs["noise_scale"].fillna(False).astype(bool).any() if "noise_scale" in runs else False
    return bool(measured or asked)


def _steps_recorded(results: Results) -> bool:
    return "steps_to_target" in results.runs and bool(results.runs["steps_to_target"].notna().any())


def _applies(stem: str, results: Results, tuning: bool) -> bool:
    """Whether a figure belongs in this report at all (absent ones of older databases are not 'missing')."""
    if stem == "noise_scale":
        return tuning or _measured_noise(results)
    if stem in TUNING_STEMS:
        return tuning
    if stem in STEPS_STEMS:
        return results.has_target and _steps_recorded(results)
    if stem.endswith("_to_target"):
        return results.has_target  # the target section says once why these are absent
    return True


def _figures(results: Results, out: Path, tuning: bool = False) -> dict[str, Block]:
    """Each figure that belongs in this report, by stem, in page order: a picture, or why it is missing."""
    blocks: dict[str, Block] = {}
    for stem, build in FIGURES:
        if not _applies(stem, results, tuning):
            continue
        try:
            fig = build(results)
        except NothingToPlot as exc:
            blocks[stem] = Missing(f"No figure '{stem}': {exc}.")
            continue
        blocks[stem] = Picture(stem, save_figure(fig, out, stem), CAPTIONS[stem])
    return blocks


def _remove_stale(out: Path, produced: set[str]) -> None:
    # A folder reused from an earlier report must not keep a figure this data cannot support.
    for stem, _ in FIGURES:
        if stem not in produced:
            for ext in ("png", "svg"):
                (out / f"{stem}.{ext}").unlink(missing_ok=True)


#: Tables of the tuning sections, written only when the sweep supports them.
TUNING_TABLES: tuple[str, ...] = ("tuned", "tuned_to_target", "critical_batch_size")

_TUNED_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "base_learning_rate": "chosen base rate",
    "learning_rate": "effective rate",
    "rates_tried": "rates tried",
    "n": "n",
    "n_diverged": "diverged",
    "val_rmse_median": "median val RMSE",
    "test_rmse_mean": "mean test RMSE",
    "test_rmse_ci_low": "95% CI low",
    "test_rmse_ci_high": "95% CI high",
    "vs_best": "vs best batch size (Mann-Whitney)",
    "note": "note",
}
_SCALING_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "target": "target",
    "rates_tried": "rates tried",
    "n": "runs",
    "steps_base_learning_rate": "rate (fewest steps)",
    "steps_reached": "reached",
    "steps_median": "median steps",
    "seconds_base_learning_rate": "rate (least time)",
    "seconds_median": "median seconds",
}
_CRITICAL_NAMES = {
    "mode": "mode",
    "target": "target",
    "batch_sizes": "batch sizes fitted",
    "s_min": "S_min (steps)",
    "b_crit": "B_crit",
    "b_crit_ci_low": "95% CI low",
    "b_crit_ci_high": "95% CI high",
    "b_simple_median": "B_simple (median)",
    "b_simple_q1": "B_simple Q1",
    "b_simple_q3": "B_simple Q3",
    "b_simple_n": "runs with B_simple",
    "disagree": "disagree",
    "note": "note",
}


def _tuning_tables(results: Results, out: Path, tuning: bool) -> dict[str, pd.DataFrame]:
    """The tuning tables this sweep supports, each written as CSV; stale ones of an earlier report removed."""
    tables: dict[str, pd.DataFrame] = {}
    if tuning and has_validation(results.runs):
        tables["tuned"] = tuned_table(results.runs, results.facets)
    if results.has_target and _steps_recorded(results):
        tables["tuned_to_target"] = target_scaling_table(results.runs, results.facets)
    if (results.has_target and _steps_recorded(results)) or _measured_noise(results):
        runs = noise_scale_at_target(results.runs, results.epochs) if results.has_target else results.runs
        critical = critical_table(runs, results.facets)
        if not critical.empty:
            tables["critical_batch_size"] = critical
    for name in TUNING_TABLES:
        path = out / f"{name}.csv"
        if name in tables:
            tables[name].drop(columns=["tuning_panel"]).to_csv(path, index=False)
        else:
            path.unlink(missing_ok=True)
    return tables


def _findings(results: Results, acc: pd.DataFrame, speed: pd.DataFrame, tuning_tables: dict, ans: Answer) -> list[str]:
    """The findings as a short list: the warnings first, then each panel's sentences, a sentence that every
    panel repeats said once."""
    empty = pd.DataFrame(columns=["tuning_panel", "mode"])
    per_panel = findings(results, acc, speed)
    per_panel += [
        (f"batch size and learning rate, {label}", sentences)
        for label, sentences in tuning_findings(
            tuning_tables.get("tuned", empty),
            tuning_tables.get("tuned_to_target", empty),
            tuning_tables.get("critical_batch_size", empty),
        )
    ]
    items = [f"warning ({d.scope}): {d.message}" if d.scope else f"warning: {d.message}" for d in ans.diagnostics]
    counts: dict[str, int] = {}
    for _, sentences in per_panel:
        for sentence in dict.fromkeys(sentences):
            counts[sentence] = counts.get(sentence, 0) + 1
    said: set[str] = set()
    for panel, sentences in per_panel:
        for sentence in sentences:
            if counts[sentence] > 1 and len(per_panel) > 1:
                if sentence not in said:
                    items.append(f"every panel: {sentence}" if counts[sentence] == len(per_panel) else sentence)
                    said.add(sentence)
                continue
            items.append(f"{panel}: {sentence}" if panel else sentence)
    return items


def answer_block(ans: Answer) -> Callout:
    """The Recommendation box: one item per panel and mode, the report-wide warnings, the rule."""
    items = [(r.headline(), tuple(r.details())) for r in ans.recommendations]
    items += [(f"warning: {d.message}", ()) for d in ans.general]
    return Callout("Recommendation", tuple(items), ans.rule)


def build_blocks(results: Results, out: Path, margin: float = MARGIN) -> tuple[list[Block], Answer]:
    """The whole report as blocks, and its answer; writes the figures and CSV tables into `out` on the way."""
    facets = results.facets
    tfacets = tuple(f for f in facets if f not in ("base_learning_rate", "learning_rate"))
    overview: list[Block] = [Heading("Overview"), Bullets(tuple(_overview(results)))]
    if results.runs.empty:
        ans = answer(results, margin=margin)
        return [answer_block(ans), *overview, Missing("The results database holds no runs: nothing to report.")], ans
    acc, speed, target, problems = (
        accuracy_table(results),
        speed_table(results),
        target_table(results),
        problem_table(results),
    )
    tuning = is_tuning_sweep(results.runs, facets)
    tuning_tables = _tuning_tables(results, out, tuning)
    ans = answer(results, tuning_tables.get("critical_batch_size"), margin)
    problems = with_diagnostics(problems, ans)
    for name, table in (("accuracy", acc), ("speed", speed), ("time_to_target", target), ("problems", problems)):
        table.drop(columns=["config", "panel"], errors="ignore").to_csv(out / f"{name}.csv", index=False)

    blocks: list[Block] = [
        answer_block(ans),
        Heading("Findings"),
        Bullets(tuple(_findings(results, acc, speed, tuning_tables, ans))),
    ]
    blocks += overview
    by_stem = _figures(results, out, tuning)
    _remove_stale(out, {stem for stem, b in by_stem.items() if isinstance(b, Picture)})

    tuned_sections: list[Block] = []
    if tuning:
        tuned_sections.append(Heading("Learning rate tuned per batch size"))
        tuned_sections += [by_stem[s] for s in ("tuned_rmse_by_batch_size", "lr_batch_heatmap") if s in by_stem]
        if "tuned" in tuning_tables and not tuning_tables["tuned"].empty:
            tuned_sections.append(Table(_display(tuning_tables["tuned"], tfacets, _TUNED_NAMES)))
        elif "tuned_rmse_by_batch_size" not in by_stem:
            tuned_sections.append(Missing(f"No tuned accuracy: {NO_VALIDATION}."))

    target_section: list[Block] = [Heading("Time to target")]
    if not results.has_target:
        target_section.append(
            Missing("No scenario set a target (target: metric and value), so there is no time to target.")
        )
    else:
        target_section += [by_stem[s] for s in STEPS_STEMS if s in by_stem]
        if "tuned_to_target" in tuning_tables:
            target_section.append(Table(_display(tuning_tables["tuned_to_target"], tfacets, _SCALING_NAMES)))
        target_section += [b for stem, b in by_stem.items() if stem.endswith("_to_target") and stem not in STEPS_STEMS]
        target_section.append(
            Table(_display(target, facets, _TARGET_NAMES))
            if not target.empty
            else Missing("A target was set, but no run with it finished (ok or diverged).")
        )
    critical_section: list[Block] = []
    if "critical_batch_size" in tuning_tables or "noise_scale" in by_stem:
        critical_section.append(Heading("Critical batch size"))
        if "noise_scale" in by_stem:
            critical_section.append(by_stem["noise_scale"])
        if "critical_batch_size" in tuning_tables:
            critical_section.append(Table(_display(tuning_tables["critical_batch_size"], tfacets, _CRITICAL_NAMES)))

    detail: list[Block] = [Heading("Figures per configuration" if tuning else "Figures")]
    detail += [b for stem, b in by_stem.items() if not stem.endswith("_to_target") and stem not in TUNING_STEMS]
    detail.append(Heading("Accuracy per configuration (test RMSE)"))
    detail.append(
        Table(_display(acc, facets, _ACCURACY_NAMES))
        if not acc.empty
        else Missing("No successful run recorded a test RMSE.")
    )
    detail.append(Heading("Training throughput per configuration"))
    detail.append(
        Table(_display(speed, facets, _SPEED_NAMES), SPEED_CAPTION)
        if not speed.empty
        else Missing("No successful run recorded a throughput.")
    )
    # a tuned sweep's answer comes before the per-rate detail
    blocks += (
        (tuned_sections + target_section + critical_section + detail)
        if tuning
        else (detail + target_section + critical_section)
    )
    runs_problems = problems[problems["kind"] == "run"]
    blocks.append(Heading(f"Runs not counted in the statistics ({len(runs_problems)})"))
    blocks.append(
        Table(_display(runs_problems, facets, _PROBLEM_NAMES))
        if not runs_problems.empty
        else Paragraph("Every run finished with status 'ok'.")
    )
    blocks.append(Heading("Method"))
    blocks.append(Paragraph(METHODS, note=True))
    return blocks, ans


def with_diagnostics(problems: pd.DataFrame, ans: Answer) -> pd.DataFrame:
    """problems.csv: the runs not counted (kind 'run') and then each diagnostic (kind: its code, `scope`)."""
    runs = problems.assign(kind="run", scope="")
    rows = pd.DataFrame(
        {"kind": [d.code for d in ans.diagnostics], "scope": [d.scope for d in ans.diagnostics],
         "status": "warning", "error": [d.message for d in ans.diagnostics]}
    )  # fmt: skip
    return pd.concat([runs, rows], ignore_index=True) if len(rows) else runs


@dataclass(frozen=True)
class Written:
    """What `write_report` wrote: the page, and the answer it opens with."""

    index: Path
    answer: Answer


def write_report(folders: list[Path], out: Path, margin: float = MARGIN) -> Written:
    """Write the report for the results in `folders` into `out`: index.html (self-contained),
    summary.md, each figure as PNG and SVG, and the tables as CSV. `margin`: the accuracy margin of the
    recommendation (a fraction of the best RMSE)."""
    results = load_results(*folders)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    blocks, ans = build_blocks(results, out, margin)
    title = "lstm-bench report: " + ", ".join(Path(f).name or str(f) for f in folders)
    write_text(out / "summary.md", render_markdown(title, blocks))
    index = out / "index.html"
    write_text(index, render_html(title, blocks))
    log.info("report written to %s", index)
    return Written(index, ans)
