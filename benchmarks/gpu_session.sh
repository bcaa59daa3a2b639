#!/usr/bin/env bash
# The GPU measurements as one command on a GPU machine with no package index (run from the repository):
#
#   benchmarks/gpu_wheels.sh               here, where pip can download: the wheels that machine lacks, into .whl/
#   benchmarks/gpu_session.sh OUT [PART]   there: installs .whl/ and this checkout into /tmp/lstm-bench-site
#                                          (offline), then PART: crossover, scan, or all (default)
#
# crossover: benchmarks/crossover.sh into results/crossover (doctor, CPU half, GPU half, compare),
#            packed as OUT/crossover.tar.gz, its log in OUT/crossover.log;
# scan:      tests/perf/test_scan_variants.py on the GPU and on the CPU (unrolled or not, runs trained
#            together, the LSTM kernel each traced): OUT/scan_variants_{gpu,cpu}.json and .log.
set -uo pipefail
out=${1:?usage: benchmarks/gpu_session.sh OUT_DIR [crossover|scan|all]}
part=${2:-all}
mkdir -p "$out"
site=/tmp/lstm-bench-site
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl || exit
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target "$site" . || exit
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/machine.txt"
echo "$(nproc) CPU cores; $(python3 --version)" | tee -a "$out/machine.txt"

if [ "$part" = crossover ] || [ "$part" = all ]; then
    start=$SECONDS
    benchmarks/crossover.sh results/crossover 2>&1 | tee "$out/crossover.log"
    echo "crossover.sh: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/crossover.log"
    tar czf "$out/crossover.tar.gz" results/crossover
fi
if [ "$part" = scan ] || [ "$part" = all ]; then
    for device in gpu cpu; do
        (
            [ "$device" = gpu ] || export JAX_PLATFORMS=cpu
            python3 -m pytest tests/perf/test_scan_variants.py --benchmark-only -s -q -p no:cacheprovider \
                --benchmark-json "$out/scan_variants_$device.json" 2>&1 | tee "$out/scan_variants_$device.log"
        )
    done
fi
