#!/usr/bin/env bash
# CPU vs GPU crossover, as one command on a GPU machine: runs a scenario (default
# scenarios/crossover.yaml) once with device: cpu and once with device: gpu, then compares the two.
#
#   benchmarks/crossover.sh [SCENARIO.yaml] [OUT_DIR]
#
# It installs nothing (GPU machines often have no package index): it needs lstm-bench installed with
# the GPU builds (pip install '.[gpu]', see the README's GPU section); `lstm-bench doctor`, run first,
# says what each backend sees and what is missing. Install every backend the scenario names, or take
# it out of the scenario: a run on a backend that is not installed fails, with the reason; a run a
# backend cannot do on the GPU is recorded unsupported, with the reason.
set -euo pipefail
scenario=${1:-scenarios/crossover.yaml}
out=${2:-results/crossover}

lstm-bench doctor
lstm-bench run "$scenario" --device cpu --out "$out/cpu" --quiet
if ! lstm-bench run "$scenario" --device gpu --require-gpu --out "$out/gpu" --quiet; then
    echo "crossover: no usable GPU here, so only the CPU half was measured ($out/cpu)" >&2
    exit 2
fi
lstm-bench compare "$out/cpu" "$out/gpu" --label-a cpu --label-b gpu --out "$out/compare"
