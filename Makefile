# Two commands do all set-up on a fresh machine:
#   make run    create .venv if missing, install the serving dependencies (no TensorFlow),
#               generate a meme on the shipped model
#   make test   create .venv if missing, install with the `dev` and `train` extras,
#               lint + type-check + the whole test suite
# Two stamps, so `make run` then `make test` (or the reverse) share one .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TRAIN_STAMP := $(VENV)/.installed-train
SOURCES := pyproject.toml setup.py engine/decoding/_gru_step.c engine/decoding/_tilt_step.c

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TRAIN_STAMP): $(STAMP) $(SOURCES)
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(TRAIN_STAMP)

run: $(STAMP)
	$(BIN)/memebot generate distracted-boyfriend

test: $(TRAIN_STAMP) lint typecheck pytest

lint: $(TRAIN_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TRAIN_STAMP)
	$(BIN)/mypy

pytest: $(TRAIN_STAMP)
	$(BIN)/pytest

bench: $(TRAIN_STAMP)
	$(BIN)/python bench/train.py --minutes 10

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out
