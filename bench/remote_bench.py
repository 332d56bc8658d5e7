"""Timings of the MCP Lambda handler on the local remote shape (moto + OpenAI emulator, all loopback).

    .venv/bin/python bench/remote_bench.py [--calls 50]

Prints: the handler module's import time and its first invocation in a fresh interpreter (a cold container), then
p50/p95 of warm invocations with API Gateway v2 events, for `tools/list` and `generate_image` (quality low,
1024x1024, emulator without latency, so the figure is this server's own overhead: S3 put + presign, DynamoDB put,
metadata embedding; not OpenAI's generation time).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from gpt_image_mcp.entry.lambda_mcp import McpFunction
from local_sandbox.standins.api_gateway import LambdaContainer, http_api_event
from local_sandbox.standins.remote_shape import RemoteShape

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}

COLD = """
import json, sys, time
started = time.perf_counter()
from gpt_image_mcp.entry.lambda_mcp import handler
imported = time.perf_counter()
from local_sandbox.standins.lambda_context import LambdaContext
events = json.loads(sys.argv[1])
first = time.perf_counter()
status = handler(events[0], LambdaContext("cold", time.monotonic() + 29))["statusCode"]
done = time.perf_counter()
second = handler(events[1], LambdaContext("warm", time.monotonic() + 29))["statusCode"]
after = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1000, "first_ms": (done - first) * 1000,
                  "first_generate_ms": (after - done) * 1000, "statuses": [int(status), int(second)]}))
"""


def event(shape: RemoteShape, method: str, params: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    headers = {
        "host": shape.mcp_url.split("/")[2],
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {shape.token}",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
        **({"mcp-name": name} if name else {}),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}
    return http_api_event("POST", "/mcp", list(headers.items()), json.dumps(body).encode())


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null (the logger holds the stream, so swapping sys.stdout is not enough)."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def timings(calls: int, run: Callable[[], dict[str, Any]]) -> tuple[float, float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        response = run()
        samples.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200, response
        assert '"isError":true' not in response["body"], response["body"][:300]
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples), cuts[18]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    generate = {"name": "generate_image", "arguments": {"prompt": "bench", "quality": "low", "size": "1024x1024"}}
    with RemoteShape() as shape:
        tools_list = event(shape, "tools/list", {})
        generate_event = event(shape, "tools/call", generate, name="generate_image")
        child = subprocess.run(
            [sys.executable, "-c", COLD, json.dumps([tools_list, generate_event])],
            env={**shape.env, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        cold = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"cold container: import {cold['import_ms']:.0f} ms; first invocation (tools/list, builds everything) "
            f"{cold['first_ms']:.0f} ms; first generate_image {cold['first_generate_ms']:.0f} ms"
        )

        container = LambdaContainer(McpFunction(shape.env))
        results = []
        try:
            with quiet_stdout():  # the function logs one JSON line per invocation; keep the cost, drop the text
                container.invoke(tools_list)  # warm it up
                container.invoke(generate_event)
                for label, sample in (("tools/list", tools_list), ("generate_image", generate_event)):
                    results.append((label, *timings(args.calls, functools.partial(container.invoke, sample))))
        finally:
            container.close()
        for label, p50, p95 in results:
            print(f"warm {label:15s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   ({args.calls} calls, handler only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
