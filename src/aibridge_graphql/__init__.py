"""aibridge-graphql: a GraphQL gateway over Coder's AI Bridge REST API."""

__version__ = "0.1.0"
