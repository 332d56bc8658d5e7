"""The `tools/list` a client sees, pinned in tests/golden/ (names, order, titles, descriptions, input and output
schemas, annotations), so a change to how tools are declared cannot change what clients see by accident.

A deliberate change: run the pinning tests with UPDATE_TOOLS_LIST=1 once, and review the diff of the JSON file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcp import Client

GOLDEN = Path(__file__).resolve().parent / "golden"


async def listing(client: Client) -> list[dict[str, Any]]:
    return [
        tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in (await client.list_tools()).tools
    ]


def assert_pinned(tools: list[dict[str, Any]], name: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_TOOLS_LIST") == "1":
        path.write_text(json.dumps(tools, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    pinned = json.loads(path.read_text(encoding="utf-8"))
    assert [tool["name"] for tool in tools] == [tool["name"] for tool in pinned]
    for tool, expected in zip(tools, pinned, strict=True):
        assert tool == expected, tool["name"]
        for schema in ("inputSchema", "outputSchema"):  # clients show the parameters in the order listed
            order = list(tool.get(schema, {}).get("properties", {}))
            assert order == list(expected.get(schema, {}).get("properties", {})), (tool["name"], schema, order)
