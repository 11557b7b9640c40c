# Mina intyg. `make run` brings the system up; `make test` runs every check. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install infra-up infra-down run test test-unit test-integration lint format schemas bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml deploy/local/bootstrap.sh tests/oidc_provider/package-lock.json
	@bash deploy/local/bootstrap.sh $(VENV)
	@touch $@

install: $(STAMP) ## create .venv and install the project with its console scripts

infra-up: install ## start Kafka (KRaft) and PostgreSQL unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set
	@$(BIN)/minaintyg-infra up

infra-down: install ## stop the local Kafka and the PostgreSQL cluster this project started
	@$(BIN)/minaintyg-infra down

run: infra-up ## the whole system on this machine (Ctrl-C stops it)
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash deploy/local/run.sh

lint: install ## ruff and mypy (strict)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy .

format: install ## apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

schemas: install ## regenerate the committed JSON Schemas from the models
	@$(BIN)/python -m schemas.compat write

test-unit: install ## unit tests only (no broker, no database)
	@$(BIN)/pytest tests/unit -q

test-integration: infra-up ## integration tests against the real Kafka and PostgreSQL
	@$(BIN)/pytest tests/integration -q

test: lint infra-up ## everything: lint, unit and integration tests
	@$(BIN)/pytest tests -q -p no:cacheprovider

bench: infra-up ## benchmarks, with the machine they ran on
	@$(BIN)/python -m bench.intake_bench
	@$(BIN)/python -m bench.consent_bench
	@$(BIN)/python -m bench.dispatch_bench
	@$(BIN)/python -m bench.portal_bench
	@$(BIN)/python -m bench.stats_bench $(STATS_BENCH_ARGS)

clean: ## remove the venv and caches (Kafka's data too)
	@$(BIN)/minaintyg-infra down 2>/dev/null || true
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache .hypothesis
