"""Read one or more results folders into two DataFrames, and name what makes a configuration.

The report reads only the results databases, never the runner. Several folders are
concatenated (asv style: copy folders to merge machines), each row tagged with its `source`.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets.checks import DataCheck
from bench.errors import UserError
from bench.invocations import data_checks
from bench.runspec import trial_columns
from bench.schema import schema
from bench.store import Store
from bench.vocabulary import OK, mode_label

log = logging.getLogger(__name__)

#: The run fields that define a configuration: repeats of one configuration differ only in
#: repeat and seed (and so in run_id). From the run schema (`bench.schema`).
CONFIG_COLUMNS: tuple[str, ...] = schema().config

#: Columns that may vary across a sweep and then split the figures into panels, in the order
#: they are tried. batch_size is the x axis and stateful/layout the hue ("mode"), so they are
#: not facets; dataset_params is folded into the dataset label.
FACET_CANDIDATES: tuple[str, ...] = schema().facets

# SQLite hands back object columns when a column is all NULL (e.g. only failed runs): coerce.
_NUMERIC_RUN_COLUMNS: tuple[str, ...] = schema().numeric_runs
_NUMERIC_EPOCH_COLUMNS: tuple[str, ...] = schema().numeric_epochs


@dataclass(frozen=True)
class Results:
    """Runs and epochs of one or more results folders.

    `runs` has the store's run columns plus `source` (the folder's name), `mode` (stateless,
    stateful/streams, stateful/sequential), `config` (a key shared by the repeats of one
    configuration that trained alike) and `panel` (the values of the facet axes, "" when nothing but batch size
    and mode varies). `epochs` has the store's epoch columns plus `source`.
    """

    runs: pd.DataFrame
    epochs: pd.DataFrame
    facets: tuple[str, ...]
    data_checks: tuple[DataCheck, ...] = ()  # the warnings about the data that the folders' plans recorded

    @property
    def ok(self) -> pd.DataFrame:
        """Runs whose metrics can be trusted (status 'ok')."""
        return self.runs[self.runs["status"] == OK]

    @property
    def problems(self) -> pd.DataFrame:
        """Runs that failed, diverged or were unsupported: always reported, never dropped."""
        return self.runs[self.runs["status"] != OK]

    @property
    def has_target(self) -> bool:
        return bool(self.runs["target_metric"].notna().any())


def _source_names(folders: list[Path]) -> list[str]:
    # Folder names are short and readable; fall back to full paths only when two names clash.
    names = [f.name or str(f) for f in folders]
    return names if len(set(names)) == len(names) else [str(f) for f in folders]


def _mode(stateful: pd.Series, layout: pd.Series) -> pd.Series:
    return pd.Series(
        [mode_label(s, lay) for s, lay in zip(stateful, layout)],
        index=stateful.index,
        dtype="object",
    )


def facet_columns(runs: pd.DataFrame) -> tuple[str, ...]:
    """The facet axes of a sweep: candidates that vary and are not implied by those already chosen.

    steps_per_execution, for instance, follows the engine (scan engines always use 1), so a
    sweep over engines is faceted by engine alone.
    """
    chosen: list[str] = []
    for col in FACET_CANDIDATES:
        values = runs[col].astype("string").fillna("none")
        if values.nunique() < 2:
            continue
        if chosen:
            keys = [runs[c].astype("string").fillna("none") for c in chosen]
            if values.groupby(keys, dropna=False).nunique().max() < 2:
                continue
        chosen.append(col)
    return tuple(chosen)


def panel_labels(runs: pd.DataFrame, facets: tuple[str, ...]) -> pd.Series:
    """One label per run naming its facet values, e.g. 'device=gpu, look_back=6'."""
    if not facets:
        return pd.Series("", index=runs.index, dtype="object")
    parts = [col + "=" + runs[col].astype("string").fillna("none") for col in facets]
    label = parts[0]
    for p in parts[1:]:
        label = label + ", " + p
    return label.astype("object")


def join_columns(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string key per row from `columns` ("a|b|c"; missing values read "none"), built column by column
    (a row-wise join costs seconds on thousands of runs)."""
    if not len(frame):
        return pd.Series(dtype="object", index=frame.index)
    parts = [frame[c].astype(str).where(frame[c].notna(), "none") for c in columns]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key.astype(object)


