"""The schema as frontends see it: Relay compile, schema lint and diff, live operations."""
