"""The GraphQL engine: the call estimate, the record projection and the plan executor, reading
each field's needs declared beside its resolver (docs/engine.md)."""
