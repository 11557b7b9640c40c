# Mina intyg. `make run` brings the system up; `make test` runs every check. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install lock tools infra-up infra-down cluster-up cluster-down run chaos test test-unit test-integration lint format schemas bench bench-spans clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml uv.lock deploy/local/uv-requirements.txt deploy/local/bootstrap.sh tests/oidc_provider/package-lock.json tests/crd_validator/package-lock.json
	@bash deploy/local/bootstrap.sh $(VENV)
	@touch $@

install: $(STAMP) ## create .venv and install the project with its console scripts

lock: install ## re-resolve uv.lock after a change of pyproject.toml's dependencies
	@SSL_CERT_FILE="$${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" $(BIN)/uv lock

tools: install ## tools the tests run that are not Python packages (kustomize, composecheck, veraPDF), into .cache
	@bash deploy/local/tools.sh

infra-up: install ## start Kafka (KRaft) and PostgreSQL unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set
	@$(BIN)/minaintyg-infra up

infra-down: install ## stop the local Kafka and the PostgreSQL cluster this project started
	@$(BIN)/minaintyg-infra down

cluster-up: install ## three Kafka nodes (KRaft, 9092-9094, replication 3, min.insync.replicas 2) and PostgreSQL
	@$(BIN)/minaintyg-infra cluster-up

cluster-down: install ## stop the three local Kafka nodes
	@$(BIN)/minaintyg-infra cluster-down

# `make run CLUSTER=3`: the same system on the three-node cluster, two replicas of every service that may have two.
CLUSTER ?=
run: $(if $(CLUSTER),cluster-up,infra-up) ## the whole system on this machine (Ctrl-C stops it; CLUSTER=3 on three Kafka nodes)
	@PATH="$(CURDIR)/$(BIN):$$PATH" CLUSTER="$(CLUSTER)" bash deploy/local/run.sh

# `make chaos CHAOS_SECONDS=300 CHAOS_SEED=7`: the fault phase's length (default 540 s: about 14 min in all) and seed.
chaos: install ## the Jepsen-style suite: the system on a private 3-node cluster and PostgreSQL under faults, then the checker
	@$(BIN)/python -m tests.chaos.runner $(if $(CHAOS_SECONDS),--seconds $(CHAOS_SECONDS)) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

lint: install ## ruff and mypy (strict)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy .

format: install ## apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

schemas: install ## regenerate the committed JSON Schemas from the models
	@$(BIN)/python -m schemas.compat write

test-unit: tools ## unit tests only (no broker, no database)
	@$(BIN)/pytest tests/unit -q

test-integration: infra-up ## integration tests against the real Kafka and PostgreSQL
	@$(BIN)/pytest tests/integration -q

test: lint tools infra-up ## everything: lint, unit and integration tests
	@$(BIN)/pytest tests -q -p no:cacheprovider

bench: infra-up ## benchmarks, with the machine they ran on
	@$(BIN)/python -m bench.intake_bench
	@$(BIN)/python -m bench.consent_bench
	@$(BIN)/python -m bench.dispatch_bench
	@$(BIN)/python -m bench.portal_bench
	@$(BIN)/python -m bench.stats_bench $(STATS_BENCH_ARGS)
	@$(BIN)/python -m bench.e2e_bench $(E2E_BENCH_ARGS)
	@$(BIN)/python -m bench.kafka_security_bench --consent

bench-spans: infra-up ## the cost of recording spans: intake and the gate, spans off against on (OTLP to a local sink)
	@$(BIN)/python -m bench.intake_bench --spans $(SPANS_BENCH_ARGS)
	@$(BIN)/python -m bench.consent_bench --spans $(SPANS_BENCH_ARGS)

clean: ## remove the venv and caches (Kafka's data too)
	@$(BIN)/minaintyg-infra down 2>/dev/null || true
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache .hypothesis
