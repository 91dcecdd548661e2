# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test lint unit bench broker-start broker-stop clean stack stack-down stack-test testcontainers-test

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("sigex needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

## Install, start a local broker and run the demo exchange.
demo: install
	$(BIN)/sigex demo

## Install, check style and types, and run every test (a real broker is started when needed).
test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck_tree.py >/dev/null
	$(BIN)/mypy
	cd .typecheck && $(abspath $(BIN))/lint-imports ../pyproject.toml

## Unit tests only: no broker, no database.
unit: install
	$(BIN)/pytest -m "not integration and not postgres"

## Run the compose stack locally: three Kafka brokers, two gateways, the audit indexer and
## API, PostgreSQL; images built from Debian's packages (docker/stack.py up --help for more).
stack: install
	python3 docker/stack.py up --local-images --make-secret

stack-down:
	python3 docker/stack.py down

## The compose stack for real: build the images (from Debian's packages where no registry
## answers), bring the three-broker stack up, publish and subscribe from the host, run the
## drills, take it down. Needs a running Docker engine.
stack-test: install
	docker/images/build.sh
	SIGEX_STACK_TEST=1 $(BIN)/pytest tests/stack -s -p no:cacheprovider

## The test fixtures' Docker path: no SIGEX_BOOTSTRAP, an engine up, and the Kafka tests
## against a testcontainers container of the project's Kafka image (docker/images/build.sh).
SIGEX_TEST_KAFKA_IMAGE ?= sigex-local/kafka:4.3.1
testcontainers-test: install
	docker/images/build.sh
	env -u SIGEX_BOOTSTRAP SIGEX_TEST_KAFKA_IMAGE=$(SIGEX_TEST_KAFKA_IMAGE) $(BIN)/pytest \
	    -p no:cacheprovider tests/integration/test_kafka_container.py \
	    tests/integration/test_platform_smoke.py tests/integration/test_accesslog_kafka.py \
	    tests/integration/test_replay_ledger.py

bench: install
	$(BIN)/python bench/run_all.py

broker-start: install
	$(BIN)/sigex broker start

broker-stop: install
	$(BIN)/sigex broker stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
