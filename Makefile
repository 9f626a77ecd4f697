# mcp-operator developer entry points. Two commands matter on a fresh machine:
#   make run    venv + local control plane (unless KUBECONFIG is set) + CRDs + the operator in the foreground
#   make test   venv + lint gates + the whole test suite against a real kube-apiserver
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_DIR := tests/npm
NPM_STAMP := $(NPM_DIR)/node_modules/.installed
PYTEST_ARGS ?=
E2E_ARGS ?=
HACK_MODULES := $(filter-out hack/generate.py hack/generate_chart.py,$(wildcard hack/*.py))

.PHONY: help venv npm run test lint unit e2e node-up node-down cluster-up cluster-down cluster-status crds bench clean

help:
	@echo "make run   - start the local control plane (or use \$$KUBECONFIG), install CRDs, run the operator"
	@echo "make test  - lint gates and the whole test suite against a real kube-apiserver"
	@echo "make lint  - ruff, mypy --strict, import-linter"
	@echo "make cluster-up / cluster-down - the local control plane (hack/cluster)"
	@echo "make e2e   - the end-to-end tier on a real local node (make node-up / node-down: the node alone)"
	@echo "make bench - operator, proxy and gateway benchmarks (BENCH=operator|proxy|vmcp|pods|replicas, BENCH_ARGS=...)"

$(STAMP): pyproject.toml requirements/constraints.txt hack/bootstrap
	hack/bootstrap "$(PYTHON)" "$(VENV)"
	@touch $@

venv: $(STAMP)

$(NPM_STAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json hack/bootstrap-npm
	hack/bootstrap-npm "$(NPM_DIR)"
	@touch $@

npm: $(NPM_STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check api controller gateway kube logs tests hack
	$(BIN)/mypy
	# hack/'s cluster and node modules import each other by bare name (hack/ is their sys.path entry).
	MYPYPATH=hack $(BIN)/mypy $(HACK_MODULES)
	$(BIN)/lint-imports

# The suite, then the end-to-end tier in its own run (its node is up only while it runs, so the timing of
# the integration tests does not share the cores with a kubelet). E2E_ARGS reach the second run only.
# The control plane's and the node's binaries are built by one compile of one source tree (on a machine
# with neither cached that is one unpack and one compile instead of two).
test: venv npm lint
	hack/cluster build --node
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest $(PYTEST_ARGS)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest tests/e2e $(E2E_ARGS)

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The end-to-end tier on a real node (instance MCP_OPERATOR_E2E_CLUSTER, default "e2e"): builds the node's
# binaries and the images once (cached), installs both charts, runs MCP servers in real pods.
e2e: venv npm
	hack/cluster build --node
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

node-up:
	MCP_OPERATOR_CLUSTER=$${MCP_OPERATOR_CLUSTER:-e2e} hack/cluster up --node

node-down:
	MCP_OPERATOR_CLUSTER=$${MCP_OPERATOR_CLUSTER:-e2e} hack/cluster down

cluster-up:
	hack/cluster up

cluster-down:
	hack/cluster down

cluster-status:
	hack/cluster status

crds: venv
	$(BIN)/python hack/generate.py

run: venv
	hack/run-local

# make bench [BENCH="operator proxy vmcp"] [BENCH_ARGS="--n 1000 --repeats 2 --steady 300"]
bench: venv npm
	hack/bench $(BENCH) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NPM_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache
