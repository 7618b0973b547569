# The API models and everything generated from them.
CRD_DIR := charts/kserve-stack/files/crds

.PHONY: generate
generate: setup ## Regenerate the CRD YAML (charts/kserve-stack/files/crds) from the API models
	$(PY) kserve-stack-crdgen --out $(CRD_DIR)
