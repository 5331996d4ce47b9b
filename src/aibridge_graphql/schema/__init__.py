"""The Strawberry schema (Relay connections, Apollo Federation 2)."""
