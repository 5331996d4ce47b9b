"""Unit tests, one folder per part of src/aibridge_graphql/."""
