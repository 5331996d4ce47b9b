"""The gateway integration suite runs every test in both API eras (support/eras.py)."""

from support.eras import api_era_in_both

__all__ = ["api_era_in_both"]
