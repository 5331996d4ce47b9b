"""Shared pytest configuration; its presence puts tests/ on sys.path so `support` is importable."""
