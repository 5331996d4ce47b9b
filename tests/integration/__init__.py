"""The real stand-in and gateway on loopback, end to end."""
