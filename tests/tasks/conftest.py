"""Fixtures for the tasks tests: the local server as `gpt-image-mcp` builds it, with a short task poll interval.

`task_server` reaches the store and the emulator behind it (tests/conftest.py). `other_user_server` is the same
server for another user over the same stores, as two callers of one remote deployment are.
"""

from __future__ import annotations

import pytest
from mcp.server.mcpserver import MCPServer
from task_support import OTHER_USER, POLL_MS

from local_sandbox.local_server import LocalParts, build_local_server


@pytest.fixture
def task_server(parts: LocalParts) -> MCPServer:
    return build_local_server(parts, task_poll_interval_ms=POLL_MS)


@pytest.fixture
def other_user_server(parts: LocalParts) -> MCPServer:
    return build_local_server(parts, user=OTHER_USER, task_poll_interval_ms=POLL_MS)
