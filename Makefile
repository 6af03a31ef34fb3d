# Contact register pipeline. `make demo` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/data/dagster

.PHONY: install demo test bench sync sandbox sandbox-stop clean

# The virtualenv is rebuilt only when the dependency declarations change.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: pipelines/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp pipelines/dagster.yaml $@

# Start the sandbox, run nightly_sync once, serve the Dagster UI on 127.0.0.1:3000.
demo: install
	$(PY) -m pipelines.demo

# Run nightly_sync once against whatever the environment points at.
sync: install
	$(VENV)/bin/dagster job execute -m pipelines.definitions -j nightly_sync

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m bench

clean:
	rm -rf data/raw data/warehouse.duckdb* data/sandbox bench/results.json
