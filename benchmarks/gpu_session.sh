#!/usr/bin/env bash
# The GPU measurements as one command on a GPU machine with no package index (run from the repository):
#
#   benchmarks/gpu_wheels.sh               here, where pip can download: the wheels that machine lacks, into .whl/
#   benchmarks/gpu_session.sh OUT [PART]   there: installs .whl/ and this checkout into /tmp/lstm-bench-site
#                                          (offline), then PART: scan, variants, fit, or all (the default)
#
# scan:     benchmarks/crossover.sh with scenarios/crossover_scan.yaml (the scan engine, CPU and GPU, compare)
# fit:      the same with scenarios/crossover.yaml (fit on every backend installed; the slow part: its CPU
#           half took 20 minutes on a 2-core VM)
#           Both write results/crossover (runs already there are kept: a part cut short resumes when
#           run again) and pack it as OUT/crossover.tar.gz, the log in OUT/crossover_PART.log.
# variants: tests/perf/test_scan_variants.py on the GPU and on the CPU (unrolled or not, runs trained
#           together, the LSTM kernel each traced): OUT/scan_variants_{gpu,cpu}.json and .log.
set -uo pipefail
out=${1:?usage: benchmarks/gpu_session.sh OUT_DIR [scan|variants|fit|all]}
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

crossover() {  # crossover PART SCENARIO
    local start=$SECONDS
    benchmarks/crossover.sh results/crossover "$2" 2>&1 | tee "$out/crossover_$1.log"
    echo "crossover.sh $2: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/crossover_$1.log"
    tar czf "$out/crossover.tar.gz" results/crossover
}
if [ "$part" = scan ] || [ "$part" = all ]; then
    crossover scan scenarios/crossover_scan.yaml
fi
if [ "$part" = variants ] || [ "$part" = all ]; then
    for device in gpu cpu; do
        (
            [ "$device" = gpu ] || export JAX_PLATFORMS=cpu
            python3 -m pytest tests/perf/test_scan_variants.py --benchmark-only -s -q -p no:cacheprovider \
                --benchmark-json "$out/scan_variants_$device.json" 2>&1 | tee "$out/scan_variants_$device.log"
        )
    done
fi
if [ "$part" = fit ] || [ "$part" = all ]; then
    crossover fit scenarios/crossover.yaml
fi
