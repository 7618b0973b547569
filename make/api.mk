# The API models and everything generated from them.
CRD_DIR := charts/kserve-stack/files/crds

.PHONY: generate
generate: setup ## Regenerate the CRD YAML (charts/kserve-stack/files/crds) from the API models
	$(PY) kserve-stack-crdgen --out $(CRD_DIR)

.PHONY: verify
verify: setup ## Fail when generated files drift from their sources, or the lock from pyproject
	$(UV) lock --check
	$(PY) kserve-stack-crdgen --out $(CRD_DIR) --check
	kubectl kustomize kustomize/crd >/dev/null

.PHONY: lint
lint: setup ## ruff, mypy (strict) and the import boundaries
	$(PY) ruff check .
	$(PY) ruff format --check .
	$(PY) mypy api/src controller/src runtimes/src router/src epp/src
	$(PY) lint-imports
