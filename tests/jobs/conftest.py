"""Fixtures for the job tests: the local server as `gpt-image-mcp` builds it (store, runner, `jobs` and `server`:
tests/conftest.py), and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer


@pytest.fixture
def job_server(server: MCPServer) -> MCPServer:
    return server


@pytest.fixture
async def job_client(job_server: MCPServer) -> AsyncIterator[Client]:
    async with Client(job_server) as connected:
        yield connected
