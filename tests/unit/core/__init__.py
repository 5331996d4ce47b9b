"""Tests of aibridge_graphql.core (loaders, cache, budget, metrics, usage)."""
