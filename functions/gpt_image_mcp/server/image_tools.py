"""generate_image, edit_image and transform_image: the reference's names and parameters, one handler for the three.

How a call runs, and when it continues as a background job instead, is the context's call policy (`core.handoff`).
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from gpt_image_mcp.core.handoff import Handoff
from gpt_image_mcp.core.planning import ToolName
from gpt_image_mcp.core.requests import EditImageArgs, GenerateImageArgs, ImageToolArgs, TransformImageArgs
from gpt_image_mcp.core.results import ImageToolResult
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.replies import handoff_result, image_result
from gpt_image_mcp.server.tooling import WRITES, ToolSpec


async def run_image_tool(tools: ToolContext, tool: ToolName, args: ImageToolArgs, ctx: Context) -> CallToolResult:
    """Run the call under the context's policy, reporting its progress to the client."""
    user = tools.current_user()

    async def progress(fraction: float, message: str) -> None:
        await ctx.report_progress(fraction, 1.0, message)

    outcome = await tools.calls.run(
        user, tool, args, progress=progress, safety_identifier=tools.safety_identifier(user)
    )
    if isinstance(outcome, Handoff):
        return handoff_result(outcome, args)
    return image_result(outcome, tools.resources.uri)


async def generate_image(tools: ToolContext, args: GenerateImageArgs, ctx: Context) -> CallToolResult:
    return await run_image_tool(tools, "generate_image", args, ctx)


async def edit_image(tools: ToolContext, args: EditImageArgs, ctx: Context) -> CallToolResult:
    return await run_image_tool(tools, "edit_image", args, ctx)


async def transform_image(tools: ToolContext, args: TransformImageArgs, ctx: Context) -> CallToolResult:
    return await run_image_tool(tools, "transform_image", args, ctx)


IMAGE_TOOLS: tuple[ToolSpec[Any], ...] = (
    ToolSpec(
        name="generate_image",
        title="Generate image",
        description="Create images from a text prompt with a GPT image model and save them.",
        arguments=GenerateImageArgs,
        output=ImageToolResult,
        annotations=WRITES,
        handler=generate_image,
    ),
    ToolSpec(
        name="edit_image",
        title="Edit image (inpainting)",
        description=(
            "Change part of a reference image as the prompt says. An optional mask PNG marks the area "
            "to change with fully transparent pixels. Several reference images may be given."
        ),
        arguments=EditImageArgs,
        output=ImageToolResult,
        annotations=WRITES,
        handler=edit_image,
    ),
    ToolSpec(
        name="transform_image",
        title="Transform image",
        description=(
            "Make a new image from reference image(s) and the prompt, with no mask: restyle, reinterpret or combine "
            "them (e.g. 'as an oil painting', 'the cat of the first image in the room of the second'). Any part of "
            "the picture may change; to change one area only, use edit_image with a mask."
        ),
        arguments=TransformImageArgs,
        output=ImageToolResult,
        annotations=WRITES,
        handler=transform_image,
    ),
)
