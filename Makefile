# Every target installs what it needs into .venv first; only Python 3.11+, make and the
# package registries are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install web-assets test lint typecheck pytest schema demo bench bench-standin clean

install: $(STAMP)

# GraphiQL's browser files come from npm (web/package-lock.json) so the gateway serves GraphiQL
# offline; installed once per lock file change. Without npm, GraphiQL loads them from the CDN.
WEB_STAMP := web/node_modules/.installed

web-assets:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm not found: GraphiQL will load its assets from the CDN"; \
	elif [ ! -f $(WEB_STAMP) ] || [ web/package-lock.json -nt $(WEB_STAMP) ]; then \
		npm ci --prefix web --no-audit --no-fund --loglevel=error && touch $(WEB_STAMP); \
	fi

$(STAMP): pyproject.toml | web-assets
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
