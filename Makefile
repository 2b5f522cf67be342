# Everything starts from a clean clone: `make demo` and `make test` create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint types unit notebooks-test lab bench bench-smoke bench-env browser-deps install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) notebooks/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check flovyn_nb tests bench notebooks
	$(VENV)/bin/ruff format --check flovyn_nb tests bench notebooks

types: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) browser-deps
	$(PY) -m pytest -q

# nbval runs every example notebook top to bottom and compares its outputs with the saved
# ones (real outputs of a run: `python notebooks/refresh.py` re-makes them).
notebooks-test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --nbval notebooks/ \
		--nbval-sanitize-with notebooks/sanitize.cfg

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# tests/test_browser.py drives Debian's Chromium through Playwright: install the package
# when it is missing (never `playwright install`: no browser is ever downloaded).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The bench has its own venv: the project (editable) plus DBOS and matplotlib, pinned in
# bench/requirements.txt, so neither ever becomes a dependency of flovyn_nb.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	echo '*' > $(BENCH_VENV)/.gitignore
	$(BENCH_PY) -m pip install -q --upgrade pip
	$(BENCH_PY) -m pip install -q -e . -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench-env: $(BENCH_STAMP)

# Full run (~10 min): both systems, bench/out/results.json, docs/benchmarks.md and its plot.
bench: $(BENCH_STAMP)
	$(BENCH_PY) bench/run.py --docs

# Tiny sizes, both systems; fails only when a workload errors (part of `make test`).
bench-smoke: $(BENCH_STAMP)
	$(BENCH_PY) bench/run.py --smoke

test: lint types unit notebooks-test bench-smoke

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
