"""The façade's access tokens: JWTs (RFC 9068 shape) signed HS256 with a key every MCP container shares.

`iss` is this server (the façade's issuer), `aud` the MCP resource URL the client asked for (RFC 8707), `grant` the
sign-in it comes from (`oauth.grants`: revoking that stops the token), `sub` the Cognito `sub` of the person who
signed in, so an OAuth user and an API key given that `sub` share one S3 prefix and one DynamoDB partition. One
party signs and verifies, so a shared secret (from Secrets Manager) suffices; PyJWT does the JOSE work (it is already
the SDK's dependency, and `aws.auth` verifies Cognito's tokens with it).

Refresh tokens are opaque random strings, stored hashed (`oauth.store`), rotated on every use; a rotated one
presented again revokes its grant.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken

from gpt_image_mcp.aws.auth import access_token_from

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 86_400
REFRESH_PREFIX = "gimr_"


def new_refresh_token() -> str:
    return f"{REFRESH_PREFIX}{secrets.token_urlsafe(32)}"


class AccessTokens:
    """Mint and verify the façade's access tokens."""

    def __init__(
        self,
        key: str,
        issuer: str,
        *,
        lifetime_seconds: int = ACCESS_TOKEN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 32:
            raise ValueError("the token signing key must be at least 32 characters")
        self._key = key
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock

    def mint(self, *, subject: str, client_id: str, scopes: list[str], resource: str, grant: str) -> str:
        now = int(self._clock())
        claims = {
            "iss": self.issuer,
            "aud": resource,
            "sub": subject,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + self.lifetime_seconds,
            "jti": secrets.token_urlsafe(12),
            "grant": grant,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})

    def is_ours(self, token: str) -> bool:
        """Shaped like one of ours (checked cheaply, before any verification)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return False
        return header.get("alg") == ALGORITHM and header.get("typ") == TOKEN_TYPE

    def verify(self, token: str, resource: str) -> AccessToken | None:
        """The token's access info (its grant in `claims["grant"]`) if we signed it for `resource` and it has not
        expired; else None. Whether its grant still stands is `oauth.grants`' question."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=resource,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id", "grant"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        if int(claims["exp"]) <= self._clock() or not isinstance(claims["sub"], str) or not claims["sub"]:
            return None
        return access_token_from(token, claims, resource, grant=claims["grant"])
