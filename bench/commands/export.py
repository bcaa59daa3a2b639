"""`lstm-bench export`: the runs table as CSV, Parquet or MLflow runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands import Command
from bench.commands.console import EXIT_OK, out


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, metavar="RESULTS_DIR")
    p.add_argument("--format", choices=("csv", "parquet", "mlflow"), default="csv")
    p.add_argument("--out", type=Path, help="output file (default RESULTS_DIR/runs.csv or runs.parquet)")
    p.add_argument("--tracking-uri", help="mlflow: the tracking URI (default: MLflow's, e.g. $MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", default="lstm-bench", help="mlflow: the experiment name (default lstm-bench)")


def handle(args: argparse.Namespace) -> int:
    from bench.store import export_runs

    if args.format == "mlflow":
        from bench.mlflow_export import export_to_mlflow

        counts = export_to_mlflow(args.folder, args.tracking_uri, args.experiment)
        out.print(f"mlflow experiment '{args.experiment}': " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        return EXIT_OK
    out.print(str(export_runs(args.folder, args.format, args.out)))
    return EXIT_OK


COMMAND = Command("export", "write the runs table as CSV or Parquet", arguments, handle)
