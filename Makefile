# Two commands do all set-up on a fresh machine:
#   make demo   -> creates .venv, installs mrt-gym, runs the regret benchmark on the embedded default
#   make test   -> creates .venv, installs mrt-gym[dev], runs ruff, mypy and the default pytest suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: venv demo test lint typecheck pytest test-slow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch, stable-baselines3 and the rest resolve in ONE install so that the CPU wheel of
# torch (torch>=2.4,<2.14) is chosen before anything can pull a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python benchmarks/regret.py

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache runs
