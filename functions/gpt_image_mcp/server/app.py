"""The MCP server: the tool table a deployment serves, bound to its `ToolContext`.

Imports run one way: entry points -> server.app -> server.*_tools -> server.tooling, server.replies -> core.
`LOCAL_TOOLS` and `REMOTE_TOOLS` are the two tables, in the order clients see; each tool is declared once, in its
module (`image_tools`, `library_tools`, `job_tools`, `remote_tools`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server.mcpserver import Extension, MCPServer

from gpt_image_mcp import __version__
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.image_tools import IMAGE_TOOLS
from gpt_image_mcp.server.job_tools import JOB_TOOLS
from gpt_image_mcp.server.library_tools import LIBRARY_TOOLS
from gpt_image_mcp.server.remote_tools import UPLOAD_TOOLS
from gpt_image_mcp.server.tooling import ToolSpec

INSTRUCTIONS = (
    "Create and edit images with OpenAI's GPT image models. generate_image makes images from text; edit_image "
    "changes part of an image (mask: transparent = change here); transform_image restyles whole images. Results "
    "give file locations and links, cost and a history id. For slow work (high quality, many images) prefer the "
    "job tools when they are listed. list_history and get_history_by_uuid recall earlier calls."
)
LOCAL_TOOLS: tuple[ToolSpec[Any], ...] = (*IMAGE_TOOLS, *LIBRARY_TOOLS, *JOB_TOOLS)
REMOTE_TOOLS: tuple[ToolSpec[Any], ...] = (*LOCAL_TOOLS, *UPLOAD_TOOLS)


def build_server(
    context: ToolContext,
    tools: Sequence[ToolSpec[Any]] = LOCAL_TOOLS,
    *,
    name: str = "gpt-image-mcp",
    extensions: Sequence[Extension] | None = None,
    **server_options: Any,
) -> MCPServer:
    """An MCPServer serving `tools`, in that order, each handler given `context`."""
    return MCPServer(
        name,
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=[spec.bind(context) for spec in tools],
        extensions=extensions,
        **server_options,
    )
