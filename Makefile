# FluxUp developer entry points. A newcomer needs two: `make demo` and `make test`.
# Slow builds (Go binaries of the sandbox cluster) are cached under ~/.cache/fluxup,
# keyed by component version, so only the first run on a machine is slow.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
SANDBOX_DIR ?= .sandbox
DEMO_DIR ?= .demo
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: venv system-deps build renovate lint test coverage demo demo-down clean chart-sync

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Debian packages the sandbox needs: git (Git server, Flux's source), an OCI registry,
# chromium for the UI's browser tests (Playwright drives this system browser), and npm (it
# installs Node 24 + Renovate from the npm registry; see `make renovate`).
system-deps:
	@missing=""; \
	command -v git >/dev/null || missing="$$missing git"; \
	test -x /usr/bin/docker-registry || missing="$$missing docker-registry"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@systemctl disable --now docker-registry >/dev/null 2>&1 || true

# The sandbox cluster's Go binaries, then the tools the tests use (Helm renders the chart,
# Dex is the OpenID provider the UI logs in through, Gitea serves the REST API the Gitea
# Git backend is tested against).
build: venv system-deps
	$(BIN)/fluxup sandbox build
	$(BIN)/fluxup sandbox build helm dex
	$(BIN)/fluxup sandbox build gitea

# Node 24 + Renovate 44 from the npm registry (FluxUp runs Renovate for update detection),
# cached under ~/.cache/fluxup by version: about 2 minutes once, then instant.
renovate: venv system-deps
	$(BIN)/fluxup renovate install

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: build lint renovate
	$(BIN)/pytest $(PYTEST_ARGS)

# Line coverage of the reconcile and adapter layers by the unit tests (no sandbox, no
# Gitea, nothing to build): each module's missed lines, then each layer's total.
COVERAGE_LAYERS := reconcile adapters
coverage: venv
	$(BIN)/pytest -q -m "not sandbox and not full" --ignore=tests/adapters/test_gitea_real.py \
		$(foreach layer,$(COVERAGE_LAYERS),--cov=fluxup.$(layer)) \
		--cov-report=term-missing:skip-covered $(PYTEST_ARGS)
	@for layer in $(COVERAGE_LAYERS); do \
		echo "fluxup/$$layer: $$($(BIN)/coverage report --include="fluxup/$$layer/*" \
			--format=total --precision=1)% of lines covered"; \
	done

# A fresh sandbox with FluxUp and its web UI; prints the UI's address, a login and a
# walkthrough, and runs until Ctrl-C (which stops everything it started).
# DEMO_ARGS=--story first plays the automated story; DEMO_ARGS=--detach returns at once.
demo: build renovate
	$(BIN)/fluxup demo --dir $(DEMO_DIR) $(DEMO_ARGS)

demo-down: venv
	$(BIN)/fluxup sandbox down --dir $(DEMO_DIR)

# The Helm chart keeps copies of manifests/ RBAC, webhook configurations and CRDs.
chart-sync:
	@grep -v '^#' manifests/chart/files/SOURCES | while read -r dst src; do cp "$$src" "$$dst"; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
