# Quick start: `make demo` runs the recognizer; `make test` runs the static checks (ruff lint + format, mypy) and the test suite. Both create/reuse .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export QT_QPA_PLATFORM ?= offscreen
# pytest-xdist workers for `make test` (a test file stays on one worker: its module fixtures are built once);
# TEST_WORKERS=0 runs the suite in this process, one test after another
TEST_WORKERS ?= 2

.PHONY: demo test model install install-dev system-deps clean
demo: $(VENV)/.core
	$(BIN)/twostream run synthetic:demo --max-frames 300

test: $(VENV)/.dev system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

install: $(VENV)/.core
install-dev: $(VENV)/.dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch: take a CPU wheel lying on this machine's disk when pip finds one (--no-index looks only at
# local find-links), else let pip resolve torch normally. Nobody elsewhere is pinned to 2.13.0.
$(VENV)/.torch: | $(BIN)/python
	@if $(BIN)/pip install -q --no-index --no-deps "torch==2.13.0" >/dev/null 2>&1; then \
	  echo "torch: using the CPU wheel found on this machine"; $(BIN)/pip install -q "torch==2.13.0"; \
	else $(BIN)/pip install -q "torch>=2.2"; fi
	@touch $@

$(VENV)/.core: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.core
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

# Debian packages the tests use (a real RTSP server, Qt's runtime libraries); skipped with a note
# where apt-get is not available to this user.
system-deps:
	@bash scripts/system-deps.sh

clean:
	rm -rf $(VENV) build *.egg-info

# Reproduce the shipped model (trained/default) from nothing: the procedural dataset, both nets, fusion.
model: $(VENV)/.dev
	$(BIN)/twostream make-dataset --out data/procedural --train-clips 60 --test-clips 20 --seed 0
	$(BIN)/twostream train --data data/procedural --stream both --seed 0 --fp16-weights --transitions 0.5 --out trained/default
	$(BIN)/twostream quantize --model trained/default --data data/procedural

# The GPU benchmark (benchmarks/gpu.py) with the venv's Python into benchmarks/results/gpu/; on a machine
# without CUDA pass GPU_BENCH_ARGS="--device cpu --quick" for the smoke test. The lent GPU machine's own
# command is in benchmarks/README.md.
.PHONY: gpu-bench
gpu-bench: $(VENV)/.core
	$(BIN)/python benchmarks/gpu.py --out benchmarks/results/gpu $(GPU_BENCH_ARGS)
