# dsarisk: every target sets up .venv itself when it is missing or stale.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
YEAR ?= 2024
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: venv
venv: $(STAMP) ## create .venv with the project and its dependencies

.PHONY: report
report: $(STAMP) ## build reports/$(YEAR)/report.html (internal version) from the sample data
	$(BIN)/dsarisk run --year $(YEAR) --jobs $(JOBS)

.PHONY: public
public: $(STAMP) ## build reports/$(YEAR)-public/ (non-confidential version)
	$(BIN)/dsarisk run --year $(YEAR) --jobs $(JOBS) --public

.PHONY: notebooks
notebooks: $(STAMP) ## write the module notebooks from their template; sync the other .ipynb/.py pairs
	$(BIN)/python -m dsarisk.notebooks
	cd notebooks && ../$(BIN)/jupytext --sync 00_summary.py 80_transparency_database.py 90_explore.py

.PHONY: lab
lab: $(STAMP) ## open JupyterLab on this workspace (the sample) with the project's environment
	$(BIN)/dsarisk lab

.PHONY: test
test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup

.PHONY: clean
clean: ## remove build artefacts (reports/, caches), keep .venv
	rm -rf reports/*/ build .pytest_cache .hypothesis
