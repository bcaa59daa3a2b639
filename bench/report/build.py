"""`write_report`: results folders in, a report folder out (index.html, summary.md, figures, CSV tables).

The layers: `load` reads the folders, `analysis` computes every table once, `catalog` declares the figures
and tables, `figures` draws, `render` writes HTML and Markdown; this module lays the page out and draws the
figures side by side in worker processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.report.analysis import Analysis, analyse
from bench.report.answer import MARGIN, Answer
from bench.report.catalog import CATALOG, FIGURES, SECTIONS, TABLES, FigureEntry, TableEntry, _PROBLEM_NAMES, figure
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
from bench.report.stats import ALPHA, BOOTSTRAP_RESAMPLES, MIN_REPEATS, status_counts
from bench.report.tuning import tuning_facets

log = logging.getLogger(__name__)

#: Draw figures in worker processes when there are at least this many (starting one costs about a second).
PARALLEL_FROM = 4

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


def _display(table: pd.DataFrame, facets: tuple[str, ...], names: dict[str, str], every: bool = False) -> pd.DataFrame:
    shown = [*names, *(c for c in table.columns if c != "tuning_panel")] if every else names
    cols = list(dict.fromkeys(c for c in (*facets, *shown) if c in table.columns))
    out = table[cols].copy()
    # Alignment follows dtype: text columns get left-aligned, and the mode name is text.
    for c in ("mode", "vs_best", "note", "target", "error", "run_id", "source", "status", "batch_sizes", "disagree",
              "kind", "too_easy"):  # fmt: skip
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


def _findings(a: Analysis) -> list[str]:
    """The findings as a short list: the warnings first, then each panel's sentences, a sentence that several
    panels repeat said once (naming them). A tuned sweep's findings are the tuned ones: the per-rate panels
    are left to the tables."""
    empty = pd.DataFrame(columns=["tuning_panel", "mode"])
    per_panel = [] if a.tuning else findings(a.results, a.accuracy, a.speed, a.answer.margin)
    per_panel += [("", list(a.answer.across))] if a.answer.across else []
    per_panel += [
        (label, sentences)
        for label, sentences in tuning_findings(
            a.tuned if not a.tuned.empty else empty,
            a.scaling if not a.scaling.empty else empty,
            a.critical if not a.critical.empty else empty,
        )
    ]
    items = [f"warning ({d.scope}): {d.message}" if d.scope else f"warning: {d.message}" for d in a.answer.diagnostics]
    counts: dict[str, int] = {}
    for _, sentences in per_panel:
        for sentence in dict.fromkeys(sentences):
            counts[sentence] = counts.get(sentence, 0) + 1
    where: dict[str, list[str]] = {}
    for panel, sentences in per_panel:
        for sentence in dict.fromkeys(sentences):
            where.setdefault(sentence, []).append(panel)
    said: set[str] = set()
    for panel, sentences in per_panel:
        for sentence in sentences:
            panels = where[sentence]
            if len(panels) > 1:
                if sentence not in said:
                    scope = "every panel" if len(panels) == len(per_panel) else "; ".join(p for p in panels if p)
                    items.append(f"{scope}: {sentence}" if scope else sentence)
                    said.add(sentence)
                continue
            items.append(f"{panel}: {sentence}" if panel else sentence)
    return items


def answer_block(ans: Answer) -> Callout:
    """The Recommendation box: one item per panel and mode, the report-wide warnings, the rule."""
    items = [(r.headline(), tuple(r.details())) for r in ans.recommendations]
    items += [(line, ()) for line in ans.across]
    items += [(f"warning: {d.message}", ()) for d in ans.general]
    return Callout("Recommendation", tuple(items), ans.rule)


def _draw(entry: FigureEntry, a: Analysis, out: Path) -> Block:
    """One figure drawn and saved, or why it is missing."""
    from bench.report.figures import NothingToPlot

    try:
        fig = entry.draw(a)
    except NothingToPlot as exc:
        return Missing(f"No figure '{entry.stem}': {exc}.")
    return Picture(entry.stem, save_figure(fig, out, entry.stem), entry.caption)


_WORKER: dict[str, object] = {}


def _init_worker(a: Analysis, out: Path) -> None:
    _WORKER.update(analysis=a, out=out)


def _draw_in_worker(stem: str) -> Block:
    return _draw(figure(stem), _WORKER["analysis"], _WORKER["out"])  # type: ignore[arg-type]


def draw_figures(a: Analysis, out: Path, entries: list[FigureEntry]) -> dict[str, Block]:
    """Each entry drawn into `out`, by stem: in forked worker processes side by side when there are enough
    of them, cores to share and a fork is safe (figures draw independently; saving them dominates a
    report's time), else one after another (a spawned worker would first spend seconds importing)."""
    workers = min(len(entries), os.cpu_count() or 1, 4)
    serial = workers < 2 or len(entries) < PARALLEL_FROM or os.environ.get("LSTM_BENCH_REPORT_WORKERS") == "1"
    if serial or not _fork_is_safe():
        return {e.stem: _draw(e, a, out) for e in entries}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(a, out)) as pool:
        # the slowest figures (most panels) first, so the last one to finish is a quick one
        order = sorted(entries, key=lambda e: -_panels(a, e))
        futures = {e.stem: pool.submit(_draw_in_worker, e.stem) for e in order}
        return {e.stem: futures[e.stem].result() for e in entries}


