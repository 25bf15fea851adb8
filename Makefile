# The two commands of the README: `make run` and `make test`.
# Both bootstrap what a fresh machine lacks (a virtualenv and the packages).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench bench-http chaos chaos-short clean-var

$(VENV)/.installed-run: pyproject.toml
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)" run
	@touch $@

$(VENV)/.installed-dev: pyproject.toml
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)" dev
	@touch $@ $(VENV)/.installed-run

## Start the whole portal (web, Celery worker, Celery beat) on the embedded PostgreSQL (data in var/postgres)
## and a serverless broker; DATABASE_URL overrides the database.
run: $(VENV)/.installed-run
	@$(PY) scripts/run_portal.py

## Run the whole suite (browser tests included) against PostgreSQL and Redis: the server at DATABASE_URL
## when one answers there, else the embedded one.
test: $(VENV)/.installed-dev
	@scripts/test.sh

## The portal's background work under faults (worker SIGKILLs, Redis and PostgreSQL restarts, several
## workers and beats): starts its own Redis, PostgreSQL and SMTP server; see scripts/chaos.py.
chaos: $(VENV)/.installed-dev
	@$(PY) scripts/chaos.py

## The same, smaller: under 5 minutes (CI runs it).
chaos-short: $(VENV)/.installed-dev
	@$(PY) scripts/chaos.py --short

## Lint: ruff (style and bugs), mypy (strict types, django-stubs) and import-linter (the apps' layers and
## boundaries, the contracts in pyproject.toml). CI runs it before the tests.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The microbenchmarks; the HTTP benchmark has its own target (it seeds 100,000 devices and serves them).
bench: $(VENV)/.installed-dev
	@for b in $(filter-out bench/http_pages.py,$(wildcard bench/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

## Every page over HTTP (gunicorn as in production, wrk) against a trivial reference: see README "Benchmarks".
bench-http: $(VENV)/.installed-dev
	@$(PY) bench/http_pages.py $(BENCH_ARGS)

clean-var:
	rm -rf var
