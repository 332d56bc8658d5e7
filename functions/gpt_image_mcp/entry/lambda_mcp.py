"""The MCP function: API Gateway HTTP API (payload 2.0) -> Mangum -> the SDK's Streamable HTTP app, stateless + JSON.

Composition root of the remote mode (the counterpart of `local_sandbox.local_server`): S3 images, DynamoDB history,
bearer auth (API keys + Cognito), the OpenAI key from Secrets Manager (or `OPENAI_API_KEY` when emulating locally),
and image calls run as jobs on the SQS worker, watched for up to API Gateway's 30 s. The module imports only the
logger; the rest is built on the first invocation and reused while the container is warm. One `McpFunction` is one
container: `handler` keeps one per process, and `local_sandbox.standins.remote_shape` makes its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gpt_image_mcp.aws.limits import API_BUDGET_SECONDS, MAX_RESPONSE_BYTES
from gpt_image_mcp.entry.endpoint import MCP_PATH, host_problem
from gpt_image_mcp.entry.observability import ImageMetrics, ImageResultHook, make_logger, route_library_logs

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from gpt_image_mcp.aws.config import McpSettings
    from gpt_image_mcp.core.handoff import CallPolicy
    from gpt_image_mcp.core.jobs import JobService
    from gpt_image_mcp.entry.asgi import OncePerLoop
    from gpt_image_mcp.oauth.provider import FacadeProvider

logger = make_logger()

SERVER_NAME = "gpt-image-mcp"  # fixed: it is the audience of MRTR requestState across containers
ANSWER_MARGIN_SECONDS = 4.0  # kept back from the budget to read the finished job and answer
# The largest image resources/read sends as bytes: base64 (4/3) and the JSON envelope must fit Lambda's response.
RESOURCE_MAX_BYTES = (MAX_RESPONSE_BYTES - 64 * 1024) * 3 // 4
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Invocation:
    """The invocation in progress (Lambda runs one at a time per container) and the time it has left."""

    def __init__(self, budget_seconds: float = float(API_BUDGET_SECONDS)) -> None:
        self.budget_seconds = budget_seconds
        self._context: Any = None
        self._started: float | None = None

    def begin(self, context: Any) -> None:
        self._context, self._started = context, time.monotonic()

    def end(self) -> None:
        self._context, self._started = None, None

    def seconds_left(self) -> float | None:
        """The lesser of API Gateway's budget and the Lambda's remaining time; None outside an invocation."""
        if self._started is None:
            return None
        left = self.budget_seconds - (time.monotonic() - self._started)
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            left = min(left, float(remaining()) / 1000.0)
        return left


def allowed_origins(settings: McpSettings) -> list[str]:
    """`https://<host>` for each allowed host (and `http://` on loopback), plus `MCP_ALLOWED_ORIGINS`."""
    hosts = settings.allowed_hosts
    origins = [f"https://{host}" for host in hosts]
    origins += [f"http://{host}" for host in hosts if host.split(":")[0] in ("127.0.0.1", "localhost", "[::1]")]
    return origins + settings.allowed_origins


def call_policy(jobs: JobService, invocation: Invocation) -> CallPolicy:
    """Every image call is a job the SQS worker runs while this request watches it for the time API Gateway allows,
    then hands over the job id; the work is never cut off and never runs in the request."""
    from gpt_image_mcp.core.handoff import BudgetedCalls

    def budget() -> float:
        left = invocation.seconds_left()
        return max(1.0, (invocation.budget_seconds if left is None else left) - ANSWER_MARGIN_SECONDS)

    limit = f"the {invocation.budget_seconds:.0f} s a remote MCP request may run"
    return BudgetedCalls(jobs, None, budget=budget, limit=limit, poll_seconds=0.5)


def oauth_facade(settings: McpSettings, dynamodb: Any, clock: Callable[[], float]) -> FacadeProvider:
    """The OAuth authorization server in front of Cognito (`gpt_image_mcp.oauth`), its issuer this server's origin."""
    from urllib.parse import urlsplit

    from gpt_image_mcp.aws.clients import client
    from gpt_image_mcp.aws.secrets import get_secret
    from gpt_image_mcp.oauth.client_metadata import ClientMetadataResolver, FetchPolicy
    from gpt_image_mcp.oauth.provider import FacadeProvider
    from gpt_image_mcp.oauth.store import OAuthStore
    from gpt_image_mcp.oauth.tokens import AccessTokens
    from gpt_image_mcp.oauth.upstream import CognitoUsers

    resource = urlsplit(settings.resource_url)
    key = settings.oauth_signing_key or get_secret(settings.oauth_signing_secret_arn, field="OAUTH_SIGNING_KEY")
    scopes = [settings.required_scope] if settings.required_scope else []
    policy = FetchPolicy(allow_loopback=settings.oauth_cimd_allow_loopback, ca_file=settings.oauth_cimd_ca_file)
    return FacadeProvider(
        OAuthStore(dynamodb, settings.oauth_table, clock),
        ClientMetadataResolver(" ".join(scopes), policy, clock=clock),
        AccessTokens(key, f"{resource.scheme}://{resource.netloc}", clock=clock),
        CognitoUsers.of_issuer(client("cognito-idp"), settings.cognito_issuer),
        resource_url=settings.resource_url,
        scopes=scopes,
        clock=clock,
    )


