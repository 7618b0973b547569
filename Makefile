# kserve-stack developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PY := $(UV) run --frozen

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install the workspace environment into .venv/ from uv.lock (idempotent)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.8"
	$(UV) sync --frozen --all-packages

# Test folders: unit and component tests per package, chart tests, and the e2e suite, which
# runs on the local control plane (started on demand and stopped again if it was not up).
TEST_PATHS := api/tests controller/tests runtimes/tests charts/tests e2e
TEST_WORKERS ?= 2

.PHONY: test
test: setup cluster-binaries kserve-venv runtimes-wheel ## Run every test that can run on this machine (unit, component, e2e; the runtimes tests also on the built wheel)
	@was_up=0; python3 hack/cluster/local_cluster.py status >/dev/null 2>&1 || was_up=$$?; \
	rc=0; $(PY) pytest -n $(TEST_WORKERS) -rs $(TEST_PATHS) || rc=$$?; \
	$(MAKE) --no-print-directory runtimes-test-compiled || rc=$$?; \
	if [ "$$was_up" != 0 ]; then python3 hack/cluster/local_cluster.py down --verify || rc=1; fi; \
	exit $$rc

.PHONY: quickstart
quickstart: setup ## Set up, train a sample iris model, serve it locally and print its URL (Ctrl-C stops)
	$(PY) kserve-stack quickstart

.PHONY: verify
verify: setup controller-verify ## Fail when generated files drift from their sources, or the lock from pyproject
	$(UV) lock --check
	$(PY) kserve-stack-crdgen --out $(CRD_DIR) --check
	kubectl kustomize kustomize/crd >/dev/null

.PHONY: lint
lint: setup ## ruff, mypy (strict) and the import boundaries
	$(PY) ruff check .
	$(PY) ruff format --check .
	$(PY) mypy api/src controller/src runtimes/src router/src epp/src
	$(PY) lint-imports

.PHONY: unit
unit: setup ## Run the tests that need no cluster (fast)
	$(PY) pytest -n $(TEST_WORKERS) -rs api/tests controller/tests runtimes/tests charts/tests

# Each area keeps its targets in make/<area>.mk (listed by `make help` too).
include $(sort $(wildcard make/*.mk))
