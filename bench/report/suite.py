"""The suite report: each workload's recommendation, and batch sizes scored across workloads.

Each workload's results folder is analysed as its own report is (`bench.report.analysis`). From each, per
submission (batch size and mode, and the other varying axes' values: `tuning_panel`):

- **tuned test RMSE**: the mean test RMSE at the trial chosen on validation (`tuned_table`);
- **steps to target**: with studies, the median over studies of each study's fewest median steps
  (AlgoPerf; `study_table`), else the fewest median steps over trials (`target_choices`); inf when missed;
- **seconds to target**: the same on median training seconds.

`bench.report.profiles` then turns these into performance profiles, AlgoPerf scores and geometric-mean
speed-ups over the smallest batch size of each mode. The figure only draws what `analyse_suite` computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.errors import UserError
from bench.report.analysis import Analysis, analyse
from bench.report.answer import MARGIN
from bench.report.build import answer_block
from bench.report.load import load_results
from bench.report.profiles import TAU_MAX, TAUS, profile, ratios, score, speedups
from bench.report.render import Bullets, Heading, Missing, Paragraph, Picture, Table, render_html, render_markdown
from bench.report.render import save_figure, write_text
from bench.suite import read_marker
from bench.vocabulary import MODE_ORDER

#: The costs the workloads are scored on: column, what it is, and its axis label.
COSTS: tuple[tuple[str, str], ...] = (
    ("steps_to_target", "steps to the validation target"),
    ("seconds_to_target", "training seconds to the validation target"),
    ("test_rmse", "tuned test RMSE"),
)


@dataclass(frozen=True)
class SuiteAnalysis:
    """What the suite report says: per-workload analyses and costs, and the scores across workloads."""

    name: str
    description: str
    notes: dict[str, str]
    workloads: dict[str, Analysis]
    costs: pd.DataFrame  # one row per workload and submission
    profiles: dict[str, pd.DataFrame] = field(default_factory=dict)  # cost -> (submission x tau) rho
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # per submission: AlgoPerf score, speed-ups
    not_run: tuple[str, ...] = ()  # workloads of the suite with no results yet (`run --workload` ran others)
    answers: tuple[str, ...] = ()  # per mode: the best submission by its AlgoPerf score against the runner-up


def best_by_mode(costs: pd.DataFrame, scores: pd.DataFrame) -> tuple[str, ...]:
    """One sentence per mode: the submission with the highest AlgoPerf score on the first cost scored
    (`COSTS` order), and how the runner-up compares."""
    column = next((c for c, _ in COSTS if f"score_{c}" in scores), None)
    if column is None:
        return ()
    what = dict(COSTS)[column]
    mode_of = costs.drop_duplicates("submission").set_index("submission")["mode"]
    out = []
    for mode in [m for m in MODE_ORDER if m in set(mode_of)] + sorted(set(mode_of) - set(MODE_ORDER)):
        ranked = scores.loc[mode_of.index[mode_of == mode], f"score_{column}"].dropna().sort_values(ascending=False)
        if ranked.empty:
            continue
        best, top = ranked.index[0], ranked.iloc[0]
        if len(ranked) == 1:
            out.append(f"{best} is the only {mode} submission scored on {what} (score {top:.2f} of 1).")
            continue
        second, runner = ranked.index[1], ranked.iloc[1]
        than = "tied with" if np.isclose(top, runner) else "ahead of"
        out.append(
            f"{best} scores best of the {mode} submissions on {what} ({top:.2f} of 1, the area under its performance "
            f"profile), {than} {second} ({runner:.2f})."
        )
    return tuple(out)


def submission(panel: str, mode: str, batch_size: int) -> str:
    """A submission's label: "stateless, batch 4" (after the tuning panel's values, where any vary)."""
    return ", ".join(x for x in (panel, mode, f"batch {int(batch_size)}") if x)


def workload_costs(name: str, a: Analysis) -> pd.DataFrame:
    """One workload's costs per submission (`COSTS`), and its step budget."""
    keys = ["tuning_panel", "mode", "batch_size"]
    frames = []
    if not a.tuned.empty:
        frames.append(a.tuned[[*keys, "test_rmse_mean"]].rename(columns={"test_rmse_mean": "test_rmse"}))
    if not a.studies.empty:
        for table, column in ((a.studies, "steps"), (a.seconds_studies, "seconds")):
            frames.append(table[[*keys, f"{column}_study_median"]].rename(
                columns={f"{column}_study_median": f"{column}_to_target"}))  # fmt: skip
    else:
        for choices, column in ((a.steps_choices, "steps_to_target"), (a.seconds_choices, "seconds_to_target")):
            if not choices.empty:
                frames.append(choices[[*keys, "median"]].rename(columns={"median": column}))
    if not frames:
        return pd.DataFrame()
    table = frames[0]
    for f in frames[1:]:
        table = table.merge(f, on=keys, how="outer")
    for column in ("steps_to_target", "seconds_to_target"):
        if column in table:  # a chosen trial whose median run missed: NaN there, a miss here
            table[column] = pd.to_numeric(table[column], errors="coerce").fillna(np.inf)
    runs = a.results.runs
    budget = pd.to_numeric(runs.get("steps_run"), errors="coerce").max() if "steps_run" in runs else np.nan
    table = table.assign(
        workload=name,
        submission=[submission(p, m, b) for p, m, b in zip(table["tuning_panel"], table["mode"], table["batch_size"])],
        budget_steps=budget,
    )
    return table


