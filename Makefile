# The two commands a newcomer needs: `make demo` and `make test`.
# With DATABASE_URL / REDIS_URL unset, an embedded PostgreSQL and Redis are
# started under .data/ (see finance_project/services.py).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | cksum | cut -d' ' -f1)
WITH_SERVICES := $(PY) -m finance_project.services run --

# Development defaults; production sets these explicitly.
export DEBUG ?= 1
export PYTHONDONTWRITEBYTECODE := 1

DEMO_COUNT ?= 200000
DEMO_MONTHS ?= 12
DEMO_SEED ?= 7
PORT ?= 8000

.PHONY: help venv test demo lint format bench services-up services-down clean

help:
	@echo "make demo   set up everything, load demo data, serve the admin and a worker"
	@echo "make test   set up everything and run the whole test suite"
	@echo "make lint   ruff check and format check"
	@echo "make bench  run the benchmarks"

venv: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

test: venv
	$(WITH_SERVICES) $(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(WITH_SERVICES) $(PY) manage.py demo --count $(DEMO_COUNT) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --port $(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Each benchmark works in a scratch database of its own and drops it after.
BENCH_COUNT ?= 1000000
BENCH_RUNS ?= 3
# Models: 400,000 transactions give about 110,000 labels to train on.
BENCH_MODELS_COUNT ?= 400000
BENCH_CLIENTS ?= 4,8
BENCH_DURATION ?= 20
BENCH_BATCH_RUNS ?= 5

bench: venv
	$(WITH_SERVICES) sh -c '$(PY) tests/benchmarks/bench_generate.py --runs $(BENCH_RUNS) --count $(BENCH_COUNT) && $(PY) manage.py bench_features --runs $(BENCH_RUNS) --count $(BENCH_COUNT) && $(PY) manage.py bench_models --runs $(BENCH_RUNS) --count $(BENCH_MODELS_COUNT) --clients $(BENCH_CLIENTS) --duration $(BENCH_DURATION) --batch-runs $(BENCH_BATCH_RUNS)'

services-up: venv
	@$(PY) -m finance_project.services up

services-down: venv
	$(PY) -m finance_project.services down

clean: services-down
	rm -rf .data $(VENV) staticfiles
