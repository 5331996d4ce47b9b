"""Coder-shaped API tokens: generating, splitting, and reading the stand-in users' tokens."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import string
from dataclasses import dataclass

# Coder's API key format: a 10-character id, a dash, a 22-character secret.
TOKEN_PATTERN = re.compile(r"([A-Za-z0-9]{10})-([A-Za-z0-9]{22})")
_ALPHABET = string.ascii_letters + string.digits


def generate_token() -> str:
    """A token shaped like Coder's: a 10-character id, a dash, a 22-character secret."""
    key_id = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(22))
    return f"{key_id}-{secret}"


def derived_token(label: str) -> str:
    """A fixed Coder-shaped token for `label`: the same token in every seeded database."""
    digest = hashlib.sha256(f"aibridge-graphql standin/{label}".encode()).digest()
    chars = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest)
    return f"{chars[:10]}-{chars[10:32]}"


def split_token(token: str) -> tuple[str, str]:
    """The (id, secret) of a Coder-shaped token; ValueError when it is not one."""
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None:
        raise ValueError("a token is a 10-character id, a dash and a 22-character secret")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class UserToken:
    """A stand-in user and the token to paste for them."""

    username: str
    role: str
    token: str

    @property
    def headers_json(self) -> str:
        """The JSON for GraphiQL's headers pane."""
        return json.dumps({"Coder-Session-Token": self.token})


def _role_sql(conn: sqlite3.Connection) -> str:
    """users.role, or a site role of the AI Gateway era (user_site_roles) where one is set."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'user_site_roles'"
    ).fetchone()
    if found is None:
        return "u.role"
    return "COALESCE((SELECT min(r.role) FROM user_site_roles AS r WHERE r.user_id = u.id), u.role)"


def read_tokens(conn: sqlite3.Connection) -> list[UserToken]:
    """Every user with a token, owner first, then auditors, then others, by username."""
    role = _role_sql(conn)
    rows = conn.execute(
        f"""
        SELECT u.username, {role} AS role, k.id || '-' || k.secret
        FROM users AS u JOIN api_keys AS k ON k.user_id = u.id
        ORDER BY CASE u.role WHEN 'owner' THEN 0 WHEN 'auditor' THEN 1 ELSE 2 END, u.username, k.id
        """  # noqa: S608 (the role expression is one of two constants)
    ).fetchall()
    seen: set[str] = set()
    tokens = []
    for username, role, token in rows:
        if username not in seen:
            seen.add(username)
            tokens.append(UserToken(str(username), str(role), str(token)))
    return tokens
