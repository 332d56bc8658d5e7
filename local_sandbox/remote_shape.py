"""The remote deployment's shape on one machine: moto for AWS, the images emulator for OpenAI, a stand-in API Gateway.

`gpt-image-mcp-remote` (or `RemoteShape` in Python) starts, all on loopback:

* moto's server (`ThreadedMotoServer`) with the template's bucket, queues and tables (`aws_resources`);
* the OpenAI images emulator;
* an HTTP front that turns each request into an API Gateway HTTP API (payload 2.0) event, invokes the real MCP
  Lambda handler code (`McpFunction`, what `lambda_mcp.handler` runs) on one worker thread — one warm container, as
  on Lambda — and writes the Lambda proxy response back (status, headers, cookies, base64 bodies).

It creates an API key for a demo user and prints the MCP URL, the bearer token and a `claude mcp add` line. Image
links are presigned URLs on moto's loopback server: they download with curl or a browser. Nothing leaves the machine;
AWS credentials are dummies and no real key is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from gpt_image_mcp.entry.lambda_mcp import LambdaHandler, McpFunction
from gpt_image_mcp.entry.lambda_worker import WorkerFunction
from local_sandbox.aws_resources import AwsClients, AwsNames, create_resources
from local_sandbox.emulator import EmulatorServer
from local_sandbox.lambda_context import ACCOUNT_ID, REGION, LambdaContext
from local_sandbox.sqs_driver import SqsDriver

API_ID = "local"
FUNCTION_NAME = "gpt-image-mcp-mcp"
FUNCTION_TIMEOUT_SECONDS = 29.0  # template.yaml, McpFunction.Timeout
API_TIMEOUT_SECONDS = 30.0  # API Gateway's integration timeout
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024  # synchronous invocation response limit
DEMO_USER = "demo-user"
REQUIRED_SCOPE = "gpt-image-mcp/images"
EMULATOR_KEY = "sk-emulator-remote-shape"
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
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

    Header names are lower-cased and repeated headers joined with commas; cookies move to `cookies`; a text body
    stays text, anything else is base64 with `isBase64Encoded`.
    """
    url = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
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


class _Front(ThreadingHTTPServer):
    daemon_threads = True

    container: LambdaContainer

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _FrontHandler)


class _FrontHandler(BaseHTTPRequestHandler):
    """API Gateway's part: HTTP request -> event -> handler -> HTTP response."""

    protocol_version = "HTTP/1.1"
    server: _Front

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


