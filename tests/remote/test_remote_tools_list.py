"""The remote server's `tools/list` through the API Gateway stand-in, pinned (tests/tools_listing.py)."""

from __future__ import annotations

import pytest
from mcp import Client
from tools_listing import assert_pinned, listing

pytestmark = pytest.mark.anyio


async def test_the_remote_tools_are_listed_as_pinned(client: Client) -> None:
    assert_pinned(await listing(client), "tools_list.remote.json")