def distinct_dataset_labels(labels: pd.Series, params: pd.Series) -> list[str]:
    """Dataset labels that tell apart datasets sharing one: the label, then the parameters in which they
    differ, readably (`sine period=12`, `macrodata:unemp +infl,tbilrate` for added features; `version 2` when
    only the file's content differs). The full identity stays in `dataset_params`."""
    names: dict[tuple[str, str], str] = {}
    for label, group in pd.DataFrame({"label": labels, "params": params}).groupby("label", sort=False):
        variants = list(dict.fromkeys(group["params"]))
        if len(variants) == 1:
            names[(label, variants[0])] = label
            continue
        parsed = [json.loads(p) if isinstance(p, str) and p.startswith("{") else {} for p in variants]
        keys = sorted({k for d in parsed for k in d} - {"sha256"})
        differing = [k for k in keys if len({json.dumps(d.get(k), sort_keys=True) for d in parsed}) > 1]
        common = set.intersection(*(set(d.get("features", [])) for d in parsed))  # inputs every variant has
        texts = [" ".join([label, *(_param_text(k, d, common) for k in differing if k in d or k == "features")])
                 for d in parsed]  # fmt: skip
        for i, (raw, text) in enumerate(zip(variants, texts, strict=True)):
            names[(label, raw)] = f"{text} version {i + 1}" if texts.count(text) > 1 else text
    return [names[(lab, p)] for lab, p in zip(labels, params, strict=True)]


def _param_text(key: str, params: dict, common: set[str]) -> str:
    value = params.get(key, [])
    if key == "features":  # the inputs besides the target and those every variant has
        target = params.get("target", params.get("column"))
        extra = [f for f in value if f != target and f not in common]
        if extra:
            return "+" + ",".join(extra)
        return "univariate" if len(value) <= 1 else "features=" + ",".join(value)
    if isinstance(value, list):
        return f"{key}={','.join(map(str, value))}"
    return f"{key}={value}"


def prepare_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Add the derived columns (mode, config, panel) to a runs table; returns it and its facet axes."""
    runs = runs.copy()
    for col in _NUMERIC_RUN_COLUMNS:
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    # Two datasets may share a label (two sine waves with different periods): keep them apart.
    params_per_label = runs.groupby("dataset")["dataset_params"].nunique()
    if (params_per_label > 1).any():
        runs["dataset"] = distinct_dataset_labels(runs["dataset"], runs["dataset_params"])
    # one throughput statistic (`bench.results.Throughput`): runs before 0.9 stored the rate over all their
    # rounds, and their median round beside it
    runs["samples_per_sec"] = runs["sps_median"].fillna(runs["samples_per_sec"])
    runs["machine_samples_per_sec"] = runs["samples_per_sec"] * runs["trained_together"].fillna(1)
    runs["stateful"] = runs["stateful"].astype(bool)
    runs["batch_size"] = runs["batch_size"].astype(int)
    runs["mode"] = _mode(runs["stateful"], runs["layout"])
    # the report's groups: a configuration, split further by any outcome it facets by (repeats trained
    # together report shared epoch times, so a retried repeat trained alone is a group of its own)
    group = [*CONFIG_COLUMNS, *(c for c in FACET_CANDIDATES if c not in CONFIG_COLUMNS)]
    runs["config"] = join_columns(runs, group)
    facets = facet_columns(runs)
    runs["panel"] = panel_labels(runs, facets)
    for name, column in tuning_columns(runs, facets).items():
        runs[name] = column
    return runs, facets


#: Columns of a run's optimizer trial (the learning rate among them): an axis of the tuning figures, never
#: one of their panels.
TRIAL_COLUMNS: tuple[str, ...] = trial_columns()

#: The columns `tuning_columns` derives.
TUNING_COLUMNS: tuple[str, ...] = ("rate", "trial_key", "tuning_panel")


def tuning_facets(facets: tuple[str, ...]) -> tuple[str, ...]:
    """The report's facets without the trial columns: the panels of the tuning figures."""
    return tuple(f for f in facets if f not in TRIAL_COLUMNS)


