# interpbook — the only entry point a user needs. `make` alone lists the targets.
#   make book                  execute every chapter (ci scale) and build the site
#   make test                  unit, convention and notebook smoke tests
#   make chapter CH=<slug>     execute one chapter and say where its page and figures are
#   make figures SCALE=full    regenerate all figures at another scale (full: a GPU)
# Every target that needs the virtual environment creates it when it is missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.interpbook-installed
SCALE    ?= ci
JOBS     ?= 2
CHAPTERS ?=
CH       ?=
TORCH    := $(shell grep -E '^torch==' constraints.txt)

export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION = 1

.PHONY: help setup test test-site figures book chapter status sync lint clean

help: ## list the targets
	@echo "interpbook — an executable book. Targets:"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 24
	@echo "Variables: SCALE=smoke|ci|full (default ci)  JOBS=2  CHAPTERS='slug ...'  CH=slug"

$(STAMP): pyproject.toml constraints.txt
	@echo ">> creating the virtual environment in $(VENV) (first run only: about 2 minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -c constraints.txt -e ".[book,dev,peers]"
	# the official loaders of the Part VI datasets; --no-deps: their metadata asks for torchvision, never imported
	$(PY) -m pip install -q --no-deps -c constraints.txt easy-to-hard-data==1.0.0
	@touch $@

setup: $(STAMP) ## create or update the virtual environment (idempotent)

test: $(STAMP) ## run the test suite (unit, convention, notebooks at smoke scale)
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider

figures: $(STAMP) ## execute notebooks (SCALE, JOBS, CHAPTERS); unchanged ones are skipped
	@$(PY) -m interpbook run --scale $(SCALE) --jobs $(JOBS) $(CHAPTERS)

status: $(STAMP) ## regenerate the status page from the results files
	$(PY) -m interpbook status

book: figures ## execute what changed, then build the site into build/_build/html
	$(PY) -m interpbook status
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --path-output build
	@echo ">> open build/_build/html/index.html"

chapter: $(STAMP) ## execute one chapter: make chapter CH=<slug>
	@if [ -z "$(CH)" ]; then echo "error: name the chapter: make chapter CH=<slug> (see: $(PY) -m interpbook list)" >&2; exit 2; fi
	@$(PY) -m interpbook chapter $(CH) --scale $(SCALE)

test-site: $(STAMP) ## check the built site in headless Chromium (after make book)
	bash tools/install_chromium.sh
	$(PY) tools/site_check.py build/_build/html --screenshots build/screenshots

sync: $(STAMP) ## pair the notebook sources with .ipynb files for Jupyter (jupytext)
	$(VENV)/bin/jupytext --sync notebooks/*/*.py

lint: $(STAMP) ## ruff on the package, tests, notebooks and tools
	$(VENV)/bin/ruff check src tests notebooks tools benchmarks

clean: ## remove everything generated (build/); keeps the virtual environment
	rm -rf build
