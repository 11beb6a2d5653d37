# `make run` sets everything up and starts the assistant; `make test` sets everything up and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
RASA := env RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/rasa
# One line per step with its duration; the tools' output goes to data/logs/<target>.log, shown when a step fails.
STEP = bash scripts/step.sh --log data/logs/$@.log

.PHONY: help setup browser run test test-rasa test-python lint bench lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup:  ## both Python environments, the trained model, the database (cached by hash; log: data/logs/setup.log)
	@bash scripts/setup.sh

browser:  ## Debian's chromium for the inbox browser tests (installed once when missing)
	@bash scripts/browser.sh

run: setup  ## start Rasa, the action server and the gateway; chat at http://127.0.0.1:8000/
	@.venv/bin/python -m bot run

test: setup browser lint test-rasa test-python  ## every test: lint, Rasa data and conversation stories, Python tests

lint:  ## ruff (lint and format), mypy and hadolint (the Dockerfile)
	@$(STEP) --fresh "Lint: ruff check" .venv/bin/ruff check bot actions nlu tests deploy
	@$(STEP) "Lint: ruff format --check" .venv/bin/ruff format --check bot actions nlu tests deploy
	@$(STEP) "Lint: mypy" .venv/bin/mypy
	@$(STEP) "Lint: hadolint Dockerfile" .venv/bin/hadolint Dockerfile

test-rasa:  ## the custom NLU components' tests, rasa data validate, the conversation stories against the trained model
	@$(STEP) --fresh "Rasa: the custom NLU components (tests/nlu, in the Rasa environment)" \
	  env RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/python -m pytest -c tests/nlu/pytest.ini tests/nlu
	@$(STEP) "Rasa: validating the training data" \
	  $(RASA) data validate --domain domain --data nlu_data dialogues --config config.yml --quiet
	@$(STEP) "Rasa: the conversation stories of every language (rasa test core)" \
	  $(RASA) test core --e2e --model models/current.tar.gz --stories tests/conversations --out results/core \
	  --fail-on-prediction-errors --quiet --no-plot

test-python:  ## unit, service, action and end-to-end tests (pytest)
	.venv/bin/python -m pytest

bench: setup browser  ## benchmarks: finder, NLU, language resolution, latency, memory, channels under load (prints figures)
	.venv/bin/python -m tests.bench

lock:  ## re-resolve both locks after changing pyproject.toml or requirements/rasa.in
	.venv/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o requirements/app.lock
	.venv/bin/uv pip compile requirements/rasa.in --generate-hashes --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 -o requirements/rasa.lock

clean:  ## remove local state (database, model link, results); the cache stays
	rm -rf data results models .venv .venv-rasa
