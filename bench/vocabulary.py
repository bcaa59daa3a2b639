"""The words that mean one thing, spelled once: run statuses, mode, scope and target labels, and the
Recommendation's default margin (here, not in the report, so that building the command line imports nothing
heavy).

The store, the runner, the MLflow export, the commands and the report import these rather
than writing the strings themselves, so a new status or a new label format is one edit here.
"""

from __future__ import annotations

from typing import Literal

#: The default accuracy margin: a batch size within 2% of the best RMSE counts as accurate enough.
MARGIN = 0.02

#: A run trained and its metrics can be trusted.
OK = "ok"
#: A run raised (a bug, a worker that died, a timeout): rerun it.
FAILED = "failed"
#: A run trained to its end, but its loss or predictions went non-finite.
DIVERGED = "diverged"
#: The backend or engine cannot run this configuration (said in the run's error).
UNSUPPORTED = "unsupported"

Status = Literal["ok", "failed", "diverged", "unsupported"]

#: Every status, in the order the report counts them.
STATUSES: tuple[str, ...] = (OK, DIVERGED, FAILED, UNSUPPORTED)
#: Outcomes a rerun would repeat: `run --resume` skips them and the store counts them done.
DONE: tuple[str, ...] = (OK, DIVERGED, UNSUPPORTED)
#: Runs that trained to their end, diverged or not: tuning budgets and steps to target count them.
ATTEMPTED: tuple[str, ...] = (OK, DIVERGED)
#: MLflow's terminal state for each status: a run that trained (even to a diverged model) finished;
#: only a run that raised failed. The lstm-bench status itself travels as the `status` tag.
MLFLOW_STATE: dict[str, str] = {OK: "FINISHED", DIVERGED: "FINISHED", UNSUPPORTED: "FINISHED", FAILED: "FAILED"}

#: How a run's notes mark an ok run whose training went wrong without going non-finite (`bench.engines.loop`):
#: the report counts these beside diverged runs.
FLAGGED = "flagged:"

STATELESS = "stateless"
#: The modes of a sweep in the order figures and tables show them.
MODE_ORDER: tuple[str, ...] = ("stateful/streams", "stateful/sequential", STATELESS)


def mode_label(stateful: bool, layout: object) -> str:
    """'stateless', or 'stateful/<layout>' (the batch layout of a stateful run)."""
    return f"stateful/{layout}" if bool(stateful) else STATELESS


def scope_label(panel: str, mode: str) -> str:
    """What one recommendation covers: 'panel, mode', or the mode alone when nothing else varies."""
    return f"{panel}, {mode}" if panel else mode


def target_label(metric: str, value: float) -> str:
    """A target as users write it: 'val_rmse <= 0.1'."""
    return f"{metric} <= {float(value):g}"
