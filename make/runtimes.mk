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

# The runtimes wheel (its gRPC transport compiled by mypyc: runtimes/build_support), unpacked:
# on PYTHONPATH it shadows the editable sources, so tests and benchmarks run what ships.
RUNTIMES_WHEEL_DIR := $(BENCH_DIR)/runtimes-wheel
COMPILED_ENV := KSS_RUNTIMES_COMPILED=1 PYTHONPATH=$(abspath $(RUNTIMES_WHEEL_DIR))

.PHONY: runtimes-wheel
runtimes-wheel: setup ## Build the runtimes wheel (gRPC transport compiled by mypyc) into dist/runtimes and unpack it into .bench/runtimes-wheel
	@echo "building the runtimes wheel (mypyc compiles the gRPC transport: ~15 s)"
	rm -rf dist/runtimes runtimes/build $(RUNTIMES_WHEEL_DIR)  # no C or objects of an earlier build
	$(UV) build --quiet --wheel --package kserve-stack-runtimes --out-dir dist/runtimes
	$(PY) python -m zipfile -e dist/runtimes/kserve_stack_runtimes-*.whl $(RUNTIMES_WHEEL_DIR)

.PHONY: runtimes-test
runtimes-test: kserve-venv runtimes-wheel ## Run the runtimes tests on the sources, then again on the built wheel (creates .bench/kserve-venv for the KServe client test)
	$(PY) pytest -n 2 runtimes/tests
	$(MAKE) --no-print-directory runtimes-test-compiled

.PHONY: runtimes-test-compiled
runtimes-test-compiled: ## Run the runtimes tests on the wheel that `make runtimes-wheel` unpacked (compiled gRPC transport)
	@test -d $(RUNTIMES_WHEEL_DIR) || { echo "no $(RUNTIMES_WHEEL_DIR): run 'make runtimes-wheel' first" >&2; exit 2; }
	$(COMPILED_ENV) $(PY) pytest -n 2 -rs runtimes/tests

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
bench-runtimes: bench-venvs bench-tools runtimes-wheel ## Benchmark our server (the built wheel) vs KServe's vs MLServer (h2load for REST and gRPC; wrk, ghz for reference) and print a table
	PATH="$$PATH:$$(go env GOPATH)/bin" BENCH_OURS_BUILD=$(abspath $(RUNTIMES_WHEEL_DIR)) $(PY) python runtimes/bench/bench.py

.PHONY: bench-runtimes-work
bench-runtimes-work: setup runtimes-wheel ## Count the instructions our server (and h2load) runs per V1 REST, V2 REST and V2 gRPC call, under valgrind: work per call without the host's noise (not time)
	@command -v valgrind >/dev/null && command -v h2load >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq valgrind nghttp2-client)
	BENCH_OURS_BUILD=$(abspath $(RUNTIMES_WHEEL_DIR)) $(PY) python runtimes/bench/work.py

.PHONY: bench-runtimes-tensors
bench-runtimes-tensors: kserve-venv runtimes-wheel ## Time decoding and encoding typed gRPC tensors (4 to 150,528 elements) in process: ours (our wire codec) vs KServe 0.21
	BENCH_OURS_BUILD=$(abspath $(RUNTIMES_WHEEL_DIR)) $(PY) python runtimes/bench/tensors.py

.PHONY: bench-runtimes-incall
bench-runtimes-incall: setup runtimes-wheel ## CPU per V2 REST and V2 gRPC call of our server in process (the wheel), warm and on cold caches, with the model's predict apart
	PYTHONPATH=$(abspath $(RUNTIMES_WHEEL_DIR)) $(PY) python runtimes/bench/incall.py
