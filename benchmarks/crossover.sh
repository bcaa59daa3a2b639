#!/usr/bin/env bash
# CPU vs GPU crossover, as one command on a GPU machine: runs the scenarios (default
# scenarios/crossover.yaml, the fit engines, and scenarios/crossover_scan.yaml, the scan engine) once
# with --device cpu and once with --device gpu into OUT_DIR/cpu and OUT_DIR/gpu, then compares the two
# (every backend paired with itself) and, inside each half, the backends with one another (--by backend).
#
#   benchmarks/crossover.sh [OUT_DIR [SCENARIO.yaml ...]]
#
# It installs nothing (GPU machines often have no package index): it needs lstm-bench installed with
# the GPU builds (pip install '.[gpu]', see docs/models-and-engines.md, "GPU"); `lstm-bench doctor`, run first,
# says what each backend sees and what is missing. Runs on a backend that is not installed here are
# left out, with a note (--skip-missing-backends); a run a backend cannot do on the GPU is recorded
# unsupported, with the reason. benchmarks/gpu_session.sh wraps this for a GPU machine with no index.
set -uo pipefail
out=${1:-results/crossover}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(scenarios/crossover.yaml scenarios/crossover_scan.yaml)

# exit status of run: 0 all ok, 1 some runs failed (the report lists them: go on), 2 a user error (stop)
lstm-bench doctor || exit
mkdir -p "$out"  # lstm-bench creates a named --out folder, not its missing parents
lstm-bench run "${scenarios[@]}" --device cpu --out "$out/cpu" --quiet --skip-missing-backends
rc=$?
[ "$rc" -le 1 ] || exit "$rc"
lstm-bench compare "$out/cpu" --by backend || echo "crossover: no comparison by backend (the line above says why)" >&2
lstm-bench run "${scenarios[@]}" --device gpu --require-gpu --out "$out/gpu" --quiet --skip-missing-backends
rc=$?
if [ "$rc" -gt 1 ]; then
    echo "crossover: the GPU half did not run (the line above says why); only the CPU half was measured ($out/cpu)" >&2
    exit 2
fi
lstm-bench compare "$out/cpu" "$out/gpu" --label-a cpu --label-b gpu --out "$out/compare"
lstm-bench compare "$out/gpu" --by backend
