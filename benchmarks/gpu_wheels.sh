#!/usr/bin/env bash
# Run where pip can download: the wheels lstm-bench needs on a GPU machine that has JAX, PyTorch and
# the scientific Python stack but no package index, into DEST (default .whl/), at the versions
# installed here (the ones tested). benchmarks/gpu_session.sh installs them there, offline.
#
#   benchmarks/gpu_wheels.sh [DEST]        PY=3.12 (default) names the GPU machine's Python
#
# The list is what a CUDA image with JAX, PyTorch, pandas, SciPy, seaborn, PyYAML, rich, psutil,
# pyarrow and pytest-benchmark lacks: Keras and its small dependencies, and pydantic. Add names with
# EXTRA="name ..." when that machine lacks more (lstm-bench doctor there says what fails to import).
set -euo pipefail
dest=${1:-.whl}
pins=$(python3 - ${EXTRA:-} <<'PY'
import sys
from importlib import metadata

names = ["keras", "namex", "optree", "pydantic", "pydantic_core", "annotated-types", "typing-inspection", *sys.argv[1:]]
print(" ".join(f"{n}=={metadata.version(n)}" for n in names))
PY
)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
# shellcheck disable=SC2086  # one argument per pin
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${PY:-3.12}" --implementation cp \
    "${platforms[@]}" -d "$dest" $pins
ls "$dest"