def tuning_columns(runs: pd.DataFrame, facets: tuple[str, ...]) -> dict[str, pd.Series]:
    """`rate` (the base learning rate; the effective rate for rows without one), `trial_key` (the run's search
    trial, else its rate) and `tuning_panel` (the facet values other than the trial's) of prepared runs."""
    effective = pd.to_numeric(runs["learning_rate"], errors="coerce")
    base = pd.to_numeric(runs["base_learning_rate"], errors="coerce") if "base_learning_rate" in runs else effective
    rate = base.fillna(effective)
    trial = pd.to_numeric(runs["trial"], errors="coerce") if "trial" in runs else pd.Series(np.nan, index=runs.index)
    key = [f"trial {int(t)}" if np.isfinite(t) else f"rate {r!r}" for t, r in zip(trial, rate)]
    return {
        "rate": rate,
        "trial_key": pd.Series(key, index=runs.index, dtype="object"),
        "tuning_panel": panel_labels(runs, tuning_facets(facets)),
    }


def load_results(*folders: str | Path) -> Results:
    """Load the runs and epochs of each results folder (folders holding `results.db`)."""
    if not folders:
        raise UserError("report: name at least one results folder")
    paths: list[Path] = []
    for f in folders:
        p = Path(f)
        if any(p.resolve() == q.resolve() for q in paths):
            log.warning("%s given twice; reading it once", p)
            continue
        paths.append(p)
    runs_parts: list[pd.DataFrame] = []
    epoch_parts: list[pd.DataFrame] = []
    held: list[dict] = []
    for path, name in zip(paths, _source_names(paths)):
        with closing(Store.open(path, create=False)) as store:
            r, e = store.runs(), store.epochs()
            held += (store.invocation() or {}).get("plans", [])
        log.info("%s: %d runs, %d epoch rows", path, len(r), len(e))
        r.insert(0, "source", name)
        e.insert(0, "source", name)
        runs_parts.append(r)
        epoch_parts.append(e)
    runs = (
        pd.concat(runs_parts, ignore_index=True)
        if runs_parts
        else pd.DataFrame(columns=["source", *schema().run_names])
    )
    epochs = (
        pd.concat(epoch_parts, ignore_index=True)
        if epoch_parts
        else pd.DataFrame(columns=["source", *schema().epoch_names])
    )
    # the same run copied into two folders (merged machines) must count once, not twice
    dup = runs.duplicated("run_id", keep="last")
    if dup.any():
        log.warning(
            "%d runs appear in more than one folder; keeping the copy from the last folder given", int(dup.sum())
        )
        kept = runs[~dup][["source", "run_id"]]
        runs = runs[~dup].reset_index(drop=True)
        epochs = epochs.merge(kept, on=["source", "run_id"]).reset_index(drop=True)
    for col in _NUMERIC_EPOCH_COLUMNS:
        epochs[col] = pd.to_numeric(epochs[col], errors="coerce")
    runs, facets = prepare_runs(runs)
    return Results(evaluation_columns(runs, epochs), epochs, facets, tuple(data_checks(held)))


def evaluation_columns(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with `first_eval_step` (the step of each run's first evaluation: `eval_every` steps with a step
    budget, else the first evaluated epoch's step) and `target_best` filled in for rows older than that
    column (the best value of the target metric in the epochs table)."""
    runs = runs.copy()
    runs["first_eval_step"] = pd.to_numeric(runs.get("target_resolution"), errors="coerce")
    metrics = [m for m in runs["target_metric"].dropna().unique() if m in epochs]
    if not metrics or epochs.empty:
        return runs
    per_run = []
    for metric in metrics:
        ids = runs.loc[runs["target_metric"] == metric, ["source", "run_id"]]
        e = epochs.merge(ids, on=["source", "run_id"])
        e = e[e[metric].notna()]
        if e.empty:
            continue
        at = e["eval_step"].fillna(e["step"]) if "eval_step" in e else e["step"]
        per_run.append(e.assign(_at=at).groupby(["source", "run_id"]).agg(_first=("_at", "min"), _best=(metric, "min")))
    if not per_run:
        return runs
    found = pd.concat(per_run).reset_index()
    merged = runs[["source", "run_id"]].merge(found, on=["source", "run_id"], how="left")
    runs["first_eval_step"] = runs["first_eval_step"].fillna(pd.Series(merged["_first"].to_numpy(), index=runs.index))
    best = pd.to_numeric(runs.get("target_best"), errors="coerce")
    runs["target_best"] = best.fillna(pd.Series(merged["_best"].to_numpy(), index=runs.index))
    return runs
