# Everything starts from a clean clone: `make demo` and `make test` create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint types unit postgres-deps notebooks-test lab bench bench-smoke bench-env browser-deps install clean extension extension-test

# The editable install skips the wheel's extension build hook (SKIP_JUPYTER_BUILDER): the
# extension is built below from the lockfile with the venv's jlpm, then linked, so that
# `jupyter labextension list` shows flovyn-nb enabled and no `jupyter lab build` is needed.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	SKIP_JUPYTER_BUILDER=1 $(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) extension

# extension/ (TypeScript) → flovyn_nb/labextension/ (gitignored build output).
JLPM := $(CURDIR)/$(VENV)/bin/jlpm
EXT_MODULES := extension/node_modules/.yarn-state.yml
EXT_BUILT := flovyn_nb/labextension/static/style.js
EXT_LINK := $(VENV)/share/jupyter/labextensions/flovyn-nb
EXT_SOURCES := $(wildcard extension/src/*.ts extension/src/*.tsx extension/style/* extension/schema/*) \
	extension/package.json extension/tsconfig.json

$(EXT_MODULES): extension/yarn.lock extension/package.json | $(STAMP)
	cd extension && CI=true $(JLPM) install --immutable
	touch $(EXT_MODULES)

$(EXT_BUILT): $(EXT_MODULES) $(EXT_SOURCES)
	cd extension && PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(JLPM) build:prod

# (`jupyter labextension develop` runs `jupyter-builder`, found on PATH.)
$(EXT_LINK): $(EXT_BUILT)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/jupyter labextension develop --overwrite .
	touch -h $(EXT_LINK)

extension: $(EXT_LINK)

# The front end's unit tests (vitest: API client, live feed, paging, schema forms, plots).
extension-test: $(EXT_MODULES)
	cd extension && $(JLPM) test

# The main job on the embedded default store (./.flovyn/flovyn.duckdb): a batch run that
# stops at its approval (exit 3), the approval from the CLI, the run that finishes it.
DEMO_DAY := demo-$(shell date +%Y%m%d-%H%M%S)
FLOVYN := $(VENV)/bin/flovyn-nb

demo: $(STAMP)
	@echo "== 1. run the notebook unattended: it stops at the approval (exit code 3)"
	$(FLOVYN) run notebooks/04_batch_etl.ipynb -p day $(DEMO_DAY) --no-progress; test $$? -eq 3
	@echo "== 2. answer the approval from the command line"
	$(FLOVYN) resolve daily-etl-$(DEMO_DAY) publish --value '{"approved": true, "by": "make demo"}'
	@echo "== 3. run it again: the suspended run resumes and completes (exit code 0)"
	$(FLOVYN) run notebooks/04_batch_etl.ipynb -p day $(DEMO_DAY) --no-progress
	@echo "== 4. the completed run's timeline"
	$(FLOVYN) show daily-etl-$(DEMO_DAY)

lint: $(STAMP)
	$(VENV)/bin/ruff check flovyn_nb tests bench notebooks
	$(VENV)/bin/ruff format --check flovyn_nb tests bench notebooks

types: $(STAMP)
	$(VENV)/bin/mypy

# Three workers, a test file each at a time: most tests wait on other processes (kernels,
# JupyterLab, Chromium, PostgreSQL), so three keep this 2-core machine busy, not starved.
unit: $(STAMP) browser-deps postgres-deps extension
	$(PY) -m pytest -q -n 3 --dist loadfile

# nbval runs every example notebook top to bottom and compares its outputs with the saved
# ones (real outputs of a run: `python notebooks/refresh.py` re-makes them).
notebooks-test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --nbval notebooks/ \
		--nbval-sanitize-with notebooks/sanitize.cfg

lab: install
	$(VENV)/bin/jupyter lab notebooks/

# tests/test_browser.py drives Debian's Chromium through Playwright: install the package
# when it is missing (never `playwright install`: no browser is ever downloaded).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# tests/pg_server.py starts a throwaway PostgreSQL server from Debian's package (initdb into
# a temp folder, as the postgres user when run as root): install it when it is missing.
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y postgresql)

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

# Full run (~20 min, half of it on PostgreSQL): both systems on DuckDB / SQLite, then both
# on one throwaway PostgreSQL server (issue 17); bench/out/results.json, docs/benchmarks.md
# and its plot.
bench: $(BENCH_STAMP) postgres-deps
	$(BENCH_PY) bench/run.py --docs

# Tiny sizes, both systems, on PostgreSQL too; fails only when a workload errors (part of
# `make test`).
bench-smoke: $(BENCH_STAMP) postgres-deps
	$(BENCH_PY) bench/run.py --smoke

test: lint types extension-test unit notebooks-test bench-smoke

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
	rm -rf extension/node_modules extension/lib extension/tsconfig.tsbuildinfo flovyn_nb/labextension
