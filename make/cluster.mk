# The local Kubernetes control plane (etcd + kube-apiserver + controller-manager +
# scheduler + kwok nodes, no Docker) and the e2e suite that runs against it.
# hack/cluster/local_cluster.py --help explains every option.
CLUSTER := python3 hack/cluster/local_cluster.py
E2E_WORKERS ?= 2

.PHONY: cluster-binaries
cluster-binaries: ## Build the pinned kube/etcd/kwok/helm binaries once into ~/.cache/kserve-stack/bin
	hack/cluster/build-binaries.sh

.PHONY: cluster
cluster: ## Start the local control plane with kwok nodes and dependency CRDs (idempotent)
	$(CLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop every process of the local control plane, delete its state, verify none is left
	$(CLUSTER) down --verify

.PHONY: cluster-status
cluster-status: ## Report the local control plane's processes, nodes and CRDs
	$(CLUSTER) status

.PHONY: e2e
e2e: setup ## Run the e2e tests that can run here (starts the local control plane if needed; -rs lists skips)
	$(PY) pytest -n $(E2E_WORKERS) -rs e2e

.PHONY: kind
kind: ## Create a kind cluster (needs Docker), build and load the images, install the chart
	hack/kind/up.sh

.PHONY: kind-gpu
kind-gpu: ## Like `kind`, with the NVIDIA device plugin on a GPU host
	hack/kind/up.sh --gpu

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	hack/kind/down.sh
