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
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test lint bench report clean-results

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/local

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m certsmooth.bench data
	$(BIN)/python -m certsmooth.bench train
	$(BIN)/python -m certsmooth.bench certify
	$(BIN)/python -m certsmooth.bench sigma
	$(BIN)/python -m certsmooth.bench bilevel
	$(BIN)/python -m certsmooth.bench checkpoint

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

report: $(STAMP)
	$(BIN)/snakemake --report report.html

clean-results:
	rm -rf results logs benchmarks
