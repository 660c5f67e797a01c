# devicelab: `make demo` runs the main job on the offline corpora; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= quick
QUICK_CORPORA ?= synth-commands synth-speakers synth-phones game-scenes game-events glyph-digits glyph-world

export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
export HF_HUB_OFFLINE=1
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/devicelab/numba

.PHONY: setup system venv demo test lint format clean bench

setup: system venv

system:
	@if [ "$$(id -u)" = 0 ]; then bash scripts/setup-system.sh; \
	else sudo -n bash scripts/setup-system.sh || bash scripts/setup-system.sh; fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,data,oracles]"
	touch $@

venv: $(VENV)/.installed

demo: setup
	for c in $(QUICK_CORPORA); do $(BIN)/devicelab data build $$c --profile $(PROFILE) || exit 1; done
	$(BIN)/devicelab reproduce --profile $(PROFILE)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: setup lint
	$(BIN)/pytest -q

bench: venv
	$(BIN)/devicelab bench --profile $(PROFILE) $(BENCH)

format: venv
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf runs .pytest_cache .ruff_cache
