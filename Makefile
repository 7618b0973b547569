# kserve-stack developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PY := $(UV) run --frozen

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install the workspace environment into .venv/ from uv.lock (idempotent)
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet 'uv==0.13.8'
	$(UV) sync --frozen --all-packages

.PHONY: test
test: setup ## Run every test that can run on this machine
	$(PY) pytest -n 2 api controller runtimes router epp

# Each area keeps its targets in make/<area>.mk (listed by `make help` too).
include $(sort $(wildcard make/*.mk))
