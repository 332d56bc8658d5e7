"""Bearer token verification for the MCP SDK: Cognito access tokens (JWT) and this server's API keys.

`BearerTokenVerifier` implements `mcp.server.auth.provider.TokenVerifier`. Pass it as `token_verifier=` with
`AuthSettings(resource_server_url=<MCP_RESOURCE_URL>, required_scopes=[...], validate_token_resource=True)`; the SDK
then answers 401/403 with `WWW-Authenticate` and checks the required scopes. A token that verifies gets
`resource = resource_url` (Cognito has no audience for access tokens: binding to this server is by app client id).

- `gim_...` tokens are API keys, looked up in DynamoDB (`ApiKeyStore`) in a worker thread.
- HS256 `at+jwt` tokens are the OAuth façade's (`gpt_image_mcp.oauth.tokens`), for this resource URL only, while
  their grant stands (`gpt_image_mcp.oauth.grants`: read in a worker thread at most every 5 s, as an API key is).
- Anything else must be a Cognito access token: RS256, signed by a key from `{issuer}/.well-known/jwks.json` (the key
  set is cached per container), `iss` = issuer, not expired, `token_use` = "access", `client_id` one of ours.

The token's subject is the user; `user_from_subject` turns it into the storage id (S3 prefix, DynamoDB partition).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from gpt_image_mcp.aws.api_keys import API_KEY_PREFIX, ApiKeyStore
from gpt_image_mcp.aws.config import McpSettings
from gpt_image_mcp.aws.identity import safety_identifier, user_from_subject

if TYPE_CHECKING:
    from gpt_image_mcp.oauth.grants import GrantedAccessTokens

__all__ = ["API_KEY_PREFIX", "BearerTokenVerifier", "jwks_client", "safety_identifier", "user_from_subject"]

logger = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 8192
JWKS_CACHE_SECONDS = 3600  # Cognito rotates keys rarely; an unknown `kid` refetches at once anyway
JWKS_TIMEOUT_SECONDS = 5
_REQUIRED_CLAIMS = ["exp", "iss", "sub", "token_use", "client_id"]

_jwks_lock = threading.Lock()
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


def jwks_client(url: str) -> jwt.PyJWKClient:
    """One key-set client per JWKS URL per container, so the key set is fetched once and reused."""
    with _jwks_lock:
        existing = _jwks_clients.get(url)
        if existing is None:
            existing = jwt.PyJWKClient(url, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS)
            _jwks_clients[url] = existing
        return existing


def verified_claims(
    token: str, issuer: str, *, require: list[str], audience: str | None = None, leeway: float = 0.0
) -> dict[str, Any]:
    """The claims of an RS256 token signed with a key of `issuer`'s key set (Cognito's), checked for `issuer`,
    expiry, `require`d claims and (when given) `audience`. Blocking; raises `jwt.PyJWTError`."""
    key = jwks_client(f"{issuer}/.well-known/jwks.json").get_signing_key_from_jwt(token).key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        options={"require": require, "verify_aud": audience is not None},
    )
    return claims


def access_token_from(token: str, claims: Mapping[str, Any], resource: str, **extra: Any) -> AccessToken:
    """The SDK's view of a verified JWT: its client, scopes, expiry and subject, for `resource`."""
    scope = claims.get("scope")
    return AccessToken(
        token=token,
        client_id=str(claims["client_id"]),
        scopes=scope.split() if isinstance(scope, str) else [],
        expires_at=int(claims["exp"]),
        resource=resource,
        subject=claims["sub"],
        claims={"iss": claims["iss"], **extra},
    )


class BearerTokenVerifier:
    """Accepts this server's API keys and the access tokens of the configured Cognito app clients."""

    def __init__(
        self,
        *,
        resource_url: str,
        api_keys: ApiKeyStore | None = None,
        cognito_issuer: str = "",
        cognito_client_ids: Iterable[str] = (),
        api_key_scope_map: Mapping[str, str] | None = None,
        leeway_seconds: float = 0.0,
        facade_tokens: GrantedAccessTokens | None = None,
    ) -> None:
        """`api_key_scope_map` renames stored API key scopes, e.g. {"images": "<resource server>/images"};
        `facade_tokens` verifies the tokens of the OAuth façade (`gpt_image_mcp.oauth`) when it runs."""
        self.resource_url = resource_url
        self._api_keys = api_keys
        self._facade = facade_tokens
        self._issuer = cognito_issuer.rstrip("/")
        self._client_ids = frozenset(cognito_client_ids)
        self._scope_map = dict(api_key_scope_map or {})
        self._leeway = leeway_seconds

    @classmethod
    def from_settings(
        cls, settings: McpSettings, api_keys: ApiKeyStore | None, facade_tokens: GrantedAccessTokens | None = None
    ) -> BearerTokenVerifier:
        """From the MCP function's settings; an API key's `images` scope counts as COGNITO_REQUIRED_SCOPE when set."""
        scope_map = {"images": settings.required_scope} if settings.required_scope else None
        return cls(
            resource_url=settings.resource_url,
            api_keys=api_keys,
            cognito_issuer=settings.cognito_issuer,
            cognito_client_ids=settings.cognito_client_ids,
            api_key_scope_map=scope_map,
            facade_tokens=facade_tokens,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's access info, or None when it is not valid here (the SDK then answers 401)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        if token.startswith(API_KEY_PREFIX):
            return await self._verify_api_key(token)
        if self._facade is not None and self._facade.is_ours(token):
            return await self._facade.verify(token, self.resource_url)
        if not self._issuer or not self._client_ids:
            return None
        return await anyio.to_thread.run_sync(self._verify_jwt, token)

    async def _verify_api_key(self, token: str) -> AccessToken | None:
        if self._api_keys is None:
            return None
        record = await anyio.to_thread.run_sync(self._api_keys.lookup, token)
        if record is None:
            return None
        return AccessToken(
            token=token,
            client_id=f"api-key:{record.key_id}",
            scopes=[self._scope_map.get(scope, scope) for scope in record.scopes],
            expires_at=record.expires_at,
            resource=self.resource_url,
            subject=record.user_id,
        )

    def _verify_jwt(self, token: str) -> AccessToken | None:
        """Blocking (may fetch the key set): run in a worker thread."""
        try:
            if jwt.get_unverified_header(token).get("alg") != "RS256":
                return None
            # Cheap checks first, so a token meant for someone else never costs a key-set fetch.
            if not self._claims_fit(jwt.decode(token, options={"verify_signature": False})):
                return None
            claims = verified_claims(token, self._issuer, require=_REQUIRED_CLAIMS, leeway=self._leeway)
        except jwt.PyJWKClientConnectionError as error:
            logger.warning("Could not fetch the Cognito key set: %s", type(error).__name__)
            return None
        except jwt.PyJWTError:
            return None
        if not self._claims_fit(claims) or not isinstance(claims.get("sub"), str) or not claims["sub"]:
            return None
        return access_token_from(token, claims, self.resource_url, username=claims.get("username"))

    def _claims_fit(self, claims: Mapping[str, Any]) -> bool:
        return (
            claims.get("iss") == self._issuer
            and claims.get("token_use") == "access"
            and claims.get("client_id") in self._client_ids
        )


if TYPE_CHECKING:  # mypy proves that the class satisfies the SDK's protocol

    def _is_token_verifier(verifier: BearerTokenVerifier) -> TokenVerifier:
        return verifier
