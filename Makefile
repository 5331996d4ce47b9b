# Every target installs what it needs into .venv first; only Python 3.11+, make and the
# package registries are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck pytest schema demo bench bench-standin clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when no test was collected: that is not a failure of the suite.
pytest: $(STAMP)
	$(BIN)/pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

test: lint typecheck pytest

schema: $(STAMP)
	$(BIN)/aibridge-graphql export-schema --output schema.graphql

demo: $(STAMP)
	$(BIN)/aibridge-graphql demo

bench: $(STAMP)
	$(BIN)/python -m bench.gateway

bench-standin: $(STAMP)
	$(BIN)/python -m bench.standin

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
