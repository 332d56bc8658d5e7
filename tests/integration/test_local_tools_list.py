"""The local server's `tools/list`, pinned (tests/tools_listing.py), in both protocol eras."""

from __future__ import annotations

import pytest
from mcp import Client
from tools_listing import assert_pinned, listing

pytestmark = pytest.mark.anyio


async def test_the_local_tools_are_listed_as_pinned(client: Client) -> None:
    assert_pinned(await listing(client), "tools_list.local.json")
