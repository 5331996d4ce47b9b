"""The GraphQL gateway: aiohttp app, per-request context and loaders, error mapping."""
