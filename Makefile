# modelrollout: `make test` and `make demo` set everything up on a fresh machine; `make dev`
# leaves a cluster running to explore.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEV := .dev
export MODELROLLOUT_CACHE ?= $(HOME)/.cache/modelrollout
export KUBECONFIG_DEV := $(CURDIR)/$(DEV)/kubeconfig

.PHONY: help install tools image crds lint typecheck test demo dev dev-down dev-cluster dev-cluster-down clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/modelrollout: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/modelrollout ## Create .venv with the package and its development tools

tools: ## Build or reuse Kubernetes, the node's pieces, helm, Prometheus, the dashboard checker (cached outside the repo)
	bash hack/tools.sh

image: install ## Build or reuse the modelrollout image, without Docker (cached by a hash of its inputs)
	$(BIN)/python hack/images.py build

crds: install ## Regenerate crds/ and the chart's copy from the API models
	$(BIN)/modelrollout crds --out crds --chart charts/modelrollout --docs docs/api.md

lint: install ## ruff and the layering contract
	$(BIN)/ruff check operator tests bench hack
	$(BIN)/ruff format --check operator tests bench hack
	$(BIN)/lint-imports

typecheck: install ## mypy --strict on the package
	$(BIN)/mypy operator/modelrollout

test: install tools image lint typecheck ## Install everything, then ruff, mypy --strict and the whole test suite
	$(BIN)/pytest

demo: install tools image ## The whole story on a real one-node cluster and live traffic; KEEP=1 leaves it running
	$(BIN)/python hack/demo.py demo --dir $(DEV) $(if $(KEEP),--keep)

dev-cluster: install tools ## Start a local cluster with a real node in the background; writes .dev/kubeconfig
	$(BIN)/python hack/cluster.py up --dir $(DEV)/cluster --kubeconfig $(DEV)/kubeconfig

dev-cluster-down: ## Stop the local cluster and remove all it made (processes, mounts, links, chains)
	$(BIN)/python hack/cluster.py down --dir $(DEV)/cluster
	rm -rf $(DEV)/cluster $(DEV)/kubeconfig

dev: install tools image ## The cluster, Prometheus, the operator (Helm) and the example, left running
	$(BIN)/python hack/demo.py dev --dir $(DEV)

dev-down: ## Stop everything `make dev` or `make demo KEEP=1` started; nothing is left behind
	$(BIN)/python hack/demo.py down --dir $(DEV)

clean: dev-down
	rm -rf $(DEV)
