# dsarisk: every target sets up .venv itself when it is missing or stale.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
YEAR ?= 2024
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# The PDF export (WeasyPrint) needs pango and a font; its tests turn pages into PNG with pdftoppm.
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils

$(STAMP): pyproject.toml | sysdeps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: sysdeps
sysdeps: ## install the system libraries of the PDF export (Debian, as root) when missing
	@if ! $(PYTHON) -c "import ctypes.util as u, sys; sys.exit(not u.find_library('pangoft2-1.0'))" \
	    || [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || ! command -v pdftoppm >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(PDF_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PDF_PACKAGES) >/dev/null; \
	  else \
	    echo "note: pango, fonts or pdftoppm missing and not installable here (run as root on Debian:" \
	         "apt-get install $(PDF_PACKAGES)); the PDF export and its tests are skipped" >&2; \
	  fi; \
	fi

.PHONY: venv
venv: $(STAMP) ## create .venv with the project and its dependencies

.PHONY: report
report: $(STAMP) ## build reports/$(YEAR)/report.html (internal version) from the sample data
	$(BIN)/dsarisk run --year $(YEAR) --jobs $(JOBS)

.PHONY: public
public: $(STAMP) ## build reports/$(YEAR)-public/ (non-confidential version)
	$(BIN)/dsarisk run --year $(YEAR) --jobs $(JOBS) --public

.PHONY: notebooks
notebooks: $(STAMP) ## sync each notebook's .ipynb/.py pair (the module template included)
	cd notebooks && ../$(BIN)/jupytext --sync 00_summary.py 10_module.py 80_transparency_database.py 90_explore.py

.PHONY: lab
lab: $(STAMP) ## open JupyterLab on this workspace (the sample) with the project's environment
	$(BIN)/dsarisk lab

.PHONY: test
test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup

.PHONY: clean
clean: ## remove build artefacts (reports/, caches), keep .venv
	rm -rf reports/*/ build .pytest_cache .hypothesis
