"""The remote server's `tools/list` through the API Gateway stand-in, pinned (tests/tools_listing.py)."""

from __future__ import annotations

import pytest
from mcp import Client
from tools_listing import assert_pinned, listing

pytestmark = pytest.mark.anyio


async def test_the_remote_tools_are_listed_as_pinned(client: Client) -> None:
    assert_pinned(await listing(client), "tools_list.remote.json")


async def test_remote_paths_are_described_as_keys_in_the_callers_space(client: Client) -> None:
    tools = await listing(client)
    path_parameters = ("output_path", "reference_image_path", "mask_image_path", "image_path", "directory")
    described = [
        (tool["name"], name, schema["description"])
        for tool in tools
        for name, schema in tool["inputSchema"]["properties"].items()
        if name in path_parameters
    ]
    assert len(described) >= 9
    for tool, name, description in described:
        assert "your space" in description or "your own image space" in description, (tool, name)
        assert "output folder" not in description and "input folder" not in description, (tool, name)
