"""The gRPC face (`aibridge.v1`, proto/): services over the same per-call loaders as GraphQL.

Imports only the protocol-neutral pieces (loaders, refs, domain errors, upstream, settings),
never `schema/` (the GraphQL face) nor Strawberry or aiohttp (a test reads the imports).
"""
