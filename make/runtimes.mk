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
runtimes-test: ## Run the runtimes tests (needs .bench/kserve-venv for the KServe client test: make bench-venvs)
	$(PY) pytest -n 2 runtimes/tests

.PHONY: runtimes-lint
runtimes-lint: ## ruff + mypy --strict on runtimes/
	$(PY) ruff check runtimes docs/runtimes
	$(PY) ruff format --check runtimes docs/runtimes
	$(PY) mypy runtimes/src

.PHONY: bench-venvs
bench-venvs: ## Create the scratch venvs with KServe's server/client and MLServer (.bench/, gitignored)
	@test -x $(KSERVE_VENV)/bin/python || $(UV) venv --quiet --python 3.11 $(KSERVE_VENV)
	$(UV) pip install --quiet --python $(KSERVE_VENV)/bin/python 'kserve==0.21.0' 'scikit-learn==1.9.1' 'joblib==1.6.0'
	@test -x $(MLSERVER_VENV)/bin/python || $(UV) venv --quiet --python 3.11 $(MLSERVER_VENV)
	$(UV) pip install --quiet --python $(MLSERVER_VENV)/bin/python 'mlserver==1.7.1' 'mlserver-sklearn==1.7.1' 'scikit-learn==1.9.1' 'joblib==1.6.0'

.PHONY: bench-runtimes
bench-runtimes: bench-venvs ## Benchmark our server vs KServe's vs MLServer (wrk for REST, ghz for gRPC) and print a table
	$(PY) python runtimes/bench/bench.py
