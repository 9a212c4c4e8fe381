# Cartguard: `make run` sets everything up and starts the assistant; `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export CARTGUARD_DATA_DIR ?= $(CURDIR)/var
# Rasa's YAML files reference these; real values come from `cartguard shell-env` where needed.
ENV := set -a; eval "$$($(BIN)/cartguard shell-env)"; set +a;

.PHONY: run system setup venv web keys seed train rules test lint validate pytest rasa-test bench soak clean

run: setup train ## set up (venv, deps, keys, demo data, model) and start everything
	@scripts/run.sh

setup: venv web keys seed

system: ## Chromium for browser tests; start local PostgreSQL/Redis/RabbitMQ if stopped
	@scripts/ensure-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@echo "==> creating $(VENV) with Python 3.10 and installing pinned dependencies (first time: a few minutes)"
	@test -x $(BIN)/python || $$(scripts/find-python310.sh) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools<70' wheel
	@$(BIN)/python -m pip install --quiet --progress-bar off -r requirements.lock
	@$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

web: cartguard/webapp/static/vendor/webchat.js

# web/build.mjs writes the bundle without its Google Fonts imports (no outside request)
cartguard/webapp/static/vendor/webchat.js: web/package.json web/package-lock.json web/build.mjs
	@echo "==> installing the webchat widget from npm (bundled locally, no CDN)"
	@cd web && npm ci --no-audit --no-fund --loglevel=error
	@cd web && node build.mjs

keys: venv
	@$(BIN)/cartguard init-keys

seed: keys
	@$(BIN)/cartguard seed

rules: venv ## regenerate data/rules/stepup.yml from security.yml
	@$(BIN)/python scripts/gen_stepup_rules.py

train: venv keys ## train the model if config, domain or data changed
	@$(ENV) scripts/train-if-stale.sh

test: system setup lint validate pytest rasa-test ## every check
	@echo "==> all checks passed"

lint: venv
	@echo "==> ruff"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

validate: venv keys
	@echo "==> rasa data validate"
	@$(ENV) $(BIN)/python scripts/validate_data.py

pytest: venv train
	@echo "==> pytest"
	@$(ENV) $(BIN)/pytest -q

rasa-test: venv train
	@echo "==> rasa test (test stories, failing on any prediction error)"
	@$(ENV) $(BIN)/rasa test core --stories tests/stories --model models/cartguard.tar.gz \
		--fail-on-prediction-errors --out results --quiet

bench: venv train system ## benchmarks: PII detector, and the full stack against stock Rasa
	@$(ENV) $(BIN)/python bench/pii.py
	@echo "==> full stack vs stock Rasa, SQLite and PostgreSQL (starts 4 Rasa servers; ~10 min)"
	@$(BIN)/python bench/stack.py

soak: venv train system ## load and fault run on 2 replicas (PostgreSQL, Redis, RabbitMQ; ~15 min)
	@$(BIN)/python bench/soak.py

clean:
	rm -rf results .pytest_cache .ruff_cache
