# The two commands of the README: `make run` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
GANSERVE := $(VENV)/bin/ganserve
PORT ?= 8000

.PHONY: setup run test lint data bench gpu-check clean

setup: $(VENV)/.installed

# torch is pinned first: on CPU-only machines 2.13.0 is a CPU build; an unpinned torch pulls CUDA.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[worker,dev]'
	touch $@

data: setup
	$(GANSERVE) data fetch mnist

run: data
	$(GANSERVE) up --port $(PORT) --demo

# The build's rules first (fast): ruff, and the import contracts of pyproject.toml (docs/architecture.md).
test: data lint
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: setup
	$(GANSERVE) bench train --json
	$(GANSERVE) bench parzen --json
	$(GANSERVE) bench serve --json

# One JSON report of a GPU (bench/gpu_check.sh: CUDA training checks, bench train, ONNX export, the long Table 1
# run); it needs no network, so the wheels and MNIST travel in .gpu/ (`bench/gpu_check.sh pack`). DRY=1: the CPU.
gpu-check:
	PYTHON=$(if $(wildcard $(PY)),$(PY),python3) DRY=$(DRY) LONG_S=$(LONG_S) bench/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache
