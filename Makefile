# stackctl developer entry points. Everything goes through scripts/ so CI
# (.ci/run -> make test) and developers run exactly the same commands.
#
#   make test ARGS='-k secrets -x'   extra pytest arguments
#   make bench ARGS='startup --runs 41'

SHELL := /bin/bash
.DEFAULT_GOAL := help
ARGS ?=

.PHONY: help setup test demo bench

help: ## list the targets
	@echo "stackctl make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  %-8s %s\n", $$1, $$2}'
	@echo "Pass extra arguments with ARGS='...' (pytest for test, bench/run.py for bench)."
	@echo "Setup skips: STACKCTL_SETUP_SKIP_DOCKER=1 (Python only), see scripts/setup.sh --help."

setup: ## install the venv, Docker engine, Compose v2, local base images (idempotent)
	bash scripts/setup.sh

test: ## setup (incl. the Kubernetes test binaries), then run every test tier
	bash scripts/setup.sh --with-k8s
	bash scripts/test.sh $(ARGS)

demo: setup ## setup, then run scripts/demo.sh
	bash scripts/demo.sh $(ARGS)

bench: setup ## setup, then run the benchmarks (bench/run.py)
	.venv/bin/python bench/run.py $(ARGS)
