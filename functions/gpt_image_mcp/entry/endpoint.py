"""Where the MCP function is reached (its resource URL, the Host headers it answers) and the Host header guard.

The function must not name its HTTP API in its environment: the API's routes are the function's `Events`, so the API
depends on the function, and a reference back would be a cycle CloudFormation refuses (see template.yaml). So the
API's own host is learnt from the requests: API Gateway sets `requestContext.apiId` (a client cannot), and
`MCP_EXECUTE_API_DOMAIN` ("execute-api.<region>.<URL suffix>") gives the rest. A custom domain arrives through
`MCP_RESOURCE_URL` and `MCP_ALLOWED_HOSTS`. DNS-rebinding protection stays on: only these hosts are answered.

The Host guard runs on the Lambda event before Mangum, which splits the header on ":" and fails with a 500 on
`host:abc` or `[::1]:8080`: a malformed Host is answered 400 and a well-formed one that is not ours 421.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gpt_image_mcp.core.errors import ConfigurationError

if TYPE_CHECKING:
    from gpt_image_mcp.aws.config import McpSettings

MCP_PATH = "/mcp"
_API_ID = re.compile(r"[a-z0-9]{1,32}")
# A host name or IPv4 address, or a bracketed IPv6 literal, with an optional decimal port (RFC 9110 section 7.2).
_HOST = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::(?P<port>\d{1,5}))?"
)
MAX_PORT = 65535


def resolve_endpoint(aws: McpSettings, request_context: Mapping[str, Any]) -> McpSettings:
    """`aws` with its resource URL and allowed hosts complete: the API's own execute-api host (from the request
    context) first, then the configured ones, and the resource URL's host always among them."""
    api_id = request_context.get("apiId")
    own = ""
    if aws.execute_api_domain and isinstance(api_id, str) and _API_ID.fullmatch(api_id):
        own = f"{api_id}.{aws.execute_api_domain}"
    resource_url = aws.resource_url or (f"https://{own}{MCP_PATH}" if own else "")
    if not resource_url:
        raise ConfigurationError(
            "The MCP resource URL is unknown: set MCP_RESOURCE_URL (e.g. https://mcp.example.com/mcp), or "
            "MCP_EXECUTE_API_DOMAIN (execute-api.<region>.amazonaws.com) for requests from API Gateway."
        )
    hosts = list(dict.fromkeys(host for host in (own, *aws.allowed_hosts, urlsplit(resource_url).netloc) if host))
    unusable = [host for host in hosts if _HOST.fullmatch(host.removesuffix(":*")) is None or host.startswith("[")]
    if unusable:
        raise ConfigurationError(
            f"MCP_ALLOWED_HOSTS entries {', '.join(map(repr, unusable))} cannot be served: list host names or IPv4 "
            "addresses, each with an optional :port or :* (any port)."
        )
    return aws.model_copy(update={"resource_url": resource_url, "allowed_hosts": hosts})


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Exactly one of `allowed`, or `name:<port>` for an allowed `name:*` (the SDK's transport security rule)."""
    return host in allowed or any(
        pattern.endswith(":*") and host.startswith(pattern[:-1]) and host[len(pattern) - 1 :].isdigit()
        for pattern in allowed
    )


def host_problem(headers: Mapping[str, str], allowed: Sequence[str]) -> tuple[int, str] | None:
    """(400, why) for a missing or malformed Host, (421, why) for a host that is not ours, None when it is fine."""
    lowered = {name.lower(): value for name, value in headers.items()}
    host = lowered.get("host")
    if not host:
        return 400, "Missing Host header: send the host of the MCP URL, e.g. Host: mcp.example.com."
    match = _HOST.fullmatch(host)
    port = match["port"] if match else None
    forwarded_port = lowered.get("x-forwarded-port")
    if (
        match is None
        or (port is not None and int(port) > MAX_PORT)
        or (port is None and forwarded_port is not None and not forwarded_port.isdigit())
    ):
        return 400, (
            f"Malformed Host header {host[:100]!r}: send a host name or address with an optional port "
            "(e.g. mcp.example.com or 127.0.0.1:8000)."
        )
    if not host_allowed(host, allowed):
        return 421, f"Misdirected request: this server does not answer for Host {host!r}; use the MCP URL's host."
    return None
