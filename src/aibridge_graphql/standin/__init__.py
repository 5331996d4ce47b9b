"""The stand-in: a faithful implementation of Coder's AI Bridge REST API over SQLite."""
