# The two commands a fresh clone needs:  make run TASK="..."   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TASK   ?=
ARGS   ?=

.PHONY: run test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	@if [ -z "$(TASK)" ]; then echo 'usage: make run TASK="describe the task" [ARGS="--model anthropic:claude-sonnet-5-5"]' >&2; exit 2; fi
	$(BIN)/agent run $(ARGS) "$(TASK)"

test: install-dev
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info
