"""Calling a tool the way every MCP test does: insist it worked or was refused, and read the text a user sees.

A module beside tests/conftest.py, so every test folder can import it (pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.types import CallToolResult, TextContent


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def succeeds(client: Client, tool: str, args: dict[str, Any]) -> CallToolResult:
    """Call `tool` and insist that it worked (the failure shows the tool's message)."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, text(result)
    return result


async def refused(client: Client, tool: str, args: dict[str, Any]) -> str:
    """Call `tool`, insist that it failed, and return the message the user sees."""
    result = await client.call_tool(tool, args)
    assert result.is_error, f"expected a refusal, got: {text(result)}"
    assert result.structured_content is None
    return text(result)
