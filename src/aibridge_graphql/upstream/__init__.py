"""The AI Bridge REST client: REST models, the `q` builder, the pooled HTTP client."""
