"""The server: hosts both faces (the aiohttp app with GraphQL, the gRPC server) in one process,
with one observability stack; the commands `serve` and `demo`."""