def add_facade_routes(server: MCPServer, provider: FacadeProvider, settings: McpSettings) -> None:
    """`/authorize`, `/token`, `/register`, the consent page, Cognito's callback and the metadata, beside `/mcp`."""
    from gpt_image_mcp.aws.secrets import get_secret
    from gpt_image_mcp.oauth.consent import ConsentFlow
    from gpt_image_mcp.oauth.routes import facade_routes
    from gpt_image_mcp.oauth.upstream import CognitoLogin

    secret_id = settings.oauth_upstream_secret_id
    login = CognitoLogin(
        domain=settings.cognito_domain,
        issuer=settings.cognito_issuer,
        client_id=settings.oauth_upstream_client_id or get_secret(secret_id, field="client_id"),
        client_secret=settings.oauth_upstream_client_secret or get_secret(secret_id, field="client_secret"),
    )
    for route in facade_routes(provider, ConsentFlow(provider, login), settings.oauth_registrations_per_hour):
        server.custom_route(route.path, route.methods)(route.endpoint)


def build_remote_server(
    settings: McpSettings, invocation: Invocation, metrics: ImageMetrics, clock: Callable[[], float] = time.time
) -> MCPServer:
    """The MCP server of the remote mode, with every collaborator built from `settings` (its endpoint resolved:
    `entry.endpoint.resolve_endpoint`); `clock` times the OAuth façade's codes and tokens."""
    from mcp.server.auth.middleware.auth_context import get_access_token
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.request_state import RequestStateSecurity

    from gpt_image_mcp.aws.api_keys import ApiKeyStore
    from gpt_image_mcp.aws.auth import BearerTokenVerifier, safety_identifier, user_from_subject
    from gpt_image_mcp.aws.secrets import get_secret
    from gpt_image_mcp.core.errors import UserFacingError
    from gpt_image_mcp.entry.compose import AwsServices, image_service, job_service
    from gpt_image_mcp.server.app import REMOTE_TOOLS, build_server
    from gpt_image_mcp.server.context import ToolContext
    from gpt_image_mcp.server.remote_tools import REMOTE_WORDING
    from gpt_image_mcp.server.resources import KeyResources
    from gpt_image_mcp.server.tasks import TasksExtension

    state_key = settings.request_state_key or get_secret(
        settings.request_state_secret_arn, field="MCP_REQUEST_STATE_KEY"
    )
    services = AwsServices.default()
    service, store = image_service(settings, services)
    # Starts jobs (DynamoDB row + SQS message); the worker runs them.
    jobs = job_service(service, settings, services, queue_url=settings.queue_url)
    api_keys = ApiKeyStore(services.dynamodb, settings.api_keys_table)
    facade = oauth_facade(settings, services.dynamodb, clock) if settings.oauth_table else None

    def current_user() -> str:
        token = get_access_token()
        if token is None or not token.subject:
            raise UserFacingError("This request carries no verified user; send an Authorization: Bearer token.")
        return user_from_subject(token.subject)

    context = ToolContext(
        service=service,
        jobs=jobs,
        current_user=current_user,
        calls=call_policy(jobs, invocation),
        safety_identifier=safety_identifier,
        uploads=store,
        resources=KeyResources(store, current_user, max_bytes=RESOURCE_MAX_BYTES),
    )
    server = build_server(
        context,
        REMOTE_TOOLS,
        name=SERVER_NAME,
        wording=REMOTE_WORDING,
        token_verifier=BearerTokenVerifier.from_settings(settings, api_keys, facade.access_tokens if facade else None),
        auth=AuthSettings(
            # The protected resource metadata names this as the authorization server.
            issuer_url=(facade.issuer if facade else settings.cognito_issuer or settings.resource_url),  # type: ignore[arg-type]
            resource_server_url=settings.resource_url,  # type: ignore[arg-type]
            required_scopes=[settings.required_scope] if settings.required_scope else None,
            validate_token_resource=True,
        ),
        subscriptions=False,
        request_state_security=RequestStateSecurity(keys=[state_key]),
        middleware=[ImageResultHook(metrics, logger)],
        extensions=[TasksExtension(context, poll_interval_ms=2000)],
    )
    if facade is not None:
        add_facade_routes(server, facade, settings)
    return server


