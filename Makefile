# Two commands set everything up on a fresh machine:
#   make quickstart   install into .venv and run scenarios/quickstart.yaml in simulation
#   make test         install into .venv (with test extras) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: quickstart test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml agent/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q -e ./agent
	touch $@

install: $(VENV)/.installed

quickstart: install
	$(BIN)/rpiaas run scenarios/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check rpiaas tests benchmarks agent
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/sim_throughput.py
	$(BIN)/python benchmarks/store_insert.py
	$(BIN)/python benchmarks/agent_idle.py
	$(BIN)/python benchmarks/master_poll.py
	$(BIN)/python benchmarks/live_dispatch.py
	$(BIN)/python benchmarks/sweep.py
	$(BIN)/python benchmarks/compare_1m.py
	$(BIN)/python benchmarks/load_run.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
