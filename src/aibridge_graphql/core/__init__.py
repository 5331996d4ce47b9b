"""The protocol-neutral core: per-request loaders, entity refs, domain errors, the upstream-call
budget, observability primitives, pricing and usage aggregation. It imports only `upstream/`."""
