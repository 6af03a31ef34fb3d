# Contact register pipeline. `make demo` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/data/dagster

.PHONY: install rt browser demo test bench sync clean

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

# Request Tracker is not imitated: tests, demo and bench run a real RT 5 from Debian's packages.
# Installs it (apt-get, as root or with sudo) unless present; a fast no-op afterwards.
rt: $(VENV)/.installed
	$(PY) -m sandbox.request_tracker install

# Start the sandbox, run nightly_sync once, serve the Dagster UI on 127.0.0.1:3000.
demo: install rt
	$(PY) -m sandbox.demo

# Run nightly_sync once against whatever the environment points at.
sync: install
	$(VENV)/bin/dagster job execute -m pipelines.definitions -j nightly_sync

# The browser test drives Debian's Chromium (never a downloaded browser). Installs it when
# missing and apt-get is usable; otherwise that one test skips and says why.
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	  || echo "chromium not installed: the browser test will skip"; }

test: install rt browser
	$(PY) -m pytest

bench: install rt
	$(PY) -m bench

clean:
	rm -rf data/raw data/warehouse.duckdb* data/sandbox bench/results.json