class McpFunction:
    """One Lambda container's MCP function: built on the first invocation, warm afterwards."""

    def __init__(self, env: Mapping[str, str] | None = None, *, clock: Callable[[], float] = time.time) -> None:
        """`clock` (epoch seconds) times the OAuth façade's codes and tokens; tests pass a fake one."""
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.clock = clock
        self.invocation = Invocation()
        self.metrics: ImageMetrics | None = None
        self.server: MCPServer | None = None
        self.asgi: OncePerLoop | None = None
        self.allowed_hosts: list[str] = []
        self._adapter: LambdaHandler | None = None

    def _build(self, request_context: Mapping[str, Any]) -> LambdaHandler:
        from mangum import Mangum
        from mcp.server.transport_security import TransportSecuritySettings

        from gpt_image_mcp.aws.config import McpSettings
        from gpt_image_mcp.entry.asgi import HttpGuard, OncePerLoop

        route_library_logs(logger)
        from gpt_image_mcp.entry.endpoint import resolve_endpoint

        # The one place this function reads its environment; the first request's context completes the endpoint.
        settings = resolve_endpoint(McpSettings.from_env(self.env), request_context)
        limit = settings.max_request_bytes
        self.invocation.budget_seconds = float(settings.request_budget_seconds)
        self.metrics = ImageMetrics(settings.metrics_namespace)
        server = build_remote_server(settings, self.invocation, self.metrics, self.clock)
        self.allowed_hosts = settings.allowed_hosts
        security = TransportSecuritySettings(
            allowed_hosts=settings.allowed_hosts, allowed_origins=allowed_origins(settings)
        )

        def app() -> tuple[Any, Any]:
            starlette = server.streamable_http_app(
                streamable_http_path=MCP_PATH,
                stateless_http=True,
                json_response=True,
                transport_security=security,
                max_request_body_size=limit,
            )
            return starlette, server.session_manager

        self.server, self.asgi = server, OncePerLoop(app)
        adapter: LambdaHandler = Mangum(HttpGuard(self.asgi, mcp_path=MCP_PATH, max_body_bytes=limit), lifespan="off")
        return adapter

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = event.get("requestContext") or {}
        headers = event.get("headers") or {}
        logger.set_correlation_id(request.get("requestId"))
        started = time.perf_counter()
        cold = self._adapter is None
        status: Any = None
        self.invocation.begin(context)
        try:
            if self._adapter is None:
                self._adapter = self._build(request)
            problem = host_problem(headers, self.allowed_hosts)  # before Mangum, which fails on odd hosts
            if problem is not None:
                status = problem[0]
                return _error_response(status, problem[1])
            response = self._adapter(event, context)
            status = response.get("statusCode")
            return response
        except Exception:
            logger.exception("invocation failed")
            status = 500
            return _error_response(500, "Internal server error; the request id is in the server's logs.", -32603)
        finally:
            self.invocation.end()
            if self.metrics is not None:
                self.metrics.flush()
            logger.info(
                "request",
                extra={
                    "method": (request.get("http") or {}).get("method"),
                    "path": event.get("rawPath"),
                    "mcp_method": headers.get("mcp-method"),
                    "mcp_name": headers.get("mcp-name"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "cold_start": cold,
                },
            )


def _error_response(status: int, message: str, code: int = -32600) -> dict[str, Any]:
    """A Lambda proxy response with a JSON-RPC error body, for what is answered before the app runs."""
    from gpt_image_mcp.entry.asgi import jsonrpc_error

    body = jsonrpc_error(message, code).decode()
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": body}


_function: McpFunction | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler (`gpt_image_mcp.entry.lambda_mcp.handler` in template.yaml)."""
    global _function
    if _function is None:
        _function = McpFunction()
    return _function(event, context)
