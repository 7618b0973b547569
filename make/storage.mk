# Targets of the storage initializer (runtimes/src/kserve_stack_runtimes/storage).

.PHONY: storage-test
storage-test: ## Run the storage initializer tests (moto S3, GCS emulator, local HTTP and hub servers on 127.0.0.1)
	$(PY) pytest -n 2 runtimes/tests/storage

.PHONY: storage-lint
storage-lint: ## ruff + mypy --strict on the storage initializer
	$(PY) ruff check runtimes/src/kserve_stack_runtimes/storage runtimes/tests/storage
	$(PY) ruff format --check runtimes/src/kserve_stack_runtimes/storage runtimes/tests/storage
	$(PY) mypy runtimes/src/kserve_stack_runtimes/storage
