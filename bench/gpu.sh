#!/usr/bin/env bash
# The GPU check (certsmooth.bench.gpucheck): on a bare machine with one NVIDIA GPU, no network
# and only PyTorch, NumPy, SciPy, pandas, seaborn, matplotlib, safetensors, PyYAML and
# pytest, measure the CUDA path in one call (at most 8 minutes) and write gpu.json and
# gpucheck.log to one folder. What the machine lacks travels as wheels in .whl/
# (bench/gpu-wheels.sh, run beforehand on a machine with the package registry); they are
# installed without network into a temporary folder before anything else.
#
#   bench/gpu.sh [--device cuda|cpu] [--out DIR] [--budget-s S] [--wheels DIR]
#
# --device cpu runs the same steps at CPU sizes (a few minutes on 2 cores; a test runs it).
# PYTHON picks the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda out=gpucheck-out wheels=.whl budget=()
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --budget-s) budget=(--budget-s "$2"); shift 2 ;;
        --wheels) wheels=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "bench/gpu.sh: unknown argument '$1' (see bench/gpu.sh --help)" >&2; exit 2 ;;
    esac
done
py=$(command -v "${PYTHON:-python3}") || { echo "bench/gpu.sh: no ${PYTHON:-python3} on PATH; set PYTHON" >&2; exit 2; }
py=$(realpath -s "$py")  # absolute, symlinks kept (a venv interpreter must keep its path)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/certsmooth-gpu.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export PYTHONPATH="$tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if [ -d "$wheels" ] && compgen -G "$wheels/*.whl" >/dev/null; then
    "$py" -m certsmooth.bench.gpucheck install-wheels "$wheels" "$tmp/site"
fi
# the workflow's rules run `python -m certsmooth ...`: make `python` this interpreter (a
# wrapper, not a symlink: a symlinked venv interpreter loses its site-packages)
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$py" >"$tmp/bin/python"
chmod +x "$tmp/bin/python"
export PATH="$tmp/bin:$PATH"
mkdir -p "$out"
exec "$py" -m certsmooth.bench.gpucheck run --device "$device" --out "$out" "${budget[@]}"
