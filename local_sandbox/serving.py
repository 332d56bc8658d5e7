"""Serving the local server on stdio or HTTP until the client leaves or SIGINT / SIGTERM arrives, then a clean stop.

A clean stop: the server's lifespan ends, so a running job is handed back (its lease released, its attempt not
counted) and the next start resumes it at once; the OpenAI connections are closed; no traceback; within a moment.

The SDK reads stdin in a worker thread that no signal can interrupt (it would hold the process until the next line
of input arrives), so a stdio server stopped by a signal leaves with `os._exit` once everything is closed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import anyio
from mcp.server.mcpserver import MCPServer

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_HTTP_SECONDS = 1  # open HTTP streams get this long to finish before they are cut


async def until_stopped(serve: Callable[[], Awaitable[None]]) -> signal.Signals | None:
    """Run `serve` until it returns (the client left) or a stop signal arrives; the signal, if one stopped it.

    Signals stay caught until the stop is complete, so a second Ctrl-C cannot interrupt the clean-up."""
    stopped: list[signal.Signals] = []
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with anyio.create_task_group() as group:

            async def run() -> None:
                await serve()
                group.cancel_scope.cancel()

            group.start_soon(run)
            async for received in signals:
                stopped.append(signal.Signals(received))
                log.info("%s: stopping", stopped[0].name)
                group.cancel_scope.cancel()
                break
    return stopped[0] if stopped else None


async def serve_http(server: MCPServer, host: str, port: int) -> None:
    """Streamable HTTP with uvicorn, as `MCPServer.run_streamable_http_async` runs it, with a bounded graceful stop."""
    import uvicorn

    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=server.settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_HTTP_SECONDS,
    )
    await uvicorn.Server(config).serve()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def warn_if_exposed(host: str) -> None:
    """The local HTTP server has no authentication: say so when it listens beyond this machine."""
    if not is_loopback(host):
        log.warning(
            "serving on %s: the local HTTP server has no authentication; anyone who can reach this address can make "
            "images with your key and read your image folder (keep to 127.0.0.1, or deploy the remote mode)",
            host,
        )


def run(server: MCPServer, transport: str, host: str, port: int) -> signal.Signals | None:
    """Serve on `transport` ("stdio" or "http") until the client leaves or a stop signal arrives; the signal that
    stopped a stdio server (uvicorn stops an HTTP server on its own)."""
    if transport == "stdio":
        return anyio.run(until_stopped, server.run_stdio_async)
    warn_if_exposed(host)
    # uvicorn catches SIGINT and SIGTERM while it serves, stops, then raises them again: by then all is done.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    anyio.run(serve_http, server, host, port)
    return None


def leave() -> None:
    """End a stdio server stopped by a signal, everything closed: the stdin reader thread cannot be stopped."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
