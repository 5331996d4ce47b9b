"""Tests of aibridge_graphql.server (HTTP app, observability, serving)."""
