# Kinesis Remediator. Every target bootstraps what it needs from the project's own files.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip's chatter goes to a log, shown only when a step fails.
PIP_LOG := build/pip.log
QUIET_PIP = >>$(PIP_LOG) 2>&1 || { tail -n 40 $(PIP_LOG); exit 1; }
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# The Lambda runtime and architecture the layer is built for (stacks/constructs/remediator.py).
LAMBDA_PYTHON := 3.14
LAMBDA_PLATFORM := manylinux2014_aarch64
LAYER := build/layer
# Your policy files (policies/README.md). The tests and the demo bring their own; examples/ is documentation.
POLICY_DIR ?= policies
# More CDK CLI arguments for synth and deploy, e.g. CDK_ARGS="-c memberExternalId=..." when policies name other accounts.
CDK_ARGS ?=

export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help bootstrap layer synth deploy destroy lint test test-fast demo demo-accounts validate docs clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "==> Creating $(VENV) from requirements-dev.txt (log: $(PIP_LOG))"
	@mkdir -p build && : > $(PIP_LOG)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip $(QUIET_PIP)
	@$(PY) -m pip install --quiet -r requirements-dev.txt $(QUIET_PIP)
	@$(PY) -m pip install --quiet --no-deps -e . $(QUIET_PIP)
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> Installing the pinned CDK CLI (package-lock.json)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(LAYER)/.installed: lambdas/requirements.txt $(VENV)/.installed
	@echo "==> Building the Lambda layer for Python $(LAMBDA_PYTHON) on $(LAMBDA_PLATFORM)"
	@rm -rf $(LAYER) && mkdir -p $(LAYER)/python && touch $(PIP_LOG)
	@$(PY) -m pip install --quiet --disable-pip-version-check --target $(LAYER)/python \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: --no-compile -r lambdas/requirements.txt $(QUIET_PIP)
	@touch $@

bootstrap: $(VENV)/.installed node_modules/.installed $(LAYER)/.installed ## Install everything (venv, CDK CLI, layer)

layer: $(LAYER)/.installed ## Build the Lambda dependencies layer

validate: $(VENV)/.installed ## Validate the policy files
	@$(VENV)/bin/kinesis-remediator validate $(POLICY_DIR)

docs: $(VENV)/.installed ## Regenerate the README's policy reference and plugin catalogue from the registry
	@$(PY) -m remediator.reference README.md

synth: bootstrap ## cdk synth, offline, with cdk-nag
	@$(CDK) synth --quiet -c policyDir=$(POLICY_DIR) $(CDK_ARGS)
	@echo "==> Synthesized cdk.out. cdk-nag (AwsSolutions) ran during synth as a CDK validation plugin and passed:"
	@echo "    no unacknowledged error-level finding (one would have failed synth before this line)."

# --all: the hub, and a member stack per other account and region the policies name (each into its own account).
deploy: bootstrap ## cdk deploy into the account of your current AWS credentials (and the members' accounts)
	@$(CDK) deploy --all --require-approval broadening -c policyDir=$(POLICY_DIR) $(CDK_ARGS)

# cdk destroy synthesizes the app only to learn the stack's name: the example lets you destroy after emptying
# (or breaking) your policy folder, and it deploys nothing.
destroy: bootstrap ## cdk destroy (the audit table is retained)
	@$(CDK) destroy -c policyDir=examples/policies

lint: $(VENV)/.installed ## ruff and mypy
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

test: bootstrap ## The whole test suite (unit, integration, infrastructure, e2e)
	@$(PY) -m pytest -n 2 --dist loadgroup

test-fast: $(VENV)/.installed ## Unit and integration tests only
	@$(PY) -m pytest tests/unit tests/integration -q

demo: bootstrap ## Deploy into a local AWS emulator and play seven incidents
	@$(PY) -m demo

demo-accounts: bootstrap ## Deploy a hub and one member account into the emulator and play one incident there
	@$(PY) -m demo.accounts

clean: ## Remove build outputs (keeps .venv and node_modules)
	@rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache .demo .demo-accounts
