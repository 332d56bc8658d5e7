"""Remote-shape fixtures: one `RemoteShape` (moto + emulator + API Gateway stand-in) per test session, direct Lambda
containers for handler-level tests, API GW v2 event builders for both protocol eras, and SDK clients over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mcp import Client
from remote_support import MODES, Events, mcp_client

from gpt_image_mcp.entry.lambda_mcp import McpFunction
from local_sandbox.standins.api_gateway import LambdaContainer
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shape() -> Iterator[RemoteShape]:
    with RemoteShape(link_expiry_seconds=900) as running:
        yield running


@pytest.fixture
def emulator(shape: RemoteShape) -> EmulatorServer:
    shape.emulator.reset()
    shape.emulator.set_latency(0)
    return shape.emulator


@pytest.fixture(scope="session")
def function(shape: RemoteShape) -> McpFunction:
    """A second instance of the MCP function (another container), invoked directly with events (no HTTP front)."""
    return McpFunction(shape.env)


@pytest.fixture(scope="session")
def container(function: McpFunction) -> Iterator[LambdaContainer]:
    running = LambdaContainer(function)
    yield running
    running.close()


@pytest.fixture(scope="session")
def host(shape: RemoteShape) -> str:
    return shape.mcp_url.split("/")[2]


@pytest.fixture(scope="session")
def events(shape: RemoteShape, host: str) -> Events:
    return Events(host, shape.token)


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, shape: RemoteShape) -> AsyncIterator[Client]:
    async with mcp_client(shape, shape.token, request.param) as connected:
        yield connected
