# Two commands do all set-up on a fresh machine (Python 3.11, no GPU):
#   make demo   install into .venv, then run the workflow on the embedded data
#   make test   install into .venv, then run the test suite
# Both are idempotent: the install step reruns only when pyproject.toml or
# constraints.txt change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
DEVICE ?= cuda
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test lint bench gpu-wheels gpucheck report clean-results

install: $(STAMP)

# uv (a package of the registry, into the venv) installs the ~3 GB of torch's wheels in parallel:
# 37 s on the 2-core machine against pip's 2 min 45 s; the venv keeps pip for users
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/local

# one pytest worker per core; tests/conftest.py keeps the tests of the session's built
# project on one worker and every other file on one worker (module fixtures built once)
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadgroup

bench: $(STAMP)
	$(BIN)/python -m certsmooth.bench data
	$(BIN)/python -m certsmooth.bench train
	$(BIN)/python -m certsmooth.bench profile
	$(BIN)/python -m certsmooth.bench count
	$(BIN)/python -m certsmooth.bench certify
	$(BIN)/python -m certsmooth.bench cohen
	$(BIN)/python -m certsmooth.bench sigma
	$(BIN)/python -m certsmooth.bench noise
	$(BIN)/python -m certsmooth.bench start
	$(BIN)/python -m certsmooth.bench bilevel
	$(BIN)/python -m certsmooth.bench checkpoint

# The GPU check (docs/gpu.md): wheels for a bare GPU machine into .whl/, then the check
# itself (`make gpucheck DEVICE=cpu` runs it on the CPU at small sizes).
gpu-wheels: $(STAMP)
	PYTHON=$(BIN)/python bench/gpu-wheels.sh

gpucheck: $(STAMP)
	PYTHON=$(BIN)/python bench/gpu.sh --device $(DEVICE) --out gpucheck-out

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

# the report opens on the matrix and the leaderboard (the metadata makes the landing page)
report: $(STAMP)
	$(BIN)/snakemake --report report.html --report-metadata workflow/report/metadata.yaml \
		--report-stylesheet workflow/report/style.css

clean-results:
	rm -rf results logs benchmarks
