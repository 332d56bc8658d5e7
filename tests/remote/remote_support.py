"""Helpers shared by the remote-shape tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from calls import refused, succeeds, text  # noqa: F401 - re-exported for the tests of this folder
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from local_sandbox.standins.api_gateway import http_api_event
from local_sandbox.standins.remote_shape import RemoteShape

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "remote-tests", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
MODES = ["auto", "legacy"]


class Events:
    """API Gateway HTTP API v2 events for this shape's host, in both protocol eras."""

    def __init__(self, host: str, token: str) -> None:
        self.host = host
        self.token = token

    def http(
        self,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = "/mcp",
        token: str | None = "default",
        raw: bytes | None = None,
    ) -> dict[str, Any]:
        sent = {"host": self.host, "content-type": "application/json", "accept": "application/json, text/event-stream"}
        bearer = self.token if token == "default" else token
        if bearer is not None:
            sent["authorization"] = f"Bearer {bearer}"
        sent.update(headers or {})
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return http_api_event(method, path, list(sent.items()), data)

    def modern(self, method: str, params: dict[str, Any] | None = None, *, name: str | None = None, **kw: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": MODERN_META}}
        headers = {"mcp-protocol-version": MODERN, "mcp-method": method, **({"mcp-name": name} if name else {})}
        headers.update(kw.pop("headers", {}))
        return self.http(body, headers=headers, **kw)

    def modern_call(self, tool: str, arguments: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return self.modern("tools/call", {"name": tool, "arguments": arguments}, name=tool, **kw)  # type: ignore[no-any-return]

    def legacy(self, method: str, params: dict[str, Any] | None = None, *, request_id: int | None = 1) -> Any:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        if request_id is not None:
            body["id"] = request_id
        return self.http(body, headers={"mcp-protocol-version": LEGACY})


def body_of(response: dict[str, Any]) -> Any:
    assert not response.get("isBase64Encoded"), response
    return json.loads(response["body"])


def http_client(token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)


@contextlib.asynccontextmanager
async def mcp_client(shape: RemoteShape, token: str, mode: str) -> AsyncIterator[Client]:
    """The SDK client through the HTTP front, with a bearer token (the HTTP client is closed afterwards)."""
    async with (
        http_client(token) as http,
        Client(streamable_http_client(shape.mcp_url, http_client=http), mode=mode) as client,
    ):
        yield client


def png_bytes(width: int = 256, height: int = 256) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def s3_object(location: str) -> bytes:
    """The bytes stored at `s3://bucket/key` (read with boto3, not through the server)."""
    from gpt_image_mcp.aws import clients

    bucket, _, key = location.removeprefix("s3://").partition("/")
    body = clients.s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    data: bytes = body.read()
    return data
