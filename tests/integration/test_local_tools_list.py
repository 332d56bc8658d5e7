"""The local server's `tools/list`, pinned (tests/tools_listing.py), in both protocol eras."""

from __future__ import annotations

import pytest
from mcp import Client
from tools_listing import assert_pinned, listing

from local_sandbox.local_server import build_local_server
from local_sandbox.settings import LocalSettings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_local_tools_are_listed_as_pinned(settings: LocalSettings, mode: str) -> None:
    async with Client(build_local_server(settings), mode=mode) as client:
        assert_pinned(await listing(client), "tools_list.local.json")
