"""Tests of aibridge_graphql.schema (the GraphQL face)."""
