"""The authorization server the MCP SDK's OAuth handlers call (`OAuthAuthorizationServerProvider`).

The SDK's handlers parse `/authorize`, `/token` and `/register` and make the checks the specs fix (a registered client
and an exactly matching redirect URI, PKCE S256 at the token endpoint, the code's client and redirect URI, expiry);
this provider decides the rest: where clients come from (a metadata document or a DynamoDB registration), that the
`resource` is this server (RFC 8707), that an authorization goes through our consent page first, and that codes and
refresh tokens are redeemed once (conditional writes), whichever container is asked.

Each redeemed code opens a grant (`oauth.grants`) that its tokens name. A code or refresh token presented again
after it was redeemed revokes the grant (RFC 6749 section 4.1.2, OAuth 2.1 refresh token rotation): an attacker and
the client cannot both keep using what one of them stole. Every refresh also asks Cognito whether the user is still
present and enabled, and revokes the grant when not.
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
from gpt_image_mcp.oauth.grants import GrantedAccessTokens, Grants
from gpt_image_mcp.oauth.redirects import redirect_uris_problem
from gpt_image_mcp.oauth.store import CLIENT, CODE, PENDING, REFRESH, OAuthStore, digest
from gpt_image_mcp.oauth.tokens import REFRESH_TOKEN_SECONDS, AccessTokens, new_refresh_token
from gpt_image_mcp.oauth.upstream import CognitoUsers, SignedIn

REGISTRATION_SECONDS = 90 * 86_400  # a registered client that is not re-registered is forgotten after this
PENDING_SECONDS = 600  # from /authorize to Cognito's callback: consent and sign-in
CODE_SECONDS = 60  # an authorization code of ours is redeemed at once by the client
REDEEMED_CODE_SECONDS = 86_400  # a redeemed code is remembered this long, so that presenting it again revokes its grant
ISSUED, REDEEMED = "issued", "redeemed"  # an authorization code's states
ACTIVE, ROTATED = "active", "rotated"  # a refresh token's states
CODE_REUSED = "authorization code was already used; every token issued from it is now revoked. Sign in again."
REFRESH_REUSED = "refresh token was already used; every token of this sign-in is now revoked. Sign in again."
GRANT_REVOKED = (
    "this sign-in was revoked (a code or refresh token of it was used twice, or the user was disabled or deleted). "
    "Sign in again."
)
CONSENT_PATH = "/consent"
CALLBACK_PATH = "/oauth/callback"


class FacadeCode(AuthorizationCode):
    grant: str  # the grant its redemption opens
    username: str  # the Cognito user who signed in
    spent: bool = False  # redeemed before: presenting it revoked the grant


class FacadeRefreshToken(RefreshToken):
    grant: str
    spent: bool = False  # rotated before: presenting it revoked the grant


class FacadeProvider(OAuthAuthorizationServerProvider[FacadeCode, FacadeRefreshToken, AccessToken]):
    def __init__(
        self,
        store: OAuthStore,
        documents: ClientMetadataResolver,
        tokens: AccessTokens,
        users: CognitoUsers,
        *,
        resource_url: str,
        scopes: list[str],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.documents = documents
        self.tokens = tokens
        self.users = users
        self.grants = Grants(store, clock)
        self.access_tokens = GrantedAccessTokens(tokens, self.grants)
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

    def issue_code(self, pending: dict[str, Any], person: SignedIn) -> str:
        """Blocking: an authorization code of ours for an approved, signed-in request, bound to its client, PKCE
        challenge, redirect URI and resource, and naming the grant its redemption will open."""
        code = secrets.token_urlsafe(32)
        issued = {
            **{key: pending[key] for key in ("client_id", "redirect_uri", "code_challenge", "scopes", "resource")},
            "redirect_uri_provided_explicitly": pending["redirect_uri_provided_explicitly"],
            "subject": person.subject,
            "username": person.username,
            "grant": secrets.token_urlsafe(16),
            "expires_at": self._clock() + CODE_SECONDS,
        }
        self.store.put(CODE, digest(code), issued, CODE_SECONDS, status=ISSUED)
        return code

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> FacadeCode | None:
        """The code; one redeemed before revokes its grant here, whatever the rest of the request holds."""
        found = await anyio.to_thread.run_sync(self.store.read, CODE, digest(authorization_code))
        if found is None or found[1]["client_id"] != client.client_id:
            return None
        code = FacadeCode(code=authorization_code, spent=found[0] == REDEEMED, **found[1])
        if code.spent:
            await anyio.to_thread.run_sync(self.grants.revoke, code.grant)
        return code

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: FacadeCode
    ) -> OAuthToken:
        code = authorization_code
        if code.spent:
            raise TokenError("invalid_grant", CODE_REUSED)
        redeemed = await anyio.to_thread.run_sync(
            lambda: self.store.claim(CODE, digest(code.code), ISSUED, REDEEMED, keep_seconds=REDEEMED_CODE_SECONDS)
        )
        if redeemed is None:  # redeemed meanwhile by another request
            await anyio.to_thread.run_sync(self.grants.revoke, code.grant)
            raise TokenError("invalid_grant", CODE_REUSED)
        record = {"client_id": client.client_id, "subject": code.subject, "username": code.username}
        if not await anyio.to_thread.run_sync(self.grants.open, code.grant, record):
            raise TokenError("invalid_grant", CODE_REUSED)  # revoked by a second redemption before it opened
        return await self._issue(client.client_id, code.subject, code.scopes, code.grant)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> FacadeRefreshToken | None:
        """The refresh token; one rotated before revokes its grant here."""
        found = await anyio.to_thread.run_sync(self.store.read, REFRESH, digest(refresh_token))
        if found is None or found[1]["client_id"] != client.client_id:
            return None
        token = FacadeRefreshToken(token=refresh_token, spent=found[0] == ROTATED, **found[1])
        if token.spent:
            await anyio.to_thread.run_sync(self.grants.revoke, token.grant)
        return token

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: FacadeRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        """Rotate the refresh token if its grant stands and Cognito still knows the user as enabled. The user is
        asked before the token is spent, so that a Cognito outage costs the client nothing."""
        if refresh_token.spent:
            raise TokenError("invalid_grant", REFRESH_REUSED)
        grant = await anyio.to_thread.run_sync(self.grants.renew, refresh_token.grant)
        if grant is None:
            raise TokenError("invalid_grant", GRANT_REVOKED)
        refusal = await anyio.to_thread.run_sync(self.users.refusal, grant["username"])
        if refusal:
            await anyio.to_thread.run_sync(self.grants.revoke, refresh_token.grant)
            raise TokenError("invalid_grant", refusal)
        key = digest(refresh_token.token)
        if await anyio.to_thread.run_sync(self.store.claim, REFRESH, key, ACTIVE, ROTATED) is None:
            await anyio.to_thread.run_sync(self.grants.revoke, refresh_token.grant)  # rotated meanwhile
            raise TokenError("invalid_grant", REFRESH_REUSED)
        return await self._issue(client.client_id, refresh_token.subject, scopes, refresh_token.grant)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return await self.access_tokens.verify(token, self.resource_url) if self.tokens.is_ours(token) else None

    async def revoke_token(self, token: AccessToken | FacadeRefreshToken) -> None:
        """RFC 7009: revoking either kind of token revokes its whole grant."""
        grant = token.grant if isinstance(token, FacadeRefreshToken) else (token.claims or {}).get("grant")
        if isinstance(grant, str):
            await anyio.to_thread.run_sync(self.grants.revoke, grant)

    async def _issue(self, client_id: str, subject: str | None, scopes: list[str], grant: str) -> OAuthToken:
        """A new access token and a new refresh token of `grant` (each refresh rotates it)."""
        if not subject:
            raise TokenError("invalid_grant", "the grant names no user")
        access = self.tokens.mint(
            subject=subject, client_id=client_id, scopes=scopes, resource=self.resource_url, grant=grant
        )
        refresh = new_refresh_token()
        record = {
            "client_id": client_id,
            "scopes": scopes,
            "subject": subject,
            "resource": self.resource_url,
            "grant": grant,
            "expires_at": int(self._clock() + REFRESH_TOKEN_SECONDS),
        }
        await anyio.to_thread.run_sync(
            lambda: self.store.put(REFRESH, digest(refresh), record, REFRESH_TOKEN_SECONDS, status=ACTIVE)
        )
        return OAuthToken(
            access_token=access,
            expires_in=self.tokens.lifetime_seconds,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )
