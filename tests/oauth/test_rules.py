"""The façade's pure rules: which redirect URIs a client may use, and how long a client metadata document is kept."""

from __future__ import annotations

import pytest

from gpt_image_mcp.oauth.client_metadata import DEFAULT_CACHE_SECONDS, MAX_CACHE_SECONDS, cache_seconds
from gpt_image_mcp.oauth.redirects import redirect_uri_problem, redirect_uris_problem


@pytest.mark.parametrize(
    "uri",
    ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:33418/callback", "http://[::1]:9/cb",
     "http://localhost:6274/oauth/callback", "https://vscode.dev/redirect"],
)  # fmt: skip
def test_allowed_redirect_uris(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://evil.example/cb", "must use https, or http on a loopback address"),
        ("http://10.0.0.1/cb", "must use https, or http on a loopback address"),
        ("https://app.example/cb#frag", "has a fragment; fragments are not allowed"),
        ("myapp://callback", "must use https, or http on a loopback address"),
        ("https:///no-host", "must use https, or http on a loopback address"),
    ],
)
def test_refused_redirect_uris_say_why(uri: str, why: str) -> None:
    problem = redirect_uri_problem(uri)
    assert problem is not None and problem.startswith(f"redirect URI {uri!r}") and why in problem


def test_a_client_needs_a_redirect_uri() -> None:
    assert redirect_uris_problem([]) == "redirect_uris must list at least one URI"
    assert redirect_uris_problem(["https://ok.example/cb", "http://bad.example/cb"]) is not None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"cache-control": "public, max-age=600"}, 600.0),
        ({"cache-control": "max-age=0"}, 0.0),
        ({"cache-control": "no-store"}, 0.0),
        ({"cache-control": "no-cache, max-age=600"}, 0.0),
        ({"cache-control": "max-age=99999999"}, MAX_CACHE_SECONDS),
        ({"expires": "Wed, 02 Dec 2026 05:00:00 GMT", "date": "Wed, 02 Dec 2026 04:50:00 GMT"}, 600.0),
        ({"expires": "Wed, 02 Dec 2026 04:00:00 GMT", "date": "Wed, 02 Dec 2026 04:50:00 GMT"}, 0.0),
        ({"expires": "0"}, 0.0),
        ({}, DEFAULT_CACHE_SECONDS),
    ],
)
def test_documents_are_kept_as_their_cache_headers_say(headers: dict[str, str], seconds: float) -> None:
    assert cache_seconds(headers) == seconds
