"""The MCP server: the tool table a deployment serves, bound to its `ToolContext`, and its images as resources.

Imports run one way: entry points -> server.app -> server.*_tools -> server.tooling, server.replies -> core.
`LOCAL_TOOLS` and `REMOTE_TOOLS` are the two tables, in the order clients see; each tool is declared once, in its
module (`image_tools`, `library_tools`, `job_tools`, `remote_tools`).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, BinaryIO

import anyio.to_thread
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, Extension, MCPServer
from mcp.server.stdio import stdio_server
from mcp.types import ListResourcesResult, PaginatedRequestParams, ResourceTemplate
from pydantic import AnyUrl

from gpt_image_mcp import __version__
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.image_tools import IMAGE_TOOLS
from gpt_image_mcp.server.job_tools import JOB_TOOLS
from gpt_image_mcp.server.library_tools import LIBRARY_TOOLS
from gpt_image_mcp.server.remote_tools import UPLOAD_TOOLS
from gpt_image_mcp.server.resources import JobPreviews, ResourceSpace
from gpt_image_mcp.server.tooling import ToolSpec

INSTRUCTIONS = (
    "Create and edit images with OpenAI's GPT image models. generate_image makes images from text; edit_image "
    "changes part of an image (mask: transparent = change here); transform_image makes a new image from reference "
    "images (restyle, reinterpret, combine). Results give file locations and links, cost and a history id. For slow "
    "work (high quality, many images) prefer the job tools when they are listed. list_history and "
    "get_history_by_uuid recall earlier calls."
)
LOCAL_TOOLS: tuple[ToolSpec[Any], ...] = (*IMAGE_TOOLS, *LIBRARY_TOOLS, *JOB_TOOLS)
REMOTE_TOOLS: tuple[ToolSpec[Any], ...] = (*LOCAL_TOOLS, *UPLOAD_TOOLS)


class StdinLines:
    """stdin, line by line, for the SDK's stdio transport, read so that a stop can abandon the pending read.

    The SDK's own reader waits in a worker thread that nothing can interrupt: a server told to stop would wait for
    the next line of input (in a terminal: for Enter) before it could close anything."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        while line := await anyio.to_thread.run_sync(self.stream.readline, abandon_on_cancel=True):
            yield line.decode("utf-8", errors="replace")


class ImageServer(MCPServer[Any]):
    """An MCPServer whose resources are the caller's images (`server.resources`), read, listed by page, and
    described by URI templates, and the latest partial images of the caller's running jobs. `MCPServer.list_resources`
    takes no cursor, so the paged listing answers `resources/list` itself; the stdio transport reads stdin with
    `StdinLines`, so it stops when it is told to."""

    def __init__(self, resources: ResourceSpace, previews: JobPreviews, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.images = resources
        self.previews = previews

    async def run_stdio_async(self) -> None:
        async with stdio_server(stdin=StdinLines(sys.stdin.buffer)) as (read_stream, write_stream):  # type: ignore[arg-type]
            server = self._lowlevel_server
            await server.run(read_stream, write_stream, server.create_initialization_options())

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents]:
        space = self.previews if JobPreviews.job_of(str(uri)) is not None else self.images
        return [await space.read(str(uri))]

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return [self.images.template(), JobPreviews.template()]

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        resources, cursor = await self.images.page(params.cursor if params else None)
        return ListResourcesResult(resources=resources, next_cursor=cursor)


def build_server(
    context: ToolContext,
    tools: Sequence[ToolSpec[Any]] = LOCAL_TOOLS,
    *,
    name: str = "gpt-image-mcp",
    extensions: Sequence[Extension] | None = None,
    wording: Mapping[str, str] | None = None,
    **server_options: Any,
) -> MCPServer:
    """An MCPServer serving `tools`, in that order, each handler given `context`, and the context's images as
    resources."""
    return ImageServer(
        context.resources,
        JobPreviews(context.jobs, context.current_user),
        name,
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=[spec.bind(context, wording) for spec in tools],
        extensions=extensions,
        **server_options,
    )
