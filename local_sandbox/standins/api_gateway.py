"""API Gateway's part on one machine: an HTTP front that turns each request into an HTTP API (payload 2.0) event,
invokes a Lambda handler in a warm-container stand-in, and writes the Lambda proxy response back.

`LambdaContainer` runs every invocation on one thread and one event loop, one at a time, as a warm Lambda container
does; `ApiGatewayFront` serves HTTP on loopback in front of it with API Gateway's limits (10 MB payload, 30 s
integration timeout answered 503, Lambda's 6 MB response answered 500).

Import direction: local_sandbox.standins.api_gateway -> local_sandbox.standins.lambda_context. It does not import the
handler: one is passed in.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import secrets
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from local_sandbox.standins.http_server import StandInHTTPServer
from local_sandbox.standins.lambda_context import ACCOUNT_ID, LambdaContext

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_ID = "local"
FUNCTION_NAME = "gpt-image-mcp-mcp"
FUNCTION_TIMEOUT_SECONDS = 29.0  # template.yaml, McpFunction.Timeout
API_TIMEOUT_SECONDS = 30.0  # API Gateway's integration timeout
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024  # synchronous invocation response limit
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te"})


def _is_text(content_type: str | None, body: bytes) -> bool:
    if not content_type or not content_type.lower().startswith(TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def http_api_event(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    stage: str = "$default",
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event for one HTTP request, as API Gateway builds it.

    Header names are lower-cased, values trimmed of the whitespace around them (RFC 9110 5.5: it is not part of the
    value) and repeated headers joined with commas; cookies move to `cookies`; a text body stays text, anything else
    is base64 with `isBase64Encoded`.
    """
    url = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, raw in headers:
        key, value = name.lower(), raw.strip(" \t")
        if key == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
        elif key not in _HOP_BY_HOP:
            merged[key] = f"{merged[key]},{value}" if key in merged else value
    host = merged.get("host", "localhost")
    if body:
        merged["content-length"] = str(len(body))
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    now = datetime.now(UTC)
    request_id = request_id or base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host.split(":")[0],
            "domainPrefix": host.split(".")[0].split(":")[0],
            "http": {
                "method": method.upper(),
                "path": url.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if url.query:
        params: dict[str, str] = {}
        for pair in url.query.split("&"):
            name, _, value = pair.partition("=")
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if body:
        if _is_text(merged.get("content-type"), body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def response_parts(result: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (cookies as Set-Cookie) and body of a Lambda proxy response (payload 2.0)."""
    status = int(result.get("statusCode", 200))
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items() if k.lower() not in _HOP_BY_HOP]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return status, headers, body


class LambdaContainer:
    """One warm container: every invocation runs on the same thread and event loop, one at a time."""

    def __init__(self, handler: LambdaHandler) -> None:
        self.handler = handler
        self.invocations = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lambda-container", initializer=self._init_thread
        )

    @staticmethod
    def _init_thread() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())

    def _invoke(self, event: dict[str, Any], function_timeout: float) -> dict[str, Any]:
        self.invocations += 1
        context = LambdaContext.for_invocation(FUNCTION_NAME, function_timeout)
        return self.handler(event, context)

    def invoke(
        self,
        event: dict[str, Any],
        *,
        timeout: float | None = API_TIMEOUT_SECONDS,
        function_timeout: float = FUNCTION_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Run the handler on the container thread; raises `TimeoutError` after API Gateway's limit."""
        return self._executor.submit(self._invoke, event, function_timeout).result(timeout=timeout)

    def close(self) -> None:
        """Stop the parked session manager and close the container's event loop."""

        def shutdown() -> None:
            loop = asyncio.get_event_loop()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

        with contextlib.suppress(Exception):
            self._executor.submit(shutdown).result(timeout=10)
        self._executor.shutdown(wait=True)


class ApiGatewayFront(StandInHTTPServer):
    """HTTP on `address` in front of `container`; `start()` serves on a daemon thread, `stop()` ends it.

    The port is bound on construction, so a handler whose environment names its own URL can be made before
    `container` is set and serving starts."""

    container: LambdaContainer

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _FrontHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> ApiGatewayFront:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="apigw-front")
        thread.daemon = True
        thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _FrontHandler(BaseHTTPRequestHandler):
    """API Gateway's part: HTTP request -> event -> handler -> HTTP response."""

    protocol_version = "HTTP/1.1"
    server: ApiGatewayFront

    def log_message(self, format: str, *args: object) -> None:  # the function logs each request itself
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self._send(413, [("content-type", "application/json")], b'{"message":"Request Entity Too Large"}')
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        event = http_api_event(
            self.command, self.path, list(self.headers.items()), body, source_ip=self.client_address[0]
        )
        try:
            result = self.server.container.invoke(event)
        except TimeoutError:
            self._send(503, [("content-type", "application/json")], b'{"message":"Service Unavailable"}')
            return
        except Exception:
            self._send(500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}')
            return
        if len(json.dumps(result, default=str)) > LAMBDA_RESPONSE_BYTES:  # Lambda fails the invocation itself
            print(f"Lambda response over {LAMBDA_RESPONSE_BYTES:,} bytes: answered 500", file=sys.stderr)
            self._send(500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}')
            return
        status, headers, payload = response_parts(result)
        self._send(status, headers, payload)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.send_header("apigw-requestid", "local")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _serve
