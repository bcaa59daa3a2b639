"""`write_report`: results folders in, a report folder out (index.html, summary.md, figures, CSV tables)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from bench.report.figures import FIGURES, NothingToPlot
from bench.report.findings import findings
from bench.report.load import Results, load_results
from bench.report.render import (
    Block,
    Bullets,
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

log = logging.getLogger(__name__)

CAPTIONS: dict[str, str] = {
    "rmse_by_batch_size": "Test RMSE by batch size. Boxes span the repeats of one configuration (whiskers 1.5 IQR), "
    "dots are individual runs (at most 300 per panel, a fixed random sample), the dashed line is the persistence "
    "forecast (predict the last value).",
    "throughput_by_batch_size": "Training samples per second by batch size, log-log. Line: median over repeats; "
    "band: min to max; dots: individual runs.",
    "tradeoff": "Mean test RMSE against mean throughput per configuration, labelled with the batch size. Ringed and "
    "joined: Pareto-optimal configurations, for which no other is both faster and more accurate.",
    "learning_curves": "Training loss by epoch for successful runs: mean over repeats per batch size, band from "
    "min to max.",
    "epochs_to_target": "Epochs each run needed to reach the target. Crosses on the top line never reached it; "
    "bars are olympic means (fastest and slowest run dropped).",
    "seconds_to_target": "Training seconds each run needed to reach the target. Crosses on the top line never reached "
    "it; bars are olympic means (fastest and slowest run dropped).",
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
_SPEED_NAMES = {
    "mode": "mode",
    "batch_size": "batch size",
    "n": "n",
    "sps_mean": "mean samples/s",
    "sps_std": "std",
    "sps_median": "median",
    "sps_min": "min",
    "sps_max": "max",
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
    f"scores them MLPerf style: the olympic mean drops the fastest and slowest run."
)


def _display(table: pd.DataFrame, facets: tuple[str, ...], names: dict[str, str]) -> pd.DataFrame:
    cols = [c for c in (*facets, *names) if c in table.columns]
    out = table[cols].copy()
    # Alignment follows dtype: text columns get left-aligned, and the mode name is text.
    for c in ("mode", "vs_best", "note", "target", "error", "run_id", "source", "status"):
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


def _figures(results: Results, out: Path) -> list[Block]:
    blocks: list[Block] = []
    for stem, build in FIGURES:
        if stem.endswith("_to_target") and not results.has_target:
            continue  # the target section says once why these are absent
        try:
            fig = build(results)
        except NothingToPlot as exc:
            blocks.append(Missing(f"No figure '{stem}': {exc}."))
            continue
        blocks.append(Picture(stem, save_figure(fig, out, stem), CAPTIONS[stem]))
    return blocks


def _remove_stale(out: Path, produced: set[str]) -> None:
    # A folder reused from an earlier report must not keep a figure this data cannot support.
    for stem, _ in FIGURES:
        if stem not in produced:
            for ext in ("png", "svg"):
                (out / f"{stem}.{ext}").unlink(missing_ok=True)


def build_blocks(results: Results, out: Path) -> list[Block]:
    """The whole report as blocks; writes the figures and CSV tables into `out` on the way."""
    facets = results.facets
    blocks: list[Block] = [Heading("Overview"), Bullets(tuple(_overview(results)))]
    if results.runs.empty:
        return blocks + [Missing("The results database holds no runs: nothing to report.")]
    acc, speed, target, problems = (
        accuracy_table(results),
        speed_table(results),
        target_table(results),
        problem_table(results),
    )
    for name, table in (("accuracy", acc), ("speed", speed), ("time_to_target", target), ("problems", problems)):
        table.drop(columns=["config", "panel"], errors="ignore").to_csv(out / f"{name}.csv", index=False)

    blocks.append(Heading("Findings"))
    for panel, sentences in findings(results, acc, speed):
        blocks.append(Paragraph((f"{panel}: " if panel else "") + " ".join(sentences)))

    blocks.append(Heading("Figures"))
    figure_blocks = _figures(results, out)
    _remove_stale(out, {b.stem for b in figure_blocks if isinstance(b, Picture)})
    blocks += [b for b in figure_blocks if not (isinstance(b, Picture) and b.stem.endswith("_to_target"))]

    blocks.append(Heading("Accuracy per configuration (test RMSE)"))
    blocks.append(
        Table(_display(acc, facets, _ACCURACY_NAMES))
        if not acc.empty
        else Missing("No successful run recorded a test RMSE.")
    )
    blocks.append(Heading("Training throughput per configuration"))
    blocks.append(
        Table(_display(speed, facets, _SPEED_NAMES))
        if not speed.empty
        else Missing("No successful run recorded a throughput.")
    )

    blocks.append(Heading("Time to target"))
    if not results.has_target:
        blocks.append(Missing("No scenario set a target (target: metric and value), so there is no time to target."))
    else:
        blocks += [b for b in figure_blocks if isinstance(b, Picture) and b.stem.endswith("_to_target")]
        blocks.append(
            Table(_display(target, facets, _TARGET_NAMES))
            if not target.empty
            else Missing("A target was set, but no run with it finished (ok or diverged).")
        )

    blocks.append(Heading(f"Runs not counted in the statistics ({len(problems)})"))
    blocks.append(
        Table(_display(problems, facets, _PROBLEM_NAMES))
        if not problems.empty
        else Paragraph("Every run finished with status 'ok'.")
    )
    blocks.append(Heading("Method"))
    blocks.append(Paragraph(METHODS, note=True))
    return blocks


def write_report(folders: list[Path], out: Path) -> Path:
    """Write the report for the results in `folders` into `out`: index.html (self-contained),
    summary.md, each figure as PNG and SVG, and the tables as CSV. Returns the index.html path."""
    results = load_results(*folders)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(results, out)
    title = "lstm-bench report: " + ", ".join(Path(f).name or str(f) for f in folders)
    write_text(out / "summary.md", render_markdown(title, blocks))
    index = out / "index.html"
    write_text(index, render_html(title, blocks))
    log.info("report written to %s", index)
    return index
