# modelrollout: the two commands that set everything up are `make test` and `make dev`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEV := .dev
export MODELROLLOUT_CACHE ?= $(HOME)/.cache/modelrollout
export KUBECONFIG_DEV := $(CURDIR)/$(DEV)/kubeconfig

.PHONY: help install tools crds lint typecheck test dev dev-down dev-cluster dev-cluster-down clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/modelrollout: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/modelrollout ## Create .venv with the package and its development tools

tools: ## Build or reuse the control plane, helm, Prometheus (cached outside the repo)
	bash hack/tools.sh

crds: install ## Regenerate crds/ and the chart's copy from the API models
	$(BIN)/modelrollout crds --out crds --chart charts/modelrollout --docs docs/api.md

lint: install ## ruff and the layering contract
	$(BIN)/ruff check operator tests bench hack
	$(BIN)/ruff format --check operator tests bench hack
	$(BIN)/lint-imports

typecheck: install ## mypy --strict on the package
	$(BIN)/mypy operator/modelrollout

test: install tools lint typecheck ## Install everything, then ruff, mypy --strict and the whole test suite
	$(BIN)/pytest

dev-cluster: install tools ## Start the local control plane in the background; writes .dev/kubeconfig
	$(BIN)/python hack/controlplane.py up --dir $(DEV)/cluster --kubeconfig $(DEV)/kubeconfig

dev-cluster-down: ## Stop the local control plane; no process is left behind
	$(BIN)/python hack/controlplane.py down --dir $(DEV)/cluster

dev: dev-cluster ## Control plane + CRDs + the operator in the background + an example ModelDeployment
	bash hack/dev.sh

dev-down: ## Stop the operator, the model servers and the control plane
	-for f in $(DEV)/run/*.pid; do [ -f "$$f" ] && kill "$$(cat $$f)" 2>/dev/null; rm -f "$$f"; done
	$(BIN)/python hack/controlplane.py down --dir $(DEV)/cluster

clean: dev-down
	rm -rf $(DEV)
