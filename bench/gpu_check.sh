#!/usr/bin/env bash
# The GPU check (`make gpu-check`): bench/gpu_check.py's report, on a machine that may reach no network.
#
# Needs there: python3 with torch (a CUDA build), numpy, onnx and onnxruntime. What a bare GPU machine lacks
# travels with the checkout in .gpu/ (ignored by git; `bench/gpu_check.sh pack` builds it here, ~16 MB):
#   .gpu/wheels  pydantic and its dependencies, cp311 and cp312 (installed into a temporary folder if missing)
#   .gpu/data    MNIST, gzipped (models/datasets reads gzip whatever the file is called)
# Environment: PYTHON (python3), OUT (the report goes to $OUT/gpu_check.json, else a temporary folder),
# DRY=1 (tiny sizes, any device, seconds), LONG_S (seconds of the Table 1 run, default 150), BENCH_S.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = pack ]; then
    mkdir -p .gpu/wheels .gpu/data/mnist
    printf '# Built by bench/gpu_check.sh pack; never committed.\n*\n' > .gpu/.gitignore
    for tag in 311 312; do
        "$PY" -m pip download -q --only-binary=:all: --no-deps --implementation cp --python-version "$tag" \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/wheels \
            "pydantic==$("$PY" -c 'import pydantic; print(pydantic.VERSION)')" \
            "pydantic-core==$("$PY" -c 'import pydantic_core; print(pydantic_core.__version__)')" \
            annotated-types typing-extensions typing-inspection
    done
    src=${GANSERVE_DATA_DIR:-$HOME/.ganserve/data}/mnist
    for f in "$src"/*-ubyte; do gzip -c -6 "$f" > ".gpu/data/mnist/$(basename "$f")"; done
    du -sh .gpu
    exit 0
fi

if ! "$PY" -c 'import pydantic' 2>/dev/null; then
    site=$(mktemp -d)
    if ! "$PY" -m pip install -q --no-index --find-links .gpu/wheels --target "$site" pydantic 2>/dev/null; then
        # No pip: wheels are zip files; unpack the pure ones and this Python's compiled one.
        "$PY" - "$site" <<'PYEOF'
import sys, zipfile, pathlib
tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
for w in pathlib.Path(".gpu/wheels").glob("*.whl"):
    if "py3-none-any" in w.name or f"-{tag}-" in w.name:
        zipfile.ZipFile(w).extractall(sys.argv[1])
PYEOF
    fi
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d .gpu/data/mnist ]; then export GANSERVE_DATA_DIR="$PWD/.gpu/data"; fi

out_dir=${OUT:-$(mktemp -d)}
args=(--out "$out_dir/gpu_check.json" --long-s "${LONG_S:-150}" --bench-s "${BENCH_S:-5}")
if [ "${DRY:-0}" = 1 ]; then args+=(--dry); fi
exec "$PY" -m bench.gpu_check "${args[@]}"
