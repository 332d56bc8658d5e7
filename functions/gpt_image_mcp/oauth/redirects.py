"""Which redirect URIs a client may register (DCR) or declare (CIMD): https, or http on a loopback address only
(RFC 8252 section 7.3, for desktop apps), never with a fragment (RFC 6749 section 3.1.2). Authorization requests
must then name one of them exactly (the SDK's handler compares them)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` may not be a redirect URI, or None when it may."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        return f"redirect URI {uri!r} is not a URL"
    if parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} has a fragment; fragments are not allowed"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and is_loopback(host):
        return None
    return f"redirect URI {uri!r} must use https, or http on a loopback address (127.0.0.1, [::1], localhost)"


def redirect_uris_problem(uris: Iterable[str]) -> str | None:
    listed = list(uris)
    if not listed:
        return "redirect_uris must list at least one URI"
    return next((problem for problem in map(redirect_uri_problem, listed) if problem), None)
