# Two commands set everything up on a fresh machine with Python 3.11:
#   make demo   install into .venv, train SlateQ to beat the click-maximizer on the
#               recommendation env, export it and answer one request via `tfrl serve`
#   make test   install into .venv (with test tools) and run the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo cartpole test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml Makefile
	$(BIN)/pip install --quiet -e ".[dev,bench,distributed,box2d]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python applications/recommendation.py --serve-once

cartpole: install
	$(BIN)/python applications/cartpole.py

# Two test processes: much of the suite waits on subprocesses (CLI, servers,
# distributed roles) and leaves a core idle. loadfile keeps each file in one
# process, in order (README blocks build on each other).
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=30

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

.venv-peers/bin/python: benchmarks/requirements-peers.txt
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --quiet -r benchmarks/requirements-peers.txt

bench: install .venv-peers/bin/python
	$(BIN)/python benchmarks/cartpole.py

clean:
	rm -rf $(VENV) .venv-peers build *.egg-info
