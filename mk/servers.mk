# Dev/test backing servers: private MariaDB, S3 (versitygw), MLflow tracking server.
# Included from the main Makefile, which defines PY (the venv python). See docs/servers.md.
# Tests start their own instances through tests/plugins/servers.py; these targets are for people.
TEXTOPS_HOME ?= $(CURDIR)/.textops
export TEXTOPS_HOME

.PHONY: servers-tools servers-up servers-down servers-status servers-env

servers-tools: ## Build/cache the versitygw S3 gateway (no-op when already built)
	bash scripts/build-s3-tools.sh

servers-up: servers-tools ## Start MariaDB + S3 + MLflow; prints export lines (eval "$$(make -s servers-up)")
	$(PY) -m textops.devservers up

servers-down: ## Stop the servers started by servers-up (pids from $(TEXTOPS_HOME)/servers)
	$(PY) -m textops.devservers down

servers-status: ## Show whether the dev servers are running, their addresses and logs
	$(PY) -m textops.devservers status

servers-env: ## Print export lines for the running dev servers
	@$(PY) -m textops.devservers env
