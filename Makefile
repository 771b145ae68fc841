# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a step they run.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt | md5sum | cut -c1-12)

.PHONY: help demo test unit integration e2e lint debs venv constraints clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: debs venv  ## set everything up, then run the whole demo stack in the foreground (Ctrl-C stops it)
	$(BIN)/python -m demo.run

test: debs venv  ## set everything up, then lint and run the whole test suite (two pytest workers, see README)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup

unit: venv  ## only the fast pure tests
	$(BIN)/python -m pytest tests/unit

integration: debs venv  ## only the tests against real Prometheus, Alertmanager, HAProxy and databases
	$(BIN)/python -m pytest tests/integration

e2e: debs venv  ## only the tests that run DAGs through a real Airflow
	$(BIN)/python -m pytest tests/e2e

lint: venv  ## ruff (with the AIR rules) and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

debs:  ## install the Debian packages prometheus, prometheus-alertmanager, prometheus-node-exporter, haproxy and docker-compose when missing
	@bash scripts/ensure_debs.sh

venv: $(STAMP)  ## the virtualenv with the pinned dependencies

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@bash scripts/ensure_python.sh $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

constraints: venv  ## re-resolve constraints.txt after changing a pin
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full resolved dependency set (pip freeze of requirements.txt + requirements-dev.txt on Python 3.11).\n# Regenerate with: make constraints' > constraints.txt

clean:  ## remove the demo's run folder (Airflow's home and the virtualenv stay)
	rm -rf .demo
