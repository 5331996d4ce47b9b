"""Tests of aibridge_graphql.core.pricing."""
