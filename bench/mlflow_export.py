"""lstm-bench runs as MLflow runs: a view onto the results database for teams that live in MLflow.

One MLflow run per lstm-bench run, under a parent run per scenario (which holds the report as
artifacts): params are the configuration, metrics the final accuracy and speed figures plus the
per-epoch values as step metrics (`epoch.loss`, `epoch.val_rmse`, ...), tags the status, scenario,
host, versions and the lstm-bench `run_id`. Runs are matched on that tag, so exporting again skips
what MLflow already has and replaces a run that changed (a failed run retried): never a duplicate.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

import bench
from bench.errors import UserError
from bench.schema import schema
from bench.vocabulary import MLFLOW_STATE, mode_label

RUN_TAG = "lstm_bench.run_id"
PARENT_TAG = "lstm_bench.scenario_parent"
FINISHED_TAG = "lstm_bench.finished_at"
DEFAULT_EXPERIMENT = "lstm-bench"
#: Per-epoch columns logged as step metrics (step = epoch), prefixed "epoch.".
EPOCH_METRICS = ("loss", "seconds", "train_rmse", "val_rmse", "test_rmse", "test_mae", "grad_noise_scale")
TAG_COLUMNS = ("status", "scenario", "hostname", "backend_version", "gpus", "error", "notes", "env_id")
_BATCH = 900  # MLflow takes at most 1000 metrics per log_batch call


def client(tracking_uri: str | None) -> Any:
    """An MLflow client for `tracking_uri` (MLflow's default when None), or a one-line error without MLflow."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError(
            "MLflow is not installed; install it with pip install '.[mlflow]' in the lstm-bench checkout"
        ) from None
    return MlflowClient(tracking_uri)