def _fork_is_safe() -> bool:
    """A fork starts at once and shares the analysis without pickling it, but copies other threads
    mid-state: only on Linux, with no other thread running and no JAX (which runs threads) in this process."""
    import sys
    import threading

    return sys.platform == "linux" and threading.active_count() == 1 and "jax" not in sys.modules


def _panels(a: Analysis, e: FigureEntry) -> int:
    return a.results.runs["panel"].nunique() * (2 if e.stem == "learning_curves" else 1) if e.section == "detail" else 1


def _remove_stale(out: Path, produced: set[str], written: set[str]) -> None:
    # A folder reused from an earlier report must not keep a figure or table this data cannot support.
    for e in FIGURES:
        if e.stem not in produced:
            for ext in ("png", "svg"):
                (out / f"{e.stem}.{ext}").unlink(missing_ok=True)
    for t in TABLES:
        if t.csv and t.csv not in written:
            (out / f"{t.csv}.csv").unlink(missing_ok=True)


def _table_block(t: TableEntry, a: Analysis) -> list[Block]:
    frame = t.frame(a)
    facets = tuning_facets(a.results.facets) if t.tuning_facets else a.results.facets
    head: list[Block] = [Heading(t.heading)] if t.heading else []
    if frame.empty:
        return head + ([Missing(t.empty.format(no_validation=a.no_validation))] if t.empty else [])
    return head + [Table(_display(frame, facets, t.names, t.all_columns), t.caption)]


def _sections(a: Analysis, pictures: dict[str, Block]) -> list[Block]:
    """The catalog's entries by section; a tuned sweep's tuning sections come before the per-rate detail."""
    order = ["tuned", "target", "critical", "detail"] if a.tuning else ["detail", "target", "critical"]
    blocks: list[Block] = []
    for section in order:
        entries = [e for e in CATALOG if e.section == section and e.applies(a)]
        if section == "target" and not a.results.has_target:
            blocks += [Heading(SECTIONS[section]), Missing(NO_TARGET)]
            continue
        if not entries:
            continue
        heading = "Figures per configuration" if section == "detail" and a.tuning else SECTIONS[section]
        blocks.append(Heading(heading))
        for e in entries:
            if isinstance(e, FigureEntry):
                blocks.append(pictures[e.stem])
            else:
                blocks += _table_block(e, a)
    return blocks


NO_TARGET = "No scenario set a target (target: metric and value), so there is no time to target."


def build_blocks(results: Results, out: Path, margin: float = MARGIN) -> tuple[list[Block], Analysis]:
    """The whole report as blocks, and its analysis; writes the figures and CSV tables into `out` on the way."""
    a = analyse(results, margin)
    overview: list[Block] = [Heading("Overview"), Bullets(tuple(_overview(results)))]
    if results.runs.empty:
        blocks = [answer_block(a.answer), *overview, Missing("The results database holds no runs: nothing to report.")]
        return blocks, a
    written = set()
    for t in TABLES:
        # the tuning tables (and other optional ones) exist only where the sweep supports them; the others
        # always (perhaps empty)
        if t.csv and (not (t.tuning_facets or t.optional) or (t.applies(a) and not t.frame(a).empty)):
            t.frame(a).drop(columns=["config", "panel", "tuning_panel", "trial_key"], errors="ignore").to_csv(
                out / f"{t.csv}.csv", index=False
            )
            written.add(t.csv)
    a.problems.drop(columns=["config", "panel"], errors="ignore").to_csv(out / "problems.csv", index=False)
    pictures = draw_figures(a, out, [e for e in FIGURES if e.applies(a)])
    _remove_stale(out, {s for s, b in pictures.items() if isinstance(b, Picture)}, written)

    blocks: list[Block] = [answer_block(a.answer), Heading("Findings"), Bullets(tuple(_findings(a)))]
    blocks += overview
    blocks += _sections(a, pictures)
    runs_problems = a.problems[a.problems["kind"] == "run"]
    blocks.append(Heading(f"Runs not counted in the statistics ({len(runs_problems)})"))
    blocks.append(
        Table(_display(runs_problems, results.facets, _PROBLEM_NAMES))
        if not runs_problems.empty
        else Paragraph("Every run finished with status 'ok'.")
    )
    blocks.append(Heading("Method"))
    blocks.append(Paragraph(METHODS, note=True))
    return blocks, a


@dataclass(frozen=True)
class Written:
    """What `write_report` wrote: the page, the answer it opens with, and the analysis behind it (a suite's
    report reads each workload's from here rather than analysing it again)."""

    index: Path
    answer: Answer
    analysis: Analysis


def write_report(folders: list[Path], out: Path, margin: float = MARGIN) -> Written:
    """Write the report for the results in `folders` into `out`: index.html (self-contained),
    summary.md, each figure as PNG and SVG, and the tables as CSV. `margin`: the accuracy margin of the
    recommendation (a fraction of the best RMSE)."""
    results = load_results(*folders)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    blocks, a = build_blocks(results, out, margin)
    title = "lstm-bench report: " + ", ".join(Path(f).name or str(f) for f in folders)
    write_text(out / "summary.md", render_markdown(title, blocks))
    index = out / "index.html"
    write_text(index, render_html(title, blocks))
    log.info("report written to %s", index)
    return Written(index, a.answer, a)
