"""The façade's HTTP routes, as Starlette endpoints the MCP function serves beside `/mcp`.

* `/.well-known/oauth-authorization-server` and the OpenID fallback `/.well-known/openid-configuration`: RFC 8414
  metadata naming our endpoints, S256, CIMD support and the `none` client authentication of public clients;
* `/authorize`: the SDK's handler, after a metadata-document client is resolved here so that a bad document is
  refused with the precise reason;
* `/consent`, `/oauth/callback`: `oauth.consent`;
* `/token`: the SDK's handler (PKCE, redirect URI, code and refresh grants), after a `resource` other than this
  server's is refused (RFC 8707); when Cognito cannot be asked about the user at a refresh, 503 and the refresh
  token is kept;
* `/register`: the SDK's RFC 7591 handler, behind a per-source rate limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import OAuthMetadata
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gpt_image_mcp.oauth.client_metadata import is_metadata_url
from gpt_image_mcp.oauth.consent import ConsentFlow
from gpt_image_mcp.oauth.provider import CALLBACK_PATH, CONSENT_PATH, FacadeProvider
from gpt_image_mcp.oauth.store import RATE
from gpt_image_mcp.oauth.upstream import UpstreamError

Endpoint = Callable[[Request], Awaitable[Response]]
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
REGISTRATION_WINDOW_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    methods: list[str]
    endpoint: Endpoint


def metadata(provider: FacadeProvider) -> OAuthMetadata:
    issuer = provider.issuer
    return OAuthMetadata.model_validate(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "registration_endpoint": f"{issuer}/register",
            "scopes_supported": provider.scopes or None,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }
    )


def _oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def facade_routes(provider: FacadeProvider, consent: ConsentFlow, registrations_per_hour: int) -> list[Route]:
    document = metadata(provider).model_dump(mode="json", exclude_none=True)
    authorize_handler = AuthorizationHandler(provider)
    token_handler = TokenHandler(provider, ClientAuthenticator(provider))
    options = ClientRegistrationOptions(enabled=True, valid_scopes=provider.scopes, default_scopes=provider.scopes)
    register_handler = RegistrationHandler(provider, options)

    async def serve_metadata(request: Request) -> Response:
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})

    async def authorize(request: Request) -> Response:
        params = request.query_params if request.method == "GET" else await request.form()
        client_id = params.get("client_id")
        if isinstance(client_id, str) and is_metadata_url(client_id):
            client, problem = await provider.client_or_problem(client_id)
            if client is None:  # never redirect to a client we could not identify (RFC 6749 section 4.1.2.1)
                return _oauth_error(400, "invalid_client", problem)
        return await authorize_handler.handle(request)

    async def token(request: Request) -> Response:
        resource = (await request.form()).get("resource")  # Starlette keeps the parsed form for the SDK's handler
        if resource is not None and resource != provider.resource_url:
            return _oauth_error(
                400, "invalid_target", f"This server issues tokens for resource {provider.resource_url!r} only."
            )
        try:
            answer: Response = await token_handler.handle(request)  # the SDK's handler is not annotated
        except UpstreamError as failure:
            return _oauth_error(
                503, "temporarily_unavailable", f"{failure.message} The refresh token still holds; try again later."
            )
        return answer

    async def register(request: Request) -> Response:
        source = request.client.host if request.client else "unknown"
        hits = await anyio.to_thread.run_sync(provider.store.count, RATE, source, REGISTRATION_WINDOW_SECONDS)
        if hits > registrations_per_hour:
            return _oauth_error(
                429,
                "temporarily_unavailable",
                f"Too many client registrations from {source}: at most {registrations_per_hour} an hour. Reuse your "
                "registration, or try again later.",
                {"Retry-After": str(REGISTRATION_WINDOW_SECONDS)},
            )
        return await register_handler.handle(request)

    return [
        *(Route(path, ["GET"], serve_metadata) for path in METADATA_PATHS),
        Route("/authorize", ["GET", "POST"], authorize),
        Route(CONSENT_PATH, ["GET"], consent.show),
        Route(CONSENT_PATH, ["POST"], consent.answer),
        Route(CALLBACK_PATH, ["GET"], consent.callback),
        Route("/token", ["POST"], token),
        Route("/register", ["POST"], register),
    ]
