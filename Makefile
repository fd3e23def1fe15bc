# Two commands for a newcomer: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
# The dbt project; `make install` prepares its manifest (see the rule below).
DBT_PROJECT := dw_pipelines/defs/transforms/dbt
DBT_MANIFEST := $(DBT_PROJECT)/target/manifest.json
# The BigQuery emulator the tests start needs duckdb 1.5.5 (the project pins 2.x): its own venv.
BQEMU_VENV := .venv-bqemulator
BQEMU_REQS := dw_pipelines/devservices/bqemulator-requirements.txt
BQEMU_STAMP := $(BQEMU_VENV)/.installed

# `make demo` writes the local settings to .env (git-ignored); Dagster's CLIs read the same file
# from the project root, so a command typed in a plain shell sees what the Makefile sees.
-include .env
export DW_HOME ?= $(CURDIR)/.dw
export DAGSTER_HOME ?= $(DW_HOME)/dagster
export DW_WAREHOUSE_URL ?= $(DW_HOME)/warehouse.duckdb
export DW_DEMO_SHOP_URL ?= sqlite:///$(DW_HOME)/demo_shop.sqlite

# The console logger's DEBUG events (about 180 per run) bury the syncs' own progress lines.
INFO_LOGS := {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

.PHONY: install demo dev serve test test-unit lint bench clean

install: $(STAMP) $(DBT_MANIFEST)

$(STAMP): pyproject.toml
	@echo "==> Installing dw_pipelines and its dependencies into $(VENV) (first run: about two minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)
	@echo "==> Installed"

# Its DuckDB cannot download the extensions it loads at start-up: the repackaged extension wheels'
# files are copied where DuckDB looks (see dw_pipelines/devservices/bigquery_emulator.py).
$(BQEMU_STAMP): $(BQEMU_REQS)
	@echo "==> Installing the BigQuery emulator into $(BQEMU_VENV) (for the tests)"
	@test -x $(BQEMU_VENV)/bin/python || $(PYTHON) -m venv $(BQEMU_VENV)
	@$(BQEMU_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(BQEMU_REQS)
	@$(BQEMU_VENV)/bin/python dw_pipelines/devservices/bigquery_emulator.py install-extensions
	@touch $(BQEMU_STAMP)

# dbt's manifest, parsed here once so loading the code location never parses the project.
$(DBT_MANIFEST): $(STAMP) $(shell find $(DBT_PROJECT) \( -name '*.sql' -o -name '*.yml' \) -not -path '*/target/*')
	$(BIN)/python -m dw_pipelines.transforms prepare

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $@

# Build (first run) or churn (later runs) the demo shop, sync every asset, print a summary.
demo: install $(DAGSTER_HOME)/dagster.yaml
	@echo "==> Preparing the demo sources (shop database, S3 files) and writing .env"
	@$(BIN)/python -m dw_pipelines.demo prepare
	@echo "==> The partitioned stream's live sync (its own job): dg launch --job demo_shop_order_events_job"
	@$(BIN)/python -m dw_pipelines.demo.progress \
		$(BIN)/dg launch --job demo_shop_order_events_job --config-json '$(INFO_LOGS)'
	@echo "==> Syncing every other asset, then staging and marts: dg launch --job all_streams_job"
	@$(BIN)/python -m dw_pipelines.demo run --progress -- \
		$(BIN)/dg launch --job all_streams_job --config-json '$(INFO_LOGS)'
	@$(BIN)/python -m dw_pipelines.demo summary --port $(PORT)

# The same project in the Dagster UI, with the daemon for schedules: http://127.0.0.1:$(PORT)
# (the demo's Salesforce fake org runs alongside, so its streams can be materialized too).
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m dw_pipelines.demo run -- $(BIN)/dagster dev -w workspace.yaml -p $(PORT)

# The production-like deployment without Docker: a gRPC code server, the webserver and the
# daemon (docker/bin/*, the images' entrypoints) on the PostgreSQL instance of docker/dagster.yaml.
# Its database must exist (`createdb dagster`); DAGSTER_POSTGRES_* point elsewhere.
SERVE_HOME := $(DW_HOME)/dagster-serve
export DAGSTER_POSTGRES_HOST ?= 127.0.0.1
export DAGSTER_POSTGRES_PORT ?= 5432
export DAGSTER_POSTGRES_USER ?= postgres
export DAGSTER_POSTGRES_PASSWORD ?=
export DAGSTER_POSTGRES_DB ?= dagster

# Dagster's CLIs let a `.env` in their working directory override the environment, and the
# project's names the SQLite instance: the three run from $(SERVE_HOME), with .env's other
# settings (the demo's sources) passed through the environment.
serve: install
	@mkdir -p $(SERVE_HOME)
	@cp docker/dagster.yaml $(SERVE_HOME)/dagster.yaml
	cd $(SERVE_HOME) && DAGSTER_HOME=$(SERVE_HOME) DW_WEBSERVER_PORT=$(PORT) PATH="$(abspath $(BIN)):$$PATH" \
		$(if $(wildcard .env),$(abspath $(BIN))/python -m dotenv -f $(CURDIR)/.env run --no-override --) \
		$(CURDIR)/docker/bin/serve

# The tests also start a BigQuery emulator, installed in a venv of its own (not needed by the demo).
test: install $(BQEMU_STAMP)
	$(BIN)/python -m pytest

# The pure cores only: no server, a few seconds.
test-unit: install
	$(BIN)/python -m pytest dw_pipelines_tests/unit

lint: install
	$(BIN)/ruff check dw_pipelines dw_pipelines_tests bench
	$(BIN)/ruff format --check dw_pipelines dw_pipelines_tests bench

bench: install $(BQEMU_STAMP)
	$(BIN)/python bench/sql_sync.py
	$(BIN)/python bench/cdc.py
	$(BIN)/python bench/files.py
	$(BIN)/python bench/salesforce.py
	$(BIN)/python bench/rest.py
	$(BIN)/python bench/bigquery.py

clean:
	-test -x $(BIN)/python && $(BIN)/python -m dw_pipelines.demo stop-s3
	rm -rf $(DW_HOME)
