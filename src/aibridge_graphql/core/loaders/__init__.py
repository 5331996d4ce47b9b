"""Per-request data loaders: each upstream request at most once per request, whatever the face."""

from aibridge_graphql.core.loaders.pages import (
    LIST_LIMIT_MAX,
    THREADS_LIMIT_MAX,
    Loaders,
    RequestCancelled,
    default_pricer,
    endpoint_of,
)

__all__ = [
    "LIST_LIMIT_MAX",
    "THREADS_LIMIT_MAX",
    "Loaders",
    "RequestCancelled",
    "default_pricer",
    "endpoint_of",
]
