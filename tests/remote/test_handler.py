"""The Lambda handler driven directly with API Gateway HTTP API v2 events (no HTTP in between)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from remote_support import LEGACY, MODERN, Events, body_of

from gpt_image_mcp.entry import lambda_mcp
from gpt_image_mcp.entry.lambda_mcp import McpFunction
from local_sandbox.standins.api_gateway import LambdaContainer, http_api_event
from local_sandbox.standins.remote_shape import RemoteShape


def test_events_have_the_api_gateway_v2_shape(events: Events) -> None:
    for event in (
        events.modern("tools/list"),
        events.legacy(
            "initialize", {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
        ),
        events.http(method="GET"),
        http_api_event("POST", "/mcp?a=1&a=2", [("Host", "h"), ("Cookie", "a=1; b=2")], b"\x89PNG binary"),
    ):
        parsed = APIGatewayProxyEventV2Model.model_validate(event)
        assert parsed.version == "2.0"
        assert parsed.requestContext.http.method in ("POST", "GET")
    binary = http_api_event("POST", "/mcp?a=1&a=2", [("Host", "h"), ("Cookie", "a=1; b=2")], b"\x89PNG binary")
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\x89PNG binary"
    assert binary["cookies"] == ["a=1", "b=2"] and "cookie" not in binary["headers"]
    assert binary["queryStringParameters"] == {"a": "1,2"}
    padded = http_api_event("POST", "/mcp", [("Host", " h "), ("Mcp-Name", "\t generate_image  ")], b"{}")
    assert (padded["headers"]["host"], padded["headers"]["mcp-name"]) == ("h", "generate_image")


def test_both_eras_across_warm_invocations(container: LambdaContainer, function: McpFunction, events: Events) -> None:
    before = container.invocations
    discover = body_of(container.invoke(events.modern("server/discover")))
    assert discover["result"]["resultType"] == "complete"
    for _ in range(3):
        listed = container.invoke(events.modern("tools/list"))
        assert listed["statusCode"] == 200 and "mcp-session-id" not in listed["headers"]
        names = [tool["name"] for tool in body_of(listed)["result"]["tools"]]
        assert "generate_image" in names and "create_upload_url" in names
        called = body_of(container.invoke(events.modern_call("list_history", {"limit": 1})))
        assert called["result"]["resultType"] == "complete"
        assert "structuredContent" in called["result"]

    init = container.invoke(
        events.legacy(
            "initialize", {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
        )
    )
    assert body_of(init)["result"]["protocolVersion"] == LEGACY
    assert container.invoke(events.legacy("notifications/initialized", request_id=None))["statusCode"] == 202
    for _ in range(3):
        tools = body_of(container.invoke(events.legacy("tools/list", {})))
        assert "resultType" not in tools["result"] and len(tools["result"]["tools"]) >= 8
        called = body_of(container.invoke(events.legacy("tools/call", {"name": "list_history", "arguments": {}})))
        assert called["result"]["isError"] is False
    assert container.invocations - before == 15
    assert function.asgi is not None and function.asgi.builds == 1  # one session manager for every warm call


def test_base64_encoded_bodies_are_accepted(container: LambdaContainer, events: Events) -> None:
    event = events.modern("tools/list")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert container.invoke(event)["statusCode"] == 200


def test_get_on_mcp_is_405(container: LambdaContainer, events: Events) -> None:
    response = container.invoke(events.http(method="GET", headers={"mcp-protocol-version": MODERN}))
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "POST, DELETE"


def test_unknown_host_is_421(container: LambdaContainer, events: Events) -> None:
    response = container.invoke(events.modern("tools/list", headers={"host": "evil.example.net"}))
    assert response["statusCode"] == 421


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        ("host:abc", 400),
        ("[::1]:8080", 421),
        ("[::1]", 421),
        ("[::1]:abc", 400),
        ("", 400),
        ("two words", 400),
        ("a:1:2", 400),
        ("127.0.0.1:99999", 400),
        ("évil.example", 400),
        ("127.0.0.1:8080", 421),
    ],
)
@pytest.mark.parametrize("path", ["/mcp", "/.well-known/oauth-protected-resource/mcp"])
def test_malformed_or_foreign_host_is_400_or_421_never_500(
    container: LambdaContainer, events: Events, sent: str, status: int, path: str
) -> None:
    """Mangum splits Host on ":" and fails with a 500 on these: they are answered before it runs."""
    event = events.modern("tools/list", headers={"host": sent}, path=path)
    event["headers"].update(host=sent, **{"x-forwarded-port": "443"})  # as sent; API Gateway sets the port
    response = container.invoke(event)
    assert response["statusCode"] == status
    message = json.loads(response["body"])["error"]["message"]
    if status == 400:
        assert message.startswith(("Malformed Host header", "Missing Host header"))
    else:
        assert message == f"Misdirected request: this server does not answer for Host {sent!r}; use the MCP URL's host."


def test_missing_host_or_odd_forwarded_port_is_400(container: LambdaContainer, events: Events, host: str) -> None:
    event = events.modern("tools/list")
    del event["headers"]["host"]
    response = container.invoke(event)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["message"] == (
        "Missing Host header: send the host of the MCP URL, e.g. Host: mcp.example.com."
    )
    portless = events.modern("tools/list", headers={"host": host.split(":")[0], "x-forwarded-port": "abc"})
    assert container.invoke(portless)["statusCode"] == 400


def test_the_apis_own_host_is_learnt_from_the_request(shape: RemoteShape, events: Events) -> None:
    """As deployed: no MCP_RESOURCE_URL nor allowed hosts naming the API; API Gateway's apiId names it."""
    env = {k: v for k, v in shape.env.items() if k not in ("MCP_RESOURCE_URL", "MCP_ALLOWED_HOSTS")}
    own_host = "abc123def4.execute-api.us-east-1.amazonaws.com"
    deployed = LambdaContainer(McpFunction({**env, "MCP_EXECUTE_API_DOMAIN": "execute-api.us-east-1.amazonaws.com"}))

    def invoke(event: dict[str, Any], host: str) -> dict[str, Any]:
        event["headers"]["host"] = host
        event["requestContext"].update(apiId="abc123def4", domainName=host)
        return deployed.invoke(event)

    try:
        metadata = invoke(events.http(method="GET", path="/.well-known/oauth-protected-resource/mcp"), own_host)
        assert body_of(metadata)["resource"] == f"https://{own_host}/mcp"
        assert invoke(events.modern("tools/list"), own_host)["statusCode"] == 200
        assert invoke(events.modern("tools/list"), "other.execute-api.us-east-1.amazonaws.com")["statusCode"] == 421
        assert invoke(events.modern("tools/list"), events.host)["statusCode"] == 421
    finally:
        deployed.close()


