"""Fixtures for the tasks tests: servers with the tasks extension (store, runner, `jobs`: tests/conftest.py).

`task_server` is wired as `local_server.build_local_server` wires it, from the shared `service` fixture and with a
short poll interval, so tests reach the store and the emulator behind it. `other_user_server` is a second server
over the same stores for another user, as two callers of one remote deployment are.
"""

from __future__ import annotations

import pytest
from mcp.server.mcpserver import MCPServer
from task_support import OTHER_USER, POLL_MS

from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.server.app import build_server
from gpt_image_mcp.server.tasks import TasksExtension
from local_sandbox.job_runner import LocalJobRunner
from local_sandbox.local_server import LOCAL_USER


@pytest.fixture
def task_server(service: ImageService, jobs: JobService, runner: LocalJobRunner) -> MCPServer:
    return build_server(
        service,
        current_user=lambda: LOCAL_USER,
        lifespan=lambda _server: runner.running(jobs),
        extensions=[TasksExtension(jobs, lambda: LOCAL_USER, poll_interval_ms=POLL_MS)],
    )


@pytest.fixture
def other_user_server(service: ImageService, jobs: JobService) -> MCPServer:
    return build_server(
        service,
        current_user=lambda: OTHER_USER,
        extensions=[TasksExtension(jobs, lambda: OTHER_USER, poll_interval_ms=POLL_MS)],
    )
