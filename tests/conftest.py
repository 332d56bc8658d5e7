"""Shared fixtures: the OpenAI emulator on loopback, local settings in a temp folder, MCP clients.

The `openai` SDK talks to the emulator over real HTTP; MCP clients are the SDK's own `Client`, in
memory in both protocol eras (2026-07-28 "auto" and the 2025-11-25 "legacy" handshake). The server is built by
`local_sandbox.local_server`, as `gpt-image-mcp` builds it; `@pytest.mark.settings(**overrides)` replaces fields of
a test's settings, so everything built from them (parts, server, clients) uses them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from local_sandbox.job_runner import LocalJobRunner
from local_sandbox.local_server import LocalParts, build_local_server, build_parts
from local_sandbox.settings import LocalSettings
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

MODES = ["auto", "legacy"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**overrides): replace fields of the test's LocalSettings")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[EmulatorServer]:
    with EmulatorServer(detail="flat") as server:  # tiny pictures: the suite tests behaviour, not image sizes
        yield server


@pytest.fixture
def emulator(emulator_session: EmulatorServer) -> EmulatorServer:
    emulator_session.reset()
    emulator_session.set_latency(0)
    return emulator_session


@pytest.fixture
def settings(tmp_path: Path, emulator: EmulatorServer, request: pytest.FixtureRequest) -> LocalSettings:
    base = LocalSettings(
        openai_api_key="sk-test",
        openai_base_url=emulator.base_url,
        output_dir=tmp_path / "out",
        input_dir=tmp_path / "out",
        history_db_path=tmp_path / "state" / "history.db",
        request_timeout=30.0,
        max_retries=2,
    )
    marker = request.node.get_closest_marker("settings")
    return base.model_copy(update=marker.kwargs) if marker else base


@pytest.fixture
async def parts(settings: LocalSettings) -> AsyncIterator[LocalParts]:
    """What the local server is built from, as `gpt-image-mcp` builds it (a shorter job poll: quicker cancels)."""
    built = build_parts(settings, poll_seconds=0.05)
    yield built
    await built.service.client.aclose()
    built.store.close()


@pytest.fixture
def service(parts: LocalParts) -> ImageService:
    return parts.service


@pytest.fixture
def job_store(parts: LocalParts) -> SQLiteJobStore:
    return parts.store


@pytest.fixture
def runner(parts: LocalParts) -> LocalJobRunner:
    return parts.runner


@pytest.fixture
def jobs(parts: LocalParts) -> JobService:
    """Jobs over the test's history database, run by the in-process pool (the server's lifespan runs it)."""
    return parts.jobs


@pytest.fixture
def server(parts: LocalParts) -> MCPServer:
    """The local server, as `gpt-image-mcp` builds it."""
    return build_local_server(parts)


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, server: MCPServer) -> AsyncIterator[Client]:
    async with Client(server, mode=request.param) as connected:
        yield connected