def test_foreign_origin_is_403(container: LambdaContainer, events: Events, host: str) -> None:
    response = container.invoke(events.modern("tools/list", headers={"origin": "https://evil.example.net"}))
    assert response["statusCode"] == 403
    assert container.invoke(events.modern("tools/list", headers={"origin": f"http://{host}"}))["statusCode"] == 200


@pytest.mark.parametrize("token", [None, "garbage", "gim_000000000000_" + "A" * 43, "eyJhbGciOiJSUzI1NiJ9.e30.sig"])
def test_missing_or_bad_token_is_401_with_resource_metadata(
    container: LambdaContainer, events: Events, host: str, token: str | None
) -> None:
    response = container.invoke(events.modern("tools/list", token=token))
    assert response["statusCode"] == 401
    challenge = response["headers"]["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="http://{host}/.well-known/oauth-protected-resource/mcp"' in challenge


def test_protected_resource_metadata(container: LambdaContainer, events: Events, shape: RemoteShape) -> None:
    response = container.invoke(events.http(method="GET", path="/.well-known/oauth-protected-resource/mcp", token=None))
    assert response["statusCode"] == 200
    metadata = body_of(response)
    assert metadata["resource"] == shape.mcp_url
    # the OAuth façade of this server (its origin) is the authorization server, not Cognito itself
    assert metadata["authorization_servers"] == [shape.mcp_url.removesuffix("/mcp")]
    assert metadata["scopes_supported"] == ["gpt-image-mcp/images"]
    assert metadata["bearer_methods_supported"] == ["header"]


def test_token_without_the_required_scope_is_403(
    container: LambdaContainer, events: Events, shape: RemoteShape
) -> None:
    token = shape.create_key("scopeless-user", scopes=["profile"])
    response = container.invoke(events.modern("tools/list", token=token))
    assert response["statusCode"] == 403
    assert 'error="insufficient_scope"' in response["headers"]["www-authenticate"]


def test_body_over_the_limit_is_413_with_a_jsonrpc_error(shape: RemoteShape, events: Events) -> None:
    small = LambdaContainer(McpFunction({**shape.env, "MCP_MAX_REQUEST_BYTES": "65536"}))
    try:
        ok = small.invoke(events.modern_call("generate_image", {"prompt": "x" * 30_000, "quality": "low"}))
        assert ok["statusCode"] == 200
        big = events.modern_call("edit_image", {"prompt": "x", "reference_image_base64": "A" * 70_000})
        response = small.invoke(big)
        assert response["statusCode"] == 413
        error = body_of(response)
        assert error["jsonrpc"] == "2.0" and error["id"] is None
        assert error["error"]["code"] == -32600 and "create_upload_url" in error["error"]["message"]
        declared = events.http(raw=b"{}", headers={"content-length": "9999999"})
        declared["headers"]["content-length"] = "9999999"
        assert small.invoke(declared)["statusCode"] == 413
    finally:
        small.close()


def test_module_handler_builds_once_from_the_environment(
    shape: RemoteShape, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in shape.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_mcp, "_function", None)
    runner = LambdaContainer(lambda_mcp.handler)  # the module's handler, on a container thread
    try:
        statuses = [runner.invoke(events.modern("tools/list"))["statusCode"] for _ in range(3)]
    finally:
        runner.close()
    assert statuses == [200, 200, 200]
    function = lambda_mcp._function
    assert isinstance(function, McpFunction) and function.asgi is not None and function.asgi.builds == 1


def test_misconfiguration_is_a_500_jsonrpc_error_and_is_retried(events: Events) -> None:
    broken = LambdaContainer(McpFunction({"IMAGES_BUCKET": "b"}))
    try:
        response = broken.invoke(events.modern("tools/list"))
        assert response["statusCode"] == 500
        assert json.loads(response["body"])["error"]["code"] == -32603
        assert broken.invoke(events.modern("tools/list"))["statusCode"] == 500
    finally:
        broken.close()


def test_image_metrics_are_flushed_per_invocation(
    shape: RemoteShape, events: Events, capsys: pytest.CaptureFixture[str]
) -> None:
    metered = LambdaContainer(McpFunction({**shape.env, "POWERTOOLS_METRICS_NAMESPACE": "GptImageMcpTest"}))
    try:
        capsys.readouterr()
        response = metered.invoke(events.modern_call("generate_image", {"prompt": "metered", "quality": "low"}))
        assert body_of(response)["result"]["isError"] is False
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
        assert len(records) == 1
        record = records[0]
        assert record["model"] == "gpt-image-2" and record["ImagesGenerated"] == [1.0]
        assert record["EstimatedCostUSD"][0] > 0
        directive = record["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "GptImageMcpTest" and ["model", "service"] in [
            sorted(d) for d in directive["Dimensions"]
        ]
        metered.invoke(events.modern("tools/list"))
        assert '"_aws"' not in capsys.readouterr().out  # nothing recorded, nothing flushed
    finally:
        metered.close()
