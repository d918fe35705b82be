# SmartUnion: `make demo` to run it, `make test` to test it. Needs only python3 (3.11+), pip, make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
DEMO_MEMBERS ?= 50000
DEMO_SEED ?= 1
BENCH_MEMBERS ?= 1000000
BENCH_LOAD_MEMBERS ?= 100000
BENCH_SOAK_SECONDS ?= 600
BENCH_LOAD_WORKERS ?= 2
export SMARTUNION_DATA_DIR ?= var

.PHONY: demo install install-dev lock lint test test-fast browser bench bench-load format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs come from the locks (exact versions and hashes: the same everywhere); the lower
# bounds in pyproject.toml are for people installing the package into an environment of theirs.
$(VENV)/.installed: requirements/base.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/base.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed

# Refresh the locks from pyproject.toml to the newest versions that satisfy it (then run
# `make test` and commit both). One lock for every platform, Python 3.11 and later.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --no-header --upgrade
lock: | $(BIN)/python
	$(BIN)/pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements/base.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements/dev.lock

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/smartunion init
	$(BIN)/smartunion generate --members $(DEMO_MEMBERS) --seed $(DEMO_SEED) --if-empty
	$(BIN)/smartunion demo-accounts
	$(BIN)/smartunion serve --host $(HOST) --port $(PORT)

# Headless Chromium for the browser tests (Debian package; Playwright drives it directly).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium and a CJK font (apt)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) \
	  || echo "WARNING: chromium could not be installed; browser tests will be skipped"; }

lint: install-dev
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src 2>/dev/null  # its stderr is chatter about nosec comments

test: install-dev browser lint
	$(BIN)/pytest

test-fast: install-dev
	$(BIN)/pytest -x -q -m "not browser and not slow"

format: install-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install-dev
	mkdir -p bench/results
	$(BIN)/python bench/run.py --members $(BENCH_MEMBERS) --out bench/results/latest.md
	@$(MAKE) --no-print-directory bench-load

# The HTTP server under wrk (Debian package), on SQLite and PostgreSQL: bench/results/load.md.
bench-load: install-dev
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk (apt)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	  || echo "WARNING: wrk could not be installed; the load benchmark will be skipped"; }
	mkdir -p bench/results
	$(BIN)/python bench/load.py --out bench/results/load.md --members $(BENCH_LOAD_MEMBERS) \
	  --soak-seconds $(BENCH_SOAK_SECONDS) --workers $(BENCH_LOAD_WORKERS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
