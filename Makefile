# fmnist: the single entry point. `make demo` runs the main job, `make test` the test suite.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS := --quiet --disable-pip-version-check --no-input
# The machine's pip config may list optional local indexes that do not exist; hide that noise.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
STAMP := $(VENV)/.installed
FMNIST := $(BIN)/fmnist
PYTEST_ARGS ?=
DEMO_PRESET ?= default
# The clothing photos the demo adapts the photo model on (train/ only; validation/ stays unseen).
PHOTOS_DIR ?= $(or $(FMNIST_PHOTOS_DIR),../shared/data/clothing-photos)
# Where pip finds the CPU build of torch==2.13.0 when the machine's own wheel folder does not
# hold it (for example https://download.pytorch.org/whl/cpu); empty: the configured indexes.
TORCH_INDEX ?=
# The serving-only install (`.[serve]` from requirements/serve.lock.txt, as in the API image).
SERVE_VENV ?= .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install lock serve-lock data demo test test-heavy test-gcp test-agnostic test-serve-only lint docs sbom bench bench-train clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/lock.txt requirements/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (first time: a few minutes)"
	$(PIP) install $(PIP_FLAGS) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -c requirements/constraints.txt -r requirements/lock.txt $(QUIET_PIP)
	$(PIP) install $(PIP_FLAGS) --no-deps -e . $(QUIET_PIP)
	@touch $(STAMP)

install: $(STAMP) ## Create the virtual environment and install the pinned dependencies

lock: ## Re-resolve the extras and rewrite requirements/lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) -c requirements/constraints.txt -e '.[train,serve,explain,monitor,browser,dev,pipelines,gcp,agnostic]' $(QUIET_PIP)
	$(PIP) freeze --exclude-editable | grep -v '^fmnist' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements/lock.txt
	@touch $(STAMP)

serve-lock: ## Rewrite requirements/serve.lock.txt (the serving-only closure of lock.txt, with hashes)
	PYTHON=$(PYTHON) bash scripts/serve-lock.sh

$(SERVE_STAMP): requirements/serve.lock.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	rm -rf $(SERVE_VENV) && $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install $(PIP_FLAGS) --require-hashes --no-deps -r requirements/serve.lock.txt $(QUIET_PIP)
	@touch $(SERVE_STAMP)

data: $(STAMP) ## Install Debian's dataset package when possible, then fetch and verify the data
	@bash scripts/install-dataset.sh
	$(FMNIST) data fetch

demo: data ## Set everything up, run the main job (snapshot, train, evaluate, register), serve it
	$(FMNIST) data validate
	$(FMNIST) pipeline run --preset $(DEMO_PRESET)
	@if [ -d "$(PHOTOS_DIR)/train" ]; then \
	  echo "adapting the photo model on $(PHOTOS_DIR)/train (quick preset)"; \
	  $(FMNIST) experiment adapt "$(PHOTOS_DIR)/train" --preset quick; \
	else \
	  echo "no clothing photos at $(PHOTOS_DIR)/train (set PHOTOS_DIR): uploaded photos will be answered by the Fashion-MNIST model"; \
	fi
	$(FMNIST) serve --host $(HOST) --port $(PORT)

test: $(STAMP) ## Check the layer contracts and bandit, then run the tests with coverage (heavy ones excluded)
	@bash scripts/install-dataset.sh
	@bash scripts/install-browser.sh
	@bash scripts/install-prometheus.sh
	$(BIN)/lint-imports
	$(BIN)/bandit -r src --severity-level medium --quiet
	$(BIN)/pytest -m "not heavy and not agnostic and not serve_only and not gcp" --cov --cov-report=term --cov-fail-under=85 --durations=25 $(PYTEST_ARGS)
	$(BIN)/python benchmarks/coverage_summary.py

test-heavy: $(STAMP) ## Run only the heavy tests (full data, long training)
	$(BIN)/pytest -m heavy $(PYTEST_ARGS)

test-agnostic: $(STAMP) ## The agnostic profile on real servers (PostgreSQL, S3 API, MLflow, Prometheus), kfp.local
	@bash scripts/install-dataset.sh
	@bash scripts/install-postgres.sh
	@bash scripts/install-prometheus.sh
	$(BIN)/pytest -m agnostic $(PYTEST_ARGS)

test-gcp: $(STAMP) ## GCP adapters and the gcp profile on emulators the tests start (Pub/Sub, GCS, BigQuery)
	@bash scripts/install-dataset.sh
	$(BIN)/pytest -m gcp $(PYTEST_ARGS)

test-serve-only: $(STAMP) $(SERVE_STAMP) ## Serve from the serving-only install (fresh venv), test its API, measure it
	@bash scripts/install-dataset.sh
	@echo "installing fmnist (not editable, as in the API image) into $(SERVE_VENV)"
	$(SERVE_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps --force-reinstall . $(QUIET_PIP)
	SERVE_ONLY_PYTHON=$(abspath $(SERVE_VENV))/bin/python $(BIN)/pytest -m serve_only $(PYTEST_ARGS)
	$(BIN)/python benchmarks/bench_serve_only.py --python $(SERVE_VENV)/bin/python

sbom: $(STAMP) ## CycloneDX SBOMs of the locked environment and of the serving-only install, in sbom/
	@mkdir -p sbom
	$(BIN)/cyclonedx-py requirements requirements/lock.txt --of JSON -o sbom/fmnist-lock.cdx.json
	$(BIN)/cyclonedx-py requirements requirements/serve.lock.txt --of JSON -o sbom/fmnist-serve.cdx.json
	@echo "wrote sbom/fmnist-lock.cdx.json and sbom/fmnist-serve.cdx.json"

lint: $(STAMP) ## ruff (lint + format check), mypy, layer contracts, docstring coverage, bandit
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/interrogate src/fmnist
	$(BIN)/bandit -r src --severity-level medium --quiet

docs: $(STAMP) ## Build the documentation site into site/ (mkdocs --strict; references and figures must be current)
	$(BIN)/python scripts/gen_reference.py --check
	$(BIN)/python benchmarks/figures.py --check
	@bash scripts/vendor-mermaid.sh
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: data ## Run the benchmarks and print measured figures (about 35 minutes: the fuzzing 4, the soak 11)
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_onnx.py
	$(BIN)/python benchmarks/bench_train.py --preset quick
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_http.py
	$(BIN)/python benchmarks/bench_http.py --home benchmarks/results/home-default --preset default --core-only --output benchmarks/results/http-served-default.json
	$(BIN)/python benchmarks/bench_fuzz.py
	$(BIN)/python benchmarks/bench_soak.py --photos "$(PHOTOS_DIR)/validation"

bench-train: data ## Time the default training preset on the full data (about 5 minutes)
	$(BIN)/python benchmarks/bench_train.py --preset default

.PHONY: pareto
pareto: data ## Train the Pareto table's models in data/pareto (resumable; about 2.5 hours on 2 cores), measure them
	$(BIN)/python benchmarks/bench_pareto.py --home data/pareto --train

.PHONY: video
video: data ## Record the demo video of the real system (build/video: MP4, subtitles, poster; a few minutes)
	@bash scripts/install-browser.sh
	$(FMNIST) video record --out build/video --photos "$(PHOTOS_DIR)" --result benchmarks/results/video.json

clean: ## Remove the virtual environment and caches (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov site
