# Targets of the controller (controller/): the operator, its webhooks and the local mode.
CONTROLLER_RUNTIMES_SRC := charts/kserve-stack/files/runtimes
CONTROLLER_RUNTIMES_PKG := controller/src/kserve_stack_controller/builtin_runtimes
CONTROLLER_WEBHOOKS := kustomize/controller/webhooks.yaml

.PHONY: controller-generate
controller-generate: ## Copy the built-in ClusterServingRuntimes into the controller package; write kustomize/controller/webhooks.yaml
	cp $(CONTROLLER_RUNTIMES_SRC)/*.yaml $(CONTROLLER_RUNTIMES_PKG)/
	$(PY) python -m kserve_stack_controller.webhooks > $(CONTROLLER_WEBHOOKS)

.PHONY: controller-verify
controller-verify: ## Fail when the controller's copy of the built-in runtimes drifts from the chart's
	@for f in $(CONTROLLER_RUNTIMES_SRC)/*.yaml; do \
		cmp -s $$f $(CONTROLLER_RUNTIMES_PKG)/$$(basename $$f) || { echo "drift: $$f (run make controller-generate)"; exit 1; }; \
	done; \
	for f in $(CONTROLLER_RUNTIMES_PKG)/*.yaml; do \
		test -f $(CONTROLLER_RUNTIMES_SRC)/$$(basename $$f) || { echo "stale copy: $$f (run make controller-generate)"; exit 1; }; \
	done
	@$(PY) python -m kserve_stack_controller.webhooks | cmp -s - $(CONTROLLER_WEBHOOKS) || { echo "drift: $(CONTROLLER_WEBHOOKS) (run make controller-generate)"; exit 1; }
	kubectl kustomize kustomize/controller >/dev/null

.PHONY: controller-test
controller-test: setup ## Run the controller's unit and component tests
	$(PY) pytest -n 2 controller/tests

.PHONY: controller-e2e
controller-e2e: setup ## Run the controller's e2e tests on the local control plane (or kind)
	$(PY) pytest -n $(E2E_WORKERS) -rs e2e/controller

.PHONY: controller-lint
controller-lint: setup ## ruff + mypy --strict on controller/
	$(PY) ruff check controller e2e/controller
	$(PY) ruff format --check controller e2e/controller
	$(PY) mypy controller/src

.PHONY: bench-controller
bench-controller: setup ## Benchmark the controller on the local control plane (latency vs the API server's floor, 1,000-object backlog, memory) and print a table
	python3 hack/cluster/local_cluster.py up >/dev/null
	$(PY) python controller/bench/bench_controller.py $(BENCH_ARGS)

.PHONY: controller-reliability
controller-reliability: setup ## Reliability e2e on the local control plane: random SIGKILLs under load, API server restarts, the least-privilege RBAC role
	$(PY) pytest -n $(E2E_WORKERS) -rs e2e/reliability
