# openedx-event-sink developer commands. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
BIN := $(VENV)/bin
# openedx-events 11.x (the test producer) needs Python >= 3.12; prefer it, fall back to python3.
PYTHON ?= $(shell for p in $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) python3.12 \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) python3.13 python3; do \
	$$p -c "" >/dev/null 2>&1 && { command -v $$p; break; }; done)
# openedx-events 10.5.0 (the newest release for Python 3.11) is a second test producer, in its own venv.
OE10_VENV := .venv-oe10
PYTHON311 ?= $(shell for p in $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python) python3.11; do \
	$$p -c "import ensurepip, venv" >/dev/null 2>&1 && { command -v $$p; break; }; done)

.PHONY: help venv venv-oe10 services services-down run demo test unit integration lint format clean

help: ## list the commands
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/sink: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,duckdb]"
	@touch $@

venv: $(BIN)/sink ## create .venv and install the sink with its dev tools

$(OE10_VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON311)" || { echo "Python 3.11 not found: install it or set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(OE10_VENV)
	$(PYTHON311) -m venv $(OE10_VENV)
	$(OE10_VENV)/bin/pip install -q --upgrade pip
	$(OE10_VENV)/bin/pip install -q "openedx-events==10.5.0" hypothesis "confluent-kafka[avro,schemaregistry]" edx-ccx-keys -e .
	@touch $@

venv-oe10: $(OE10_VENV)/.installed ## create .venv-oe10: Python 3.11 with openedx-events 10.5.0 (test producer)

services: ## start Kafka, the Schema Registry and PostgreSQL on loopback (downloads once)
	scripts/services up

services-down: ## stop the local services
	scripts/services down

# Topics `make run` consumes: every topic except Kafka's internal ones. Override: make run TOPICS=...
TOPICS ?= ^[^_].*

run: venv services ## run the sink against the local services: every topic into PostgreSQL
	eval "$$(scripts/services env)" && export SINK_TOPICS='$(TOPICS)' && \
		$(BIN)/sink migrate && $(BIN)/sink run $(ARGS)

# `make demo`: the whole pipeline on this machine into the embedded default (SQLite), then reports.
DEMO_EVENTS ?= 20000
DEMO_DB ?= demo.db

demo: venv services ## demo traffic → Kafka → sink → SQLite ($(DEMO_DB)), then reports (demo-report.html)
	eval "$$(scripts/services env)" && \
		export SINK_TOPICS="$$($(BIN)/python -c 'from sink.demo.wire import TOPICS; print(",".join(TOPICS))')" \
			SINK_GROUP_ID=openedx-event-sink-demo \
			SINK_DATABASE_URL='sqlite:///$(DEMO_DB)' SINK_METRICS_PORT=0 && \
		$(BIN)/sink demo produce --events $(DEMO_EVENTS) && \
		$(BIN)/sink migrate && \
		$(BIN)/sink run --stop-at-end && \
		$(BIN)/sink report course-summary && \
		$(BIN)/sink report user-activity-daily --limit 7 && \
		$(BIN)/sink report --html demo-report.html && \
		echo "More: SINK_DATABASE_URL=sqlite:///$(DEMO_DB) $(BIN)/sink report (lists every report); open demo-report.html"

.PHONY: bench
bench: venv services ## end-to-end benchmark against the local services (ARGS="--events 100000")
	eval "$$(scripts/services env)" && $(BIN)/python -m bench $(ARGS)

test: venv venv-oe10 services lint ## install, start the services, lint, run every test
	$(BIN)/pytest

unit: venv ## fast unit tests only (no services)
	$(BIN)/pytest tests/unit

integration: venv venv-oe10 services ## integration tests against the real local services
	$(BIN)/pytest tests/integration

lint: venv ## ruff, formatting and mypy --strict
	$(BIN)/ruff check sink tests bench scripts/services
	$(BIN)/ruff format --check sink tests bench scripts/services
	$(BIN)/mypy

format: venv ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix sink tests bench scripts/services
	$(BIN)/ruff format sink tests bench scripts/services

clean: services-down ## stop services, remove the venv and every download
	rm -rf $(VENV) $(OE10_VENV) $(DEMO_DB) demo-report.html .services .pytest_cache .mypy_cache .ruff_cache .hypothesis
