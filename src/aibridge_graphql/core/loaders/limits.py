"""The upstream's page limits and the bounds on the loaders' own walks."""

from __future__ import annotations

# The upstream's hard limits (docs/upstream.md): list endpoints take at most 1000, threads 200.
LIST_LIMIT_MAX = 1000
THREADS_LIMIT_MAX = 200
# Bounds on the fallback walks, so a lookup can never loop without end.
MAX_LOOKUP_PAGES = 50
