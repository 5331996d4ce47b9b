"""Tests of aibridge_graphql.upstream (the REST client, requests, models)."""