def analyse_suite(
    folder: Path, margin: float = MARGIN, analysed: Mapping[Path, Analysis] | None = None
) -> SuiteAnalysis:
    """Analyse every workload of the suite recorded in `folder` (`bench.suite.MARKER`) and score them;
    `analysed`: workloads already analysed, by their resolved folder (a run's own reports), read as they are."""
    record = read_marker(folder)
    if record is None:
        raise UserError(f"{folder}: not a suite folder (no suite.json); run the suite with lstm-bench run first")
    workloads, notes, not_run = {}, {}, []
    for w in record["workloads"]:
        sub = folder / w["name"]
        if not (sub / "results.db").is_file():
            not_run.append(w["name"])
            continue
        known = (analysed or {}).get(sub.resolve())
        workloads[w["name"]] = known if known is not None else analyse(load_results(sub), margin)
        notes[w["name"]] = w.get("note", "")
    if not workloads:
        raise UserError(f"{folder}: no workload of suite '{record['suite']}' has results yet; run the suite first")
    parts = [workload_costs(n, a) for n, a in workloads.items()]
    costs = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) else (
        pd.DataFrame())  # fmt: skip
    profiles, scores = {}, pd.DataFrame()
    if not costs.empty:
        order = _submission_order(costs)
        rows: dict[str, pd.Series] = {}
        for column, _ in COSTS:
            if column not in costs:
                continue
            table = costs.pivot_table(index="workload", columns="submission", values=column, aggfunc="first")
            table = table.reindex(columns=order)
            rho = profile(ratios(table))
            profiles[column] = rho
            rows[f"score_{column}"] = score(rho)
        if "steps_to_target" in costs:
            steps = costs.pivot_table(index="workload", columns="submission", values="steps_to_target", aggfunc="first")
            steps = steps.reindex(columns=order)
            budgets = costs.groupby("workload")["budget_steps"].max().reindex(steps.index)
            for mode_base in _baselines(costs):
                rows[f"speedup_vs_{mode_base}"] = speedups(steps, budgets, mode_base)
        scores = pd.DataFrame(rows).reindex(order)
        scores.index.name = "submission"
    answers = best_by_mode(costs, scores) if not scores.empty else ()
    return SuiteAnalysis(
        record["suite"],
        record.get("description", ""),
        notes,
        workloads,
        costs,
        profiles,
        scores,
        tuple(not_run),
        answers,
    )


def _submission_order(costs: pd.DataFrame) -> list[str]:
    rank = costs.assign(_mode=costs["mode"].map({m: i for i, m in enumerate(MODE_ORDER)}).fillna(len(MODE_ORDER)))
    return list(dict.fromkeys(rank.sort_values(["tuning_panel", "_mode", "batch_size"])["submission"]))


def _baselines(costs: pd.DataFrame) -> list[str]:
    """The smallest batch size of each tuning panel and mode: what the speed-ups are measured against."""
    first = costs.sort_values("batch_size").groupby(["tuning_panel", "mode"], sort=False).head(1)
    return list(dict.fromkeys(first["submission"]))


