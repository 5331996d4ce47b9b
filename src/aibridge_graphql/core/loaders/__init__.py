"""Per-request data loaders: each upstream request at most once per request, whatever the face.

`Loaders` (pages.py) is the page API the resolvers and services call; it is built of one part
per job:
- resources.py: what the request may spend upstream (credentials, deadline, call budget,
  concurrency slots, its view of the response cache) and the tasks spending it;
- dataloaders.py: one DataLoader per upstream resource, keyed by the normalized request;
- index.py: the entities the request has loaded, for the by-id lookups, with their fallback
  list queries;
- writes.py: Coder's budget writes (`Loaders.budget_writes`), sent once, never cached.
request.py builds a request's loaders from its headers, the same way for every face.
"""

from aibridge_graphql.core.loaders.limits import LIST_LIMIT_MAX, THREADS_LIMIT_MAX
from aibridge_graphql.core.loaders.pages import Loaders, default_pricer
from aibridge_graphql.core.loaders.request import loaders_for_request
from aibridge_graphql.core.loaders.resources import RequestCancelled

__all__ = [
    "LIST_LIMIT_MAX",
    "THREADS_LIMIT_MAX",
    "Loaders",
    "RequestCancelled",
    "default_pricer",
    "loaders_for_request",
]
