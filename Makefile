# `make demo` and `make test` create the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := test,pandas,arrow,s3,polars,dask,cli,server

.PHONY: demo test lint bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lakota.demo

# SIGABRT past the bound makes faulthandler print every thread's stack before pytest dies.
TEST_TIMEOUT ?= 2700

test: $(STAMP) browser
	$(BIN)/ruff check lakota tests bench
	timeout --signal=ABRT --kill-after=60 $(TEST_TIMEOUT) $(BIN)/python -m pytest -q

# The browser tests (tests/test_web_browser.py) drive Debian's chromium: install it when
# it is missing and we may (root with apt-get, as in CI); otherwise they skip (fail if CI=true).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -q chromium chromium-driver; \
	  else \
	    echo "chromium and chromium-driver missing: the browser tests will not run"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check lakota tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build .pytest_cache
