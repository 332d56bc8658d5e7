"""Grants: one per sign-in, so that everything issued from it can be revoked at once.

Redeeming an authorization code opens a grant; its access tokens carry the grant's id (`grant` claim) and its
refresh tokens name it, through every rotation. Revoking the grant (a reused code or refresh token, a Cognito user
disabled or deleted) stops its refresh tokens at once and its access tokens within `REVOCATION_BOUND_SECONDS` (5 s,
the API keys' bound): a container trusts a grant it found active for that long before it reads the item again
(strongly consistent), so the bearer check costs at most one GetItem per grant per 5 s, as an API key does.

The grant item (`oauth.store`, kind `grant`) lives as long as its newest refresh token: each refresh extends it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.server.auth.provider import AccessToken

from gpt_image_mcp.aws.api_keys import REVOCATION_BOUND_SECONDS
from gpt_image_mcp.aws.fresh_cache import FreshCache
from gpt_image_mcp.oauth.store import GRANT, OAuthStore
from gpt_image_mcp.oauth.tokens import REFRESH_TOKEN_SECONDS, AccessTokens

ACTIVE = "active"
REVOKED = "revoked"


class Grants:
    def __init__(
        self, store: OAuthStore, clock: Callable[[], float], *, cache_seconds: float = REVOCATION_BOUND_SECONDS
    ) -> None:
        self.store = store
        self._active: FreshCache[bool] = FreshCache(cache_seconds, clock)

    def open(self, grant_id: str, record: dict[str, Any]) -> bool:
        """Blocking: start the grant; False when it was revoked before it started (a code redeemed twice at once)."""
        return self.store.put(GRANT, grant_id, record, REFRESH_TOKEN_SECONDS, status=ACTIVE)

    def renew(self, grant_id: str) -> dict[str, Any] | None:
        """Blocking: keep an active grant as long as the refresh token about to be issued; its record, or None when
        it was revoked (or expired)."""
        return self.store.claim(GRANT, grant_id, ACTIVE, ACTIVE, keep_seconds=REFRESH_TOKEN_SECONDS)

    def revoke(self, grant_id: str) -> None:
        """Blocking: revoke the grant, whether or not it has started."""
        self.store.mark(GRANT, grant_id, REVOKED, REFRESH_TOKEN_SECONDS)
        self._active.forget(grant_id)

    def is_active(self, grant_id: str) -> bool:
        """Blocking on a cache miss: the grant is active (an answer at most `cache_seconds` old)."""
        if self._active.get(grant_id):
            return True
        found = self.store.read(GRANT, grant_id)
        if found is None or found[0] != ACTIVE:
            return False
        self._active.put(grant_id, True)
        return True


class GrantedAccessTokens:
    """The façade's access tokens as the bearer check sees them: signed by us for this resource, unexpired, and of
    a grant that is still active."""

    def __init__(self, tokens: AccessTokens, grants: Grants) -> None:
        self.tokens = tokens
        self.grants = grants

    def is_ours(self, token: str) -> bool:
        return self.tokens.is_ours(token)

    async def verify(self, token: str, resource: str) -> AccessToken | None:
        access = self.tokens.verify(token, resource)
        grant = (access.claims or {}).get("grant") if access is not None else None
        if not isinstance(grant, str) or not await anyio.to_thread.run_sync(self.grants.is_active, grant):
            return None
        return access
