"""ASGI pieces that adapt the SDK's Streamable HTTP app to Lambda.

A plain `Mangum(app)` fails every warm invocation ("run() can only be called once per instance": Mangum runs the
lifespan on each call), and `lifespan="off"` alone fails with "Task group is not initialized" (python-sdk
issue #3121, Mangum issue #342). Hence:

* `OncePerLoop` enters the session manager's `run()` once per event loop, in a task parked on that loop, so warm
  invocations reuse it (Mangum >= 0.21 keeps one loop per container). If it finds a different running loop, it
  builds a fresh app and manager, which `run()` requires (it may be entered once per instance).
* `HttpGuard` answers what Lambda cannot or should not pass to the SDK: `GET /mcp` (no standalone SSE stream on a
  stateless, buffered deployment) with 405, and bodies over the limit with 413 and a JSON-RPC error body, before
  anything else (auth included) runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from gpt_image_mcp.aws.limits import MAX_REQUEST_BYTES

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

INVALID_REQUEST = -32600


class SessionManager(Protocol):
    def run(self) -> AbstractAsyncContextManager[None]: ...


class OncePerLoop:
    """Build the app lazily and keep its session manager running on the current event loop."""

    def __init__(self, build: Callable[[], tuple[ASGIApp, SessionManager]]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holder: asyncio.Task[None] | None = None
        self.builds = 0

    async def _start(self) -> None:
        app, manager = self._build()
        self.builds += 1
        ready = asyncio.Event()

        async def hold() -> None:
            async with manager.run():  # MCPServer lifespan + the manager's task group
                ready.set()
                await asyncio.get_running_loop().create_future()  # parked until the loop goes away

        self._loop = asyncio.get_running_loop()
        self._holder = self._loop.create_task(hold(), name="mcp-session-manager")
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, self._holder}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            holder, self._holder = self._holder, None
            holder.result()  # re-raise the start-up failure
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            self._holder is None or self._holder.done() or self._loop is not asyncio.get_running_loop()
        ):
            await self._start()
        assert self._app is not None
        await self._app(scope, receive, send)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def jsonrpc_error(message: str, code: int = INVALID_REQUEST, request_id: Any = None) -> bytes:
    """A JSON-RPC error response body, for errors raised before the request is parsed."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}).encode()


class HttpGuard:
    """405 for `GET {mcp_path}`, 413 for bodies over `max_body_bytes`; everything else goes to `app`."""

    def __init__(self, app: ASGIApp, *, mcp_path: str = "/mcp", max_body_bytes: int = MAX_REQUEST_BYTES):
        self.app = app
        self.mcp_path = mcp_path
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "GET" and scope["path"].rstrip("/") == self.mcp_path:
            body = b"Method Not Allowed: this server is stateless and has no GET stream; POST JSON-RPC messages."
            await _respond(send, 405, body, [(b"allow", b"POST, DELETE"), (b"content-type", b"text/plain")])
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, int(declared))
            return
        # Read the whole body (Mangum hands it over in one message), counting as it comes.
        chunks: list[bytes] = []
        size = 0
        more = True
        trailing: list[Message] = []
        while more:
            message = await receive()
            if message["type"] != "http.request":
                trailing.append(message)
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send, size)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}, *trailing]

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)

    async def _too_large(self, send: Send, size: int) -> None:
        message = (
            f"Request body too large: {size:,} bytes; this server accepts at most {self.max_body_bytes:,}. Send big "
            "input images through create_upload_url and reference_image_path instead of base64."
        )
        await _respond(send, 413, jsonrpc_error(message), [(b"content-type", b"application/json")])
