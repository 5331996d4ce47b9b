"""Container health probe with the standard library only (slim images have no curl).

Usage: python healthcheck.py [URL] [--any-status]
Exits 0 when URL answers 2xx (or, with --any-status, any HTTP status below 500), else 1.
URL defaults to $AIBRIDGE_HEALTHCHECK_URL, else the gateway's liveness route on $AIBRIDGE_PORT.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 2.0


def default_url() -> str:
    """The gateway's `/healthz` on the port the container serves."""
    port = os.environ.get("AIBRIDGE_PORT", "8080")
    return os.environ.get("AIBRIDGE_HEALTHCHECK_URL", f"http://127.0.0.1:{port}/healthz")


def probe(url: str, *, any_status: bool) -> bool:
    """Whether `url` answers as healthy."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    # No proxies: an egress proxy from the environment must not intercept a loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError):
        return False
    return status < 500 if any_status else 200 <= status < 300


def main(argv: list[str]) -> int:
    """Parse the arguments, probe, and return the exit status."""
    any_status = "--any-status" in argv
    urls = [arg for arg in argv if arg != "--any-status"]
    if len(urls) > 1:
        print("usage: healthcheck.py [URL] [--any-status]", file=sys.stderr)
        return 2
    url = urls[0] if urls else default_url()
    try:
        healthy = probe(url, any_status=any_status)
    except ValueError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 2
    if not healthy:
        print(f"healthcheck: {url} is not healthy", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
