# textops — run `make help` for the targets. Two commands matter for a newcomer:
#   make demo   creates the environment if needed and runs the loop on embedded defaults
#   make test   installs everything the tests need, starts the servers, runs the whole suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-stamp
# the test environment adds the embeddings extra (torch + transformers: several GB, so the
# demo does not install it)
TEST_STAMP := $(VENV)/.installed-test-stamp
EXTRAS := serving operator dev
TEST_EXTRAS := $(EXTRAS) embeddings
export TEXTOPS_HOME ?= $(CURDIR)/.textops
export TEXTOPS_CACHE ?= $(HOME)/.cache/textops

include mk/lock.mk
include mk/servers.mk
include mk/cluster.mk

.PHONY: help venv demo test test-unit lint format system-deps tools images benchmark manifests clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

# A venv that already has the test extras keeps them (a sync without them would remove torch)
$(STAMP): pyproject.toml uv.lock mk/lock.mk
	$(call install-locked,$(if $(wildcard $(TEST_STAMP)),$(TEST_EXTRAS),$(EXTRAS)))
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(call install-locked,$(TEST_EXTRAS))
	@touch $(TEST_STAMP)

venv: $(STAMP) ## create .venv with exactly the versions of uv.lock (the package and its extras)

demo: $(STAMP) ## snapshot the built-in data, train, register, promote, print a summary
	$(VENV)/bin/textops demo

DEBIAN_PACKAGES := mariadb-server prometheus fonts-wqy-microhei chromium docker.io mmdebstrap \
  libseccomp-dev iptables iproute2 gcc libc6-dev

system-deps: ## install the Debian packages the tests need (MariaDB, Prometheus, Chromium, a CJK font, Docker, mmdebstrap, runc's libseccomp)
	@missing=$$(dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' $(DEBIAN_PACKAGES) 2>&1 \
	  | grep -v '^ii ' || true); \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    $(DEBIAN_PACKAGES) >/dev/null; fi

tools: system-deps servers-tools cluster-tools ## build (or reuse from the cache) every server binary

cluster-tools: system-deps

images: $(STAMP) system-deps ## build the operator, training, MLflow and serving images from uv.lock (unchanged ones are reused)
	$(PY) -m textops.packaging.images build

lint: $(STAMP) lock-check ## the lock answers pyproject.toml; ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(TEST_STAMP) tools lint images ## install everything, build the images, start the servers, run the whole suite
	$(PY) -m pytest

test-unit: $(TEST_STAMP) ## the fast part: no servers, no cluster, no images, no full-corpus training
	$(PY) -m pytest -m "not integration and not cluster and not images and not slow"

benchmark: $(STAMP) ## XGBoost default vs TF-IDF + logistic regression, side by side
	$(PY) benchmarks/training.py

manifests: $(STAMP) ## regenerate manifests/{crd,rbac,operator} from the Helm chart
	$(PY) scripts/render-manifests.py

clean: ## remove the embedded stores and caches in this checkout (not the tool cache)
	rm -rf .textops .mypy_cache .ruff_cache reports
