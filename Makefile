# Every target installs what it needs into .venv first; only Python 3.11+, make and the
# package registries are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install lock web-assets test lint typecheck pytest schema proto demo bench bench-standin \
	soak clean federation-tools supergraph peer-tools bench-peer bench-live

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

# The Python dependencies come from uv.lock (docs/development.md): uv, pinned here and in
# docker/Dockerfile, is bootstrapped from PyPI into the venv. A lock out of step with
# pyproject.toml (a dependency edited without `make lock`) fails the install, and so CI.
UV_VERSION := 0.13.10
UV_STAMP   := $(VENV)/.uv-$(UV_VERSION)
UV         := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(BIN)/uv

$(UV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	touch $@

# Exactly the locked versions, the dev and otel extras (the suite needs both), the project editable.
$(STAMP): pyproject.toml uv.lock $(UV_STAMP) | web-assets
	@$(UV) lock --check --offline --quiet >/dev/null 2>&1 || { \
		echo "uv.lock does not match pyproject.toml: run 'make lock' (docs/development.md)" >&2; \
		exit 1; }
	$(UV) sync --quiet --frozen --all-extras
	touch $@

# Re-resolve every dependency to the newest release pyproject.toml allows; then run `make test`.
lock: $(UV_STAMP)
	$(UV) lock --upgrade

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: that fails `make test` too.
pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

schema: $(STAMP)
	$(BIN)/aibridge-graphql export-schema --output schema.graphql

# The gRPC stubs under src/aibridge_graphql/grpc/gen (committed; tests/grpc_face checks drift).
proto: $(STAMP)
	$(BIN)/python -m aibridge_graphql.grpc.codegen

# `make demo GATEWAY_PORT=9080 STANDIN_PORT=9081 GRPC_PORT=9091` picks the ports; by default
# 8080/8081/9090, or free ports (printed) when those are busy. `API_ERA=sessions` serves the
# earlier AI Bridge API (default ai-gateway). The stand-in's traffic is live (a tick every 5 s,
# `LIVE_INTERVAL=2`); `LIVE=0` keeps the seeded snapshot still.
demo: $(STAMP)
	$(BIN)/aibridge-graphql demo $(if $(GATEWAY_PORT),--gateway-port $(GATEWAY_PORT)) \
		$(if $(STANDIN_PORT),--standin-port $(STANDIN_PORT)) \
		$(if $(GRPC_PORT),--grpc-port $(GRPC_PORT)) $(if $(API_ERA),--api-era $(API_ERA)) \
		$(if $(filter 0,$(LIVE)),--no-live,--live $(if $(LIVE_INTERVAL),--live-interval $(LIVE_INTERVAL)))

bench: $(STAMP)
	$(BIN)/python -m bench.gateway

bench-standin: $(STAMP)
	$(BIN)/python -m bench.standin

# 1,000 open subscriptions of one view: upstream calls per poll, RSS, idle CPU, event latency.
bench-live: $(STAMP)
	$(BIN)/python -m bench.live

# Minutes of the README's views at saturation: gateway RSS, p50/p99, open fds, event-loop stalls.
SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

# Our gateway next to GraphQL Mesh + Hive Gateway (issue 10), from bench/peer's lock file.
# BENCH_PEER_ARGS="--seconds 10" etc. (python -m bench.peer --help lists them).
PEER_DIR   := bench/peer
PEER_STAMP := $(PEER_DIR)/node_modules/.installed
BENCH_PEER_ARGS ?=

peer-tools:
	@if [ ! -f $(PEER_STAMP) ] || [ $(PEER_DIR)/package-lock.json -nt $(PEER_STAMP) ]; then \
		npm ci --prefix $(PEER_DIR) --no-audit --no-fund --loglevel=error && touch $(PEER_STAMP); \
	fi

bench-peer: $(STAMP) peer-tools
	$(BIN)/python -m bench.peer $(BENCH_PEER_ARGS)

# Apollo Federation 2: compose running subgraphs (NAME=URL pairs, each answering `_service { sdl }`)
# into $(SUPERGRAPH) with @apollo/composition, from tests/federation's lock file (the tools the
# federation tests use).
FEDERATION_DIR   := tests/federation
FEDERATION_STAMP := $(FEDERATION_DIR)/node_modules/.installed
SUBGRAPHS  ?= aibridge=http://127.0.0.1:8080/graphql
SUPERGRAPH ?= supergraph.graphql

federation-tools:
	@if [ ! -f $(FEDERATION_STAMP) ] || [ $(FEDERATION_DIR)/package-lock.json -nt $(FEDERATION_STAMP) ]; then \
		npm ci --prefix $(FEDERATION_DIR) --no-audit --no-fund --loglevel=error && touch $(FEDERATION_STAMP); \
	fi

supergraph: federation-tools
	node $(FEDERATION_DIR)/compose.mjs -o $(SUPERGRAPH) $(SUBGRAPHS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
