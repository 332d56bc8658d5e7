"""Shared fixtures: the OpenAI emulator on loopback, local settings in a temp folder, MCP clients.

The `openai` SDK talks to the emulator over real HTTP; MCP clients are the SDK's own `Client`, in
memory in both protocol eras (2026-07-28 "auto" and the 2025-11-25 "legacy" handshake).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.server.app import build_server
from local_sandbox.job_runner import LocalJobRunner
from local_sandbox.local_server import LOCAL_USER, build_service
from local_sandbox.settings import LocalSettings
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

MODES = ["auto", "legacy"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def emulator(emulator_session: EmulatorServer) -> EmulatorServer:
    emulator_session.reset()
    emulator_session.set_latency(0)
    return emulator_session


@pytest.fixture
def settings(tmp_path: Path, emulator: EmulatorServer) -> LocalSettings:
    return LocalSettings(
        openai_api_key="sk-test",
        openai_base_url=emulator.base_url,
        output_dir=tmp_path / "out",
        input_dir=tmp_path / "out",
        history_db_path=tmp_path / "state" / "history.db",
        request_timeout=30.0,
        max_retries=2,
    )


@pytest.fixture
async def service(settings: LocalSettings) -> AsyncIterator[ImageService]:
    built = build_service(settings)
    yield built
    await built.client.aclose()


@pytest.fixture
def job_store(settings: LocalSettings) -> Iterator[SQLiteJobStore]:
    store = SQLiteJobStore(settings.history_db_path)
    yield store
    store.close()


@pytest.fixture
def runner(settings: LocalSettings) -> LocalJobRunner:
    return LocalJobRunner(concurrency=settings.job_concurrency)


@pytest.fixture
def jobs(service: ImageService, job_store: SQLiteJobStore, runner: LocalJobRunner) -> JobService:
    """Jobs over the test's history database, run by an in-process pool (start it with `runner.running(jobs)`)."""
    return JobService(service, job_store, runner, poll_seconds=0.05)


@pytest.fixture
def server(service: ImageService) -> MCPServer:
    return build_server(service, current_user=lambda: LOCAL_USER)


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, server: MCPServer) -> AsyncIterator[Client]:
    async with Client(server, mode=request.param) as connected:
        yield connected
