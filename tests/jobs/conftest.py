"""Fixtures for the job tests: a server with the job tools (the store, runner and `jobs` are in tests/conftest.py).

The server is wired as `local_server.build_local_server` wires it, but from the shared `service` fixture,
so tests reach the store, the runner and the emulator behind it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.server.app import build_server
from gpt_image_mcp.server.job_tools import register_job_tools
from local_sandbox.job_runner import LocalJobRunner
from local_sandbox.local_server import LOCAL_USER


@pytest.fixture
def job_server(service: ImageService, jobs: JobService, runner: LocalJobRunner) -> MCPServer:
    server = build_server(service, current_user=lambda: LOCAL_USER, lifespan=lambda _server: runner.running(jobs))
    register_job_tools(server, jobs, lambda: LOCAL_USER)
    return server


@pytest.fixture
async def job_client(job_server: MCPServer) -> AsyncIterator[Client]:
    async with Client(job_server) as connected:
        yield connected
