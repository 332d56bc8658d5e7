"""The authorization server the MCP SDK's OAuth handlers call (`OAuthAuthorizationServerProvider`).

The SDK's handlers parse `/authorize`, `/token` and `/register` and make the checks the specs fix (a registered client
and an exactly matching redirect URI, PKCE S256 at the token endpoint, the code's client and redirect URI, expiry);
this provider decides the rest: where clients come from (a metadata document or a DynamoDB registration), that the
`resource` is this server (RFC 8707), that an authorization goes through our consent page first, and that codes and
refresh tokens are redeemed once (conditional deletes), whichever container is asked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from gpt_image_mcp.oauth.client_metadata import ClientMetadataError, ClientMetadataResolver, is_metadata_url
from gpt_image_mcp.oauth.redirects import redirect_uris_problem
from gpt_image_mcp.oauth.store import CLIENT, CODE, PENDING, REFRESH, OAuthStore, digest
from gpt_image_mcp.oauth.tokens import REFRESH_TOKEN_SECONDS, AccessTokens, new_refresh_token

REGISTRATION_SECONDS = 90 * 86_400  # a registered client that is not re-registered is forgotten after this
PENDING_SECONDS = 600  # from /authorize to Cognito's callback: consent and sign-in
CODE_SECONDS = 60  # an authorization code of ours is redeemed at once by the client
CONSENT_PATH = "/consent"
CALLBACK_PATH = "/oauth/callback"


class FacadeProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    def __init__(
        self,
        store: OAuthStore,
        documents: ClientMetadataResolver,
        tokens: AccessTokens,
        *,
        resource_url: str,
        scopes: list[str],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.documents = documents
        self.tokens = tokens
        self.issuer = tokens.issuer
        self.resource_url = resource_url
        self.scopes = scopes
        self._clock = clock

    async def client_or_problem(self, client_id: str) -> tuple[OAuthClientInformationFull | None, str]:
        """The client, or None and why (a metadata document that cannot be used says precisely why)."""
        if is_metadata_url(client_id):
            try:
                return await anyio.to_thread.run_sync(self.documents.resolve, client_id), ""
            except ClientMetadataError as error:
                return None, error.message
        data = await anyio.to_thread.run_sync(self.store.get, CLIENT, client_id)
        if data is None:
            return None, f"Client ID {client_id!r} is not registered here (or its registration expired)."
        return OAuthClientInformationFull.model_validate(data), ""

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return (await self.client_or_problem(client_id))[0]

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        problem = redirect_uris_problem(str(uri) for uri in client_info.redirect_uris or [])
        if problem:
            raise RegistrationError("invalid_redirect_uri", problem)
        data = client_info.model_dump(mode="json", exclude_none=True)
        await anyio.to_thread.run_sync(self.store.put, CLIENT, client_info.client_id, data, REGISTRATION_SECONDS)

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Record the request and send the person to our consent page (`oauth.consent`)."""
        if params.resource != self.resource_url:
            given = "no resource" if params.resource is None else f"resource {params.resource!r}"
            raise AuthorizeError(
                "invalid_target", f"This server issues tokens for resource {self.resource_url!r} only; got {given}."
            )
        request_id = secrets.token_urlsafe(24)
        pending = {
            "client_id": client.client_id,
            "client_name": client.client_name or "",
            "redirect_uri": str(params.redirect_uri),
            "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
            "code_challenge": params.code_challenge,
            "state": params.state,
            "scopes": params.scopes or self.scopes,
            "resource": params.resource,
        }
        await anyio.to_thread.run_sync(
            lambda: self.store.put(PENDING, request_id, pending, PENDING_SECONDS, status="pending")
        )
        return f"{self.issuer}{CONSENT_PATH}?request={request_id}"

    def issue_code(self, pending: dict[str, Any], subject: str) -> str:
        """Blocking: an authorization code of ours for an approved, signed-in request, bound to its client, PKCE
        challenge, redirect URI and resource."""
        code = secrets.token_urlsafe(32)
        issued = {
            **{key: pending[key] for key in ("client_id", "redirect_uri", "code_challenge", "scopes", "resource")},
            "redirect_uri_provided_explicitly": pending["redirect_uri_provided_explicitly"],
            "subject": subject,
            "expires_at": self._clock() + CODE_SECONDS,
        }
        self.store.put(CODE, digest(code), issued, CODE_SECONDS)
        return code

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        data = await anyio.to_thread.run_sync(self.store.get, CODE, digest(authorization_code))
        if data is None or data["client_id"] != client.client_id:
            return None
        return AuthorizationCode(code=authorization_code, **data)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        if await anyio.to_thread.run_sync(self.store.take, CODE, digest(authorization_code.code)) is None:
            raise TokenError("invalid_grant", "authorization code was already used or has expired")
        return await self._issue(client.client_id, authorization_code.subject, authorization_code.scopes)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        data = await anyio.to_thread.run_sync(self.store.get, REFRESH, digest(refresh_token))
        if data is None or data["client_id"] != client.client_id:
            return None
        return RefreshToken(token=refresh_token, **data)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if await anyio.to_thread.run_sync(self.store.take, REFRESH, digest(refresh_token.token)) is None:
            raise TokenError("invalid_grant", "refresh token was already used or has expired")
        return await self._issue(client.client_id, refresh_token.subject, scopes)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.tokens.verify(token, self.resource_url) if self.tokens.is_ours(token) else None

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, RefreshToken):
            await anyio.to_thread.run_sync(self.store.take, REFRESH, digest(token.token))

    async def _issue(self, client_id: str, subject: str | None, scopes: list[str]) -> OAuthToken:
        """A new access token and a new refresh token (each refresh rotates it)."""
        if not subject:
            raise TokenError("invalid_grant", "the grant names no user")
        access = self.tokens.mint(subject=subject, client_id=client_id, scopes=scopes, resource=self.resource_url)
        refresh = new_refresh_token()
        record = {
            "client_id": client_id,
            "scopes": scopes,
            "subject": subject,
            "resource": self.resource_url,
            "expires_at": int(self._clock() + REFRESH_TOKEN_SECONDS),
        }
        await anyio.to_thread.run_sync(self.store.put, REFRESH, digest(refresh), record, REFRESH_TOKEN_SECONDS)
        return OAuthToken(
            access_token=access,
            expires_in=self.tokens.lifetime_seconds,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )
