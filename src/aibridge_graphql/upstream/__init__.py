"""The AI Bridge REST client: models of every REST shape, the `q` builder, the pooled HTTP client."""
