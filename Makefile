# Two commands do all the set-up on a fresh machine with Python 3.11+ and git:
#   make repro   create .venv, install the project, run the DVC pipeline on the data in data/
#   make test    the same set-up and pipeline, then the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC runs each stage's `python -m pipeline.<stage>` through the shell: it must find the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test test-fast bench lock clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed, this is " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,dask]'
	touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

# The suite runs on every core (pytest-xdist): 524 tests in about 65 s on 2 cores instead of 90.
test: repro
	$(BIN)/python -m pytest -n auto

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n auto -m 'not slow'

bench: repro
	$(BIN)/python benchmarks/predict_throughput.py

# constraints.txt anew: the newest versions pyproject.toml allows, resolved in a throwaway venv. Then `make repro`,
# `make test`, and commit constraints.txt with the dvc.lock and reports it produced.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev,dask]'
	{ grep '^#' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .lock-venv

clean-venv:
	rm -rf $(VENV)
