# Targets of the controller (controller/): the operator, its webhooks and the local mode.
CONTROLLER_WEBHOOKS := kustomize/controller/webhooks.yaml
# The chart installs the same manifests as kustomize/controller, from a checked copy.
CONTROLLER_MANIFESTS := $(addprefix kustomize/controller/,rbac.yaml deployment.yaml activator.yaml webhooks.yaml)
CONTROLLER_CHART_FILES := charts/kserve-stack/files/controller

.PHONY: controller-generate
controller-generate: ## Write kustomize/controller/webhooks.yaml; copy kustomize/controller into the chart
	$(PY) python -m kserve_stack_controller.webhooks > $(CONTROLLER_WEBHOOKS)
	cp $(CONTROLLER_MANIFESTS) $(CONTROLLER_CHART_FILES)/

.PHONY: controller-verify
controller-verify: ## Fail when generated controller manifests (webhooks, the chart's copy of kustomize/controller) drift
	@$(PY) python -m kserve_stack_controller.webhooks | cmp -s - $(CONTROLLER_WEBHOOKS) || { echo "drift: $(CONTROLLER_WEBHOOKS) (run make controller-generate)"; exit 1; }
	@for f in $(CONTROLLER_MANIFESTS); do \
		cmp -s $$f $(CONTROLLER_CHART_FILES)/$$(basename $$f) || { echo "drift: $(CONTROLLER_CHART_FILES)/$$(basename $$f) (run make controller-generate)"; exit 1; }; \
	done
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
	@was_up=0; python3 hack/cluster/local_cluster.py status >/dev/null 2>&1 || was_up=$$?; \
	python3 hack/cluster/local_cluster.py up >/dev/null || exit 1; \
	rc=0; $(PY) python controller/bench/bench_controller.py $(BENCH_ARGS) || rc=$$?; \
	if [ "$$was_up" != 0 ]; then python3 hack/cluster/local_cluster.py down --verify || rc=1; fi; \
	exit $$rc

.PHONY: controller-reliability
controller-reliability: setup ## Reliability e2e on the local control plane: random SIGKILLs under load, API server restarts, the least-privilege RBAC role
	$(PY) pytest -n $(E2E_WORKERS) -rs e2e/reliability
