# The one lock of the Python environment: uv.lock, resolved by uv for linux x86_64, CPython
# 3.11 (pyproject.toml's [tool.uv]). The venv, CI and every image install exactly its versions,
# with hashes, through `uv export`; pyproject.toml keeps the ranges a library user needs.
# Included from the main Makefile, which defines VENV, PY, PIP and UV. See docs/lock.md.
.PHONY: lock lock-check

# The machine's package-index settings, as pip reads them, are handed to uv unchanged.
ifneq ($(PIP_INDEX_URL),)
export UV_DEFAULT_INDEX ?= $(PIP_INDEX_URL)
endif
ifneq ($(PIP_EXTRA_INDEX_URL),)
export UV_INDEX ?= $(PIP_EXTRA_INDEX_URL)
endif
ifneq ($(wildcard $(PIP_FIND_LINKS)),)
export UV_FIND_LINKS ?= $(PIP_FIND_LINKS)
endif
ifneq ($(PIP_CERT),)
export SSL_CERT_FILE ?= $(PIP_CERT)
endif
ifneq ($(PIP_DEFAULT_TIMEOUT),)
export UV_HTTP_TIMEOUT ?= $(PIP_DEFAULT_TIMEOUT)
endif

# install-locked EXTRAS: make $(VENV) hold exactly the lock's packages for those extras (uv
# itself comes from the lock too, bootstrapped by pip with its hashes), then the project as an
# editable install. A stale lock stops here with what changed. Bytecode is compiled at install
# (as pip does; uv does not by default): with PYTHONDONTWRITEBYTECODE set, as on these
# machines, every process would otherwise compile torch and MLflow from source at each import.
define install-locked
	@python3 -m textops.packaging.lock check
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(UV) || $(PIP) install --quiet --no-deps --require-hashes \
	  -r <(python3 -m textops.packaging.lock requirement uv)
	@$(UV) export --frozen --quiet --no-emit-project --format requirements.txt \
	  $(addprefix --extra ,$(1)) -o $(VENV)/requirements.lock.txt
	@t0=$$SECONDS; $(UV) pip sync --python $(PY) --require-hashes --compile-bytecode $(VENV)/requirements.lock.txt \
	  && $(UV) pip install --quiet --python $(PY) --no-deps --compile-bytecode -e . \
	  && echo "venv: installed the lock's packages for extras [$(1)] in $$((SECONDS - t0)) s"
endef

lock: ## re-resolve uv.lock after editing pyproject.toml (UPGRADE=1: newest allowed versions), print what changed
	@test -x $(UV) || { python3 -m venv $(VENV) && $(PIP) install --quiet --no-deps \
	  --require-hashes -r <(python3 -m textops.packaging.lock requirement uv); }
	@cp uv.lock $(VENV)/uv.lock.before
	$(UV) lock $(if $(UPGRADE),--upgrade)
	@python3 -m textops.packaging.lock diff $(VENV)/uv.lock.before uv.lock

lock-check: ## fail when pyproject.toml changed and uv.lock was not refreshed (offline)
	@python3 -m textops.packaging.lock check
