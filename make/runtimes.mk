# Targets of the model server and predictive runtimes (runtimes/).
RUNTIMES_PROTO_DIR := runtimes/proto
RUNTIMES_GEN_DIR := runtimes/src/kserve_stack_runtimes/_generated
BENCH_DIR := .bench
KSERVE_VENV := $(BENCH_DIR)/kserve-venv
MLSERVER_VENV := $(BENCH_DIR)/mlserver-venv

.PHONY: runtimes-proto
runtimes-proto: ## Regenerate the Open Inference Protocol gRPC modules (runtimes/.../_generated) from runtimes/proto
	$(PY) python -m grpc_tools.protoc -I $(RUNTIMES_PROTO_DIR) --python_out=$(RUNTIMES_GEN_DIR) \
		--pyi_out=$(RUNTIMES_GEN_DIR) --grpc_python_out=$(RUNTIMES_GEN_DIR) $(RUNTIMES_PROTO_DIR)/grpc_predict_v2.proto
	sed -i 's/^import grpc_predict_v2_pb2 as/from kserve_stack_runtimes._generated import grpc_predict_v2_pb2 as/' \
		$(RUNTIMES_GEN_DIR)/grpc_predict_v2_pb2_grpc.py

.PHONY: runtimes-test
runtimes-test: kserve-venv ## Run the runtimes tests (creates .bench/kserve-venv for the KServe client test)
	$(PY) pytest -n 2 runtimes/tests

.PHONY: runtimes-lint
runtimes-lint: ## ruff + mypy --strict on runtimes/
	$(PY) ruff check runtimes docs/runtimes
	$(PY) ruff format --check runtimes docs/runtimes
	$(PY) mypy runtimes/src

.PHONY: kserve-venv
kserve-venv: ## Create .bench/kserve-venv with KServe's own server and client (kserve==0.21.0), used by tests and the benchmark
	@test -x $(KSERVE_VENV)/bin/python || $(UV) venv --quiet --python 3.11 $(KSERVE_VENV)
	$(UV) pip install --quiet --python $(KSERVE_VENV)/bin/python 'kserve==0.21.0' 'scikit-learn==1.9.1' 'joblib==1.6.0'

.PHONY: bench-venvs
bench-venvs: kserve-venv ## Create the scratch venvs with KServe's server/client and MLServer (.bench/, gitignored)
	@test -x $(MLSERVER_VENV)/bin/python || $(UV) venv --quiet --python 3.11 $(MLSERVER_VENV)
	$(UV) pip install --quiet --python $(MLSERVER_VENV)/bin/python 'mlserver==1.7.1' 'mlserver-sklearn==1.7.1' 'scikit-learn==1.9.1' 'joblib==1.6.0'

.PHONY: bench-tools
bench-tools: ## Install the load generators: Debian's h2load (REST and gRPC) and wrk (REST), and ghz (gRPC, built with go install)
	@command -v wrk >/dev/null && command -v h2load >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk nghttp2-client)
	@test -x "$$(go env GOPATH)/bin/ghz" || go install github.com/bojand/ghz/cmd/ghz@v0.93.0

.PHONY: bench-runtimes
bench-runtimes: bench-venvs bench-tools ## Benchmark our server vs KServe's vs MLServer (h2load for REST and gRPC; wrk, ghz for reference) and print a table
	PATH="$$PATH:$$(go env GOPATH)/bin" $(PY) python runtimes/bench/bench.py

.PHONY: bench-runtimes-work
bench-runtimes-work: setup ## Count the instructions our server (and h2load) runs per V1 REST, V2 REST and V2 gRPC call, under valgrind: work per call without the host's noise (not time)
	@command -v valgrind >/dev/null && command -v h2load >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq valgrind nghttp2-client)
	$(PY) python runtimes/bench/work.py
