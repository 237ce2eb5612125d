# The README's two commands are `make demo` and `make test`; both set up everything they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo serve test typecheck services bench clean htmx screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU build, so no resolver ever pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autograder demo
	$(PY) -m autograder.demo.service

# The service with the demo course, kept running: log in at http://127.0.0.1:8000/ (Ctrl-C stops).
serve: $(STAMP)
	$(PY) -m autograder.demo.service --keep

test: $(STAMP)
	$(PY) -m pytest -q

typecheck: $(STAMP)
	$(PY) -m mypy

services:
	bash scripts/services.sh

# PNGs of the staff pages at 1280 px and phone width in docs/screenshots/ (Debian's chromium).
screenshots: $(STAMP)
	$(PY) scripts/screenshots.py --out docs/screenshots

# The pages' htmx and the API docs' Swagger UI come from the npm registry (package.json pins the
# majors) and are committed under autograder/service/static/, so a pip-installed package serves
# them with no npm and no CDN.
htmx:
	npm ci --no-audit --no-fund
	npm run -s vendor

bench: $(STAMP)
	$(PY) benchmarks/grade_throughput.py

clean:
	rm -rf $(VENV) graded
