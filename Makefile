# Each target does its own set-up: a virtualenv in .venv with the pinned dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CANDLEFLOW_HOME ?= $(CURDIR)/.candleflow
export DAGSTER_HOME ?= $(CANDLEFLOW_HOME)/dagster
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS = 1
export DAGSTER_EVENT_BATCH_SIZE = 1000

.PHONY: demo test ui bench setup

$(BIN)/candleflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

setup: $(BIN)/candleflow

# The test extra (pytest, hypothesis, playwright) on top of the package.
$(BIN)/pytest: $(BIN)/candleflow
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster-sqlite.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

DEMO_LOG := $(CANDLEFLOW_HOME)/demo-run.log

## Main job on the embedded default (SQLite, synthetic candles) for the demo universe, then a summary
## of the run (stages, rows, run id, status) and its signals. Dagster's full event log goes to
## DEMO_LOG; if the run fails, its tail is printed and make fails.
demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/candleflow universe sync config/universe-demo.txt
	$(BIN)/candleflow preload --sessions 260
	@mkdir -p $(dir $(DEMO_LOG))
	@echo "dagster job execute -j market_data over the universe; event log in $(DEMO_LOG)"
	@$(BIN)/dagster job execute -m candleflow.definitions -j market_data \
		--tags "$$($(BIN)/candleflow universe range-tags)" >$(DEMO_LOG) 2>&1 \
		|| { echo "the run failed; the end of its event log:"; tail -n 30 $(DEMO_LOG); echo; $(BIN)/python -m candleflow.instance.run_summary --log $(DEMO_LOG); exit 1; }
	@$(BIN)/python -m candleflow.instance.run_summary --log $(DEMO_LOG)
	@echo
	@$(BIN)/candleflow signals

## The test suite; starts or installs the servers and the browser it needs first.
test: $(BIN)/pytest
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -q

## The Dagster UI on http://127.0.0.1:3000 with the same instance as `make demo`.
ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## Benchmark (JSON on stdout); pass ARGS, e.g. make bench ARGS="universe-day --symbols 250".
bench: setup
	$(BIN)/python -m candleflow.bench $(ARGS)
