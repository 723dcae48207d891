# Two commands set everything up on a fresh machine:
#   make quickstart   install into .venv and run scenarios/quickstart.yaml in simulation
#   make test         install into .venv (with test extras) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: quickstart test install lint bench images clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip > /dev/null 2>&1 || \
		$(BIN)/python -m pip install -q --upgrade pip

# pip's build output goes to a log, shown only if the install fails
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check

# the quickstart needs the simulator alone (numpy, simpy, pluggy, PyYAML, tqdm, orjson)
$(VENV)/.core: pyproject.toml | $(BIN)/python
	@echo "installing rpiaas into $(VENV) ..."
	@$(PIP) -e . > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

# the tests add the live, sweep and analysis extras, the agent and the test tools
$(VENV)/.installed: pyproject.toml agent/pyproject.toml | $(BIN)/python
	@echo "installing rpiaas, its agent and the test tools into $(VENV) ..."
	@$(PIP) -e '.[test]' > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(PIP) -e ./agent >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(VENV)/.core $@

install: $(VENV)/.installed

quickstart: $(VENV)/.core
	$(BIN)/rpiaas run scenarios/quickstart.yaml
	@echo
	@echo "next:"
	@echo "  docs/quickstart.md                 what the run directory holds, and the next steps"
	@echo "  $(BIN)/rpiaas run scenarios/quickstart.yaml --policy worst_fit"
	@echo "  $(BIN)/rpiaas compare runs/quickstart-best_fit-s42 runs/quickstart-worst_fit-s42"
	@echo "  $(BIN)/rpiaas gantt runs/quickstart-best_fit-s42 -o gantt.svg"
	@echo "  make install && sudo $(BIN)/rpiaas testbed up --local 3    (a testbed on this machine: docs/testbed.md)"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks agent
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

# rpiaas's container images (root: podman, runc, mmdebstrap; docs/testbed.md#rpiaas-as-container-images)
images: install
	PYTHON=$(BIN)/python scripts/build-images.sh --latest

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