@dataclass(slots=True)
class RemoteShape:
    """Moto + emulator + API Gateway stand-in + the MCP function; `start()`/`stop()` or a `with` block."""

    host: str = "127.0.0.1"
    port: int = 0
    link_expiry_seconds: int = 3600
    demo_user: str = DEMO_USER
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    run_worker: bool = True  # drive the SQS worker from the queue, like the event source mapping does
    env: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    mcp_url: str = field(default="", init=False)
    token: str = field(default="", init=False, repr=False)
    emulator: EmulatorServer = field(init=False)
    function: McpFunction = field(init=False, repr=False)
    container: LambdaContainer = field(init=False)
    names: AwsNames | None = field(default=None, init=False)
    moto_url: str = field(default="", init=False)
    _moto: Any = field(default=None, init=False)
    _front: _Front | None = field(default=None, init=False)
    worker_driver: SqsDriver | None = field(default=None, init=False)
    _saved_env: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer

        from gpt_image_mcp.aws import clients

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log: one line per AWS call
        try:
            self._moto = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._moto.start()
            self.moto_url = "http://{}:{}".format(*self._moto.get_host_and_port())
            self._set_process_env({**AWS_ENV, "AWS_ENDPOINT_URL": self.moto_url})
            clients.reset_clients()
            # moto's state is per process: start from a clean one, then make the template's resources.
            reset = urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST")
            with urllib.request.urlopen(reset, timeout=10):
                pass
            self.names = create_resources(
                AwsClients(s3=clients.s3_client(), sqs=clients.sqs_client(), dynamodb=clients.dynamodb_client())
            )
            self.emulator = EmulatorServer(self.host).start()
            self._front = _Front((self.host, self.port))
            port = self._front.server_address[1]
            self.mcp_url = f"http://{self.host}:{port}/mcp"
            self.env = self.lambda_env(port)
            self.function = McpFunction(self.env)
            self.container = self._front.container = LambdaContainer(self.function)
            if self.run_worker:
                env = self.env
                self.worker_driver = SqsDriver(
                    clients.sqs_client(), self.names.queue_url, lambda: WorkerFunction(env)
                ).start()
            threading.Thread(
                target=self._front.serve_forever, kwargs={"poll_interval": 0.05}, name="apigw-front", daemon=True
            ).start()
            self.token = self.create_key(self.demo_user)
        except BaseException:
            self.stop()
            raise
        return self

    def lambda_env(self, port: int) -> dict[str, str]:
        """The MCP function's environment, as template.yaml sets it, pointed at the local stand-ins."""
        assert self.names is not None, "start() first"
        hosts = f"{self.host}:{port},localhost:{port}"
        return {
            **os.environ,
            **self.names.environment(),
            "LINK_EXPIRY_SECONDS": str(self.link_expiry_seconds),
            "MCP_ALLOWED_HOSTS": hosts,
            "MCP_RESOURCE_URL": f"http://{self.host}:{port}/mcp",
            "COGNITO_REQUIRED_SCOPE": REQUIRED_SCOPE,
            "OPENAI_API_KEY": EMULATOR_KEY,
            "OPENAI_BASE_URL": self.emulator.base_url,
            "MCP_REQUEST_STATE_KEY": secrets.token_hex(32),
            "POWERTOOLS_SERVICE_NAME": "gpt-image-mcp",
            **self.extra_env,
        }

    def create_key(self, user: str, scopes: Sequence[str] = ("images",)) -> str:
        """A new API key (bearer token) for `user`."""
        from gpt_image_mcp.aws import clients
        from gpt_image_mcp.aws.api_keys import ApiKeyStore

        assert self.names is not None, "start() first"
        plaintext, _ = ApiKeyStore(clients.dynamodb_client(), self.names.api_keys_table).create(user, list(scopes))
        return plaintext

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function directly with an event (bypassing the HTTP front)."""
        return self.container.invoke(event)

    def stop(self) -> None:
        driver, self.worker_driver = self.worker_driver, None
        if driver is not None:
            driver.stop()
        front, self._front = self._front, None
        if front is not None:
            front.shutdown()
            front.server_close()
        with contextlib.suppress(AttributeError):
            self.container.close()
        with contextlib.suppress(AttributeError):
            self.emulator.stop()
        moto, self._moto = self._moto, None
        if moto is not None:
            moto.stop()
        self._restore_process_env()

    def _set_process_env(self, values: Mapping[str, str]) -> None:
        """boto3 reads credentials and the endpoint from the process environment; restored by `stop()`."""
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ.pop(name, None)
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

    def _restore_process_env(self) -> None:
        saved, self._saved_env = self._saved_env, {}
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with contextlib.suppress(Exception):
            from gpt_image_mcp.aws import clients

            clients.reset_clients()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gpt-image-mcp-remote",
        description=(
            "Run the remote (AWS) shape of the MCP server on loopback: moto for S3/DynamoDB/SQS, the OpenAI images "
            "emulator, and an API Gateway stand-in in front of the Lambda handler. Nothing leaves this machine."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="port of the MCP endpoint; 0 picks a free one")
    parser.add_argument("--user", default=DEMO_USER, help=f"user id of the demo API key (default: {DEMO_USER})")
    parser.add_argument("--link-expiry", type=int, default=3600, help="presigned link lifetime in seconds")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with RemoteShape(port=args.port, link_expiry_seconds=args.link_expiry, demo_user=args.user) as shape:
        print(f"MCP URL:      {shape.mcp_url}", flush=True)
        print(f"Bearer token: {shape.token}  (user {shape.demo_user!r})", flush=True)
        print(
            f'Claude Code:  claude mcp add --transport http gpt-image-remote {shape.mcp_url} --header "Authorization: '
            f'Bearer {shape.token}"',
            flush=True,
        )
        print(f"AWS (moto):   {shape.moto_url}   OpenAI emulator: {shape.emulator.base_url}", flush=True)
        print(
            "Remote shape running on loopback (moto + emulator, not AWS or OpenAI); Ctrl-C stops it.", file=sys.stderr
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