def _ms(stamp: Any) -> int | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MlflowSink:
    """Writes lstm-bench runs into one MLflow experiment, matching earlier exports on the run_id tag."""

    def __init__(self, tracking_uri: str | None, experiment: str = DEFAULT_EXPERIMENT) -> None:
        try:
            self.client = client(tracking_uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        except UserError:  # MLflow is not installed
            raise
        except Exception as exc:  # MLflow raises its own exception types for unreachable or bad stores
            detail = " ".join(str(exc).split())[:200]
            raise UserError(f"mlflow: cannot use tracking URI {tracking_uri or '(default)'} ({detail})") from None
        self._parents: dict[str, str] = {}
        self._known = self._search(f"tags.`{RUN_TAG}` != ''", RUN_TAG)

    def _search(self, filter_string: str, key: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            for run in page:
                found.setdefault(run.data.tags[key], run)
            token = page.token
            if not token:
                return found

    def parent(self, scenario: str) -> str:
        """The MLflow run id of the scenario's parent run (created on first use)."""
        if scenario not in self._parents:
            found = self._search(f"tags.`{PARENT_TAG}` = '{scenario}'", PARENT_TAG)
            if scenario in found:
                self._parents[scenario] = found[scenario].info.run_id
            else:
                run = self.client.create_run(
                    self.experiment_id, tags={PARENT_TAG: scenario, "mlflow.runName": scenario}
                )
                self.client.set_terminated(run.info.run_id)
                self._parents[scenario] = run.info.run_id
        return self._parents[scenario]

    def log_run(self, row: dict[str, Any], epochs: pd.DataFrame) -> str:
        """Log one lstm-bench run (a runs-table row and its epoch rows): 'created', 'replaced' or 'skipped'."""
        from mlflow.entities import Metric, Param

        run_id = row["run_id"]
        previous = self._known.get(run_id)
        finished = str(row.get("finished_at") or "")
        if previous is not None and previous.data.tags.get(FINISHED_TAG) == finished:
            return "skipped"
        if previous is not None:  # the run changed since (a retry): one MLflow run per lstm-bench run
            self.client.delete_run(previous.info.run_id)
        sc = schema()
        mode = mode_label(row["stateful"], row["layout"])
        name = f"{row['dataset']} b{row['batch_size']} {mode} lr{row['learning_rate']:g} r{row['repeat']}"
        tags = {
            "mlflow.parentRunId": self.parent(str(row["scenario"])),
            "mlflow.runName": name,
            RUN_TAG: run_id,
            FINISHED_TAG: finished,
            "lstm_bench.version": bench.__version__,
            **{c: str(row[c])[:5000] for c in TAG_COLUMNS if row.get(c) is not None and not pd.isna(row[c])},
        }
        run = self.client.create_run(self.experiment_id, start_time=_ms(row.get("started_at")), tags=tags)
        mid = run.info.run_id
        config = [c.name for c in sc.spec_columns if c.kind in ("config", "seed", "provenance")]
        params = [Param(k, str(row[k])[:6000]) for k in config if row.get(k) is not None and not pd.isna(row[k])]
        now = _ms(row.get("finished_at")) or 0
        outcome = [c.name for c in sc.result_columns if c.numeric]
        metrics = [Metric(k, float(row[k]), now, 0) for k in outcome if _finite(row.get(k))]
        for rec in epochs.to_dict("records"):
            metrics += [
                Metric(f"epoch.{k}", float(rec[k]), now, int(rec["epoch"]))
                for k in EPOCH_METRICS
                if _finite(rec.get(k))
            ]
        for i in range(0, len(params), 100):
            self.client.log_batch(mid, params=params[i : i + 100])
        for i in range(0, len(metrics), _BATCH):
            self.client.log_batch(mid, metrics=metrics[i : i + _BATCH])
        self.client.set_terminated(mid, MLFLOW_STATE[row["status"]], end_time=_ms(row.get("finished_at")))
        self._known[run_id] = self.client.get_run(mid)
        return "replaced" if previous is not None else "created"

    def log_report(self, scenario: str, report: Path) -> None:
        """Attach a report folder to the scenario's parent run."""
        if report.is_dir():
            self.client.log_artifacts(self.parent(scenario), str(report), artifact_path="report")


def export_to_mlflow(folder: str | Path, tracking_uri: str | None, experiment: str) -> dict[str, int]:
    """Export every run of a results folder (and its report) to MLflow; counts of created, replaced, skipped."""
    from contextlib import closing

    from bench.store import Store

    folder = Path(folder)
    with closing(Store.open(folder, create=False)) as store:
        runs, epochs = store.runs(), store.epochs()
    sink = MlflowSink(tracking_uri, experiment)
    counts = {"created": 0, "replaced": 0, "skipped": 0}
    by_run = dict(tuple(epochs.groupby("run_id"))) if len(epochs) else {}
    for row in runs.to_dict("records"):
        counts[sink.log_run(row, by_run.get(row["run_id"], epochs.iloc[:0]))] += 1
    for scenario in sorted(runs["scenario"].dropna().unique()):
        sink.log_report(str(scenario), folder / "report")
    return counts


class LiveLogger:
    """The run's events, passed on to `inner` (the terminal), with each finished run logged to MLflow."""

    def __init__(self, inner: Any, sink: MlflowSink) -> None:
        self.inner = inner
        self.sink = sink
        self.scenario = ""

    def scenario_started(self, plan: Any, done: int, todo: int) -> None:
        self.scenario = plan.specs[0].scenario if plan.specs else ""
        self.inner.scenario_started(plan, done, todo)

    def result(self, result: Any, attempt: int, retry: bool) -> None:
        from bench.results import EpochRow
        from bench.schema import flat_values
        from bench.store import run_row

        self.inner.result(result, attempt, retry)
        if not retry:  # a run that will be retried is logged once it is final
            epochs = pd.DataFrame([flat_values(e) for e in result.epochs], columns=list(EpochRow.__dataclass_fields__))
            self.sink.log_run(run_row(result), epochs)

    def skipped(self, specs: Any) -> None:
        self.inner.skipped(specs)

    def scenario_finished(self, plan: Any, store: Any) -> None:
        self.inner.scenario_finished(plan, store)

    def report_written(self, written: Any) -> None:
        self.inner.report_written(written)
        if self.scenario:
            self.sink.log_report(self.scenario, written.index.parent)