def profile_figure(s: SuiteAnalysis) -> Figure:
    """rho(tau) per submission, one panel per cost (`COSTS`); the legend gives each AlgoPerf score."""
    import seaborn as sns

    from bench.report.figures import fixed_layout

    shown = [(c, what) for c, what in COSTS if c in s.profiles]
    fig = Figure(figsize=(5.2 * len(shown), 4.6))
    axes = fig.subplots(1, len(shown), squeeze=False).ravel()
    fixed_layout(fig, 1, len(shown))
    # colour: the batch size; line style: the mode (and the other varying axes' values, in turn)
    sizes = sorted(s.costs["batch_size"].unique())
    palette = dict(zip(sizes, sns.color_palette("viridis", len(sizes))))
    looks = s.costs.drop_duplicates("submission").set_index("submission")
    styles = dict(zip(dict.fromkeys(zip(looks["tuning_panel"], looks["mode"])), ("-", "--", ":", "-.") * 8))
    for ax, (column, what) in zip(axes, shown):
        rho = s.profiles[column]
        for name, row in rho.iterrows():
            look = looks.loc[name]
            ax.step(TAUS, row.to_numpy(), where="post", color=palette[look["batch_size"]], lw=1.6,
                    ls=styles[look["tuning_panel"], look["mode"]],
                    label=f"{name} ({s.scores.loc[name, f'score_{column}']:.2f})")  # fmt: skip
        ax.set_xlim(1.0, TAU_MAX)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("tau: within this factor of the best")
        ax.set_ylabel("share of workloads")
        ax.set_title(what, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", title="submission (score)", title_fontsize=7)
    fig.suptitle(f"Performance profiles across {len(s.workloads)} workloads (AlgoPerf score in brackets)", fontsize=12)
    return fig


CAPTION = (
    "Performance profiles (Dolan and Moré 2002; MLCommons AlgoPerf): for each submission (a batch size and mode), "
    "rho(tau) is the share of workloads on which its cost is within tau times the best submission's. A missed target "
    "never counts. The AlgoPerf score is the area under rho from tau 1 to 4, divided by 3: 1 is best everywhere."
)
SCORE_CAPTION = (
    "AlgoPerf scores (normalised area under rho up to tau 4) per cost, and geometric-mean speed-ups in steps to "
    "target over each mode's smallest batch size, a miss counting as the step budget + 1."
)


@dataclass(frozen=True)
class SuiteWritten:
    """What `write_suite_report` wrote: the page, and the analysis it shows."""

    index: Path
    analysis: SuiteAnalysis


def _not_run(s: SuiteAnalysis) -> str:
    picks = " ".join(f"--workload {n}" for n in s.not_run)
    return (
        f"Not run yet, so not scored: {', '.join(s.not_run)} (lstm-bench run SUITE.yaml {picks}); the scores cover "
        f"{len(s.workloads)} workloads."
    )


def write_suite_report(
    folder: Path, margin: float = MARGIN, analysed: Mapping[Path, Analysis] | None = None
) -> SuiteWritten:
    """Write the suite report into `folder`/report (`analysed`: as `analyse_suite` takes it): index.html,
    summary.md, the profile figure, costs.csv,
    profiles.csv and scores.csv."""
    s = analyse_suite(folder, margin, analysed)
    out = folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    blocks: list = []
    if s.description:
        blocks.append(Paragraph(s.description))
    if s.answers:
        blocks.append(Bullets(s.answers))
    if s.not_run:
        blocks.append(Missing(_not_run(s)))
    # the answer across workloads first, then each workload's own
    blocks.append(Heading("Scores across workloads"))
    if s.costs.empty:
        blocks.append(Missing("No workload has a tuned accuracy or a time to target to score."))
    else:
        blocks.append(Picture("performance_profiles", save_figure(profile_figure(s), out, "performance_profiles"),
                              CAPTION))  # fmt: skip
        blocks.append(Table(s.scores.reset_index(), SCORE_CAPTION))
        costs = s.costs.drop(columns=["tuning_panel"]).set_index(["workload", "submission"]).reset_index()
        blocks.append(Table(costs, "Each workload's cost per submission (inf: the target was missed)."))
        costs.to_csv(out / "costs.csv", index=False)
        s.scores.to_csv(out / "scores.csv")
        pd.concat({c: p for c, p in s.profiles.items()}, names=["cost", "submission"]).to_csv(out / "profiles.csv")
    blocks.append(Heading("Each workload's recommendation"))
    for name, a in s.workloads.items():
        blocks.append(Heading(f"{name}"))
        if s.notes.get(name):
            blocks.append(Paragraph(f"Target: {s.notes[name]}", note=True))
            blocks.append(answer_block(a.answer))
    blocks.append(Bullets(tuple(f"{n}: {folder / n / 'report' / 'index.html'}" for n in s.workloads)))
    title = f"lstm-bench suite report: {s.name}"
    write_text(out / "summary.md", render_markdown(title, blocks))
    index = out / "index.html"
    write_text(index, render_html(title, blocks))
    return SuiteWritten(index, s)
