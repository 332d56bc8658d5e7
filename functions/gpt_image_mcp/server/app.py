"""The MCP server: tool definitions, thin handlers over `ImageService`, and result formatting.

Imports run one way: entry points -> server.app -> core. The caller's identity comes from a
`current_user` callable (locally a constant; remotely the verified token's subject), never from a
tool argument, so no call can name another user's data.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context, Extension, MCPServer
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent, ToolAnnotations

from gpt_image_mcp import __version__
from gpt_image_mcp.core.handoff import CallPolicy, DirectCalls, Handoff
from gpt_image_mcp.core.planning import ToolName
from gpt_image_mcp.core.requests import (
    EditImageArgs,
    GenerateImageArgs,
    GetHistoryArgs,
    GetMetadataArgs,
    ImageToolArgs,
    ListGeneratedImagesArgs,
    ListHistoryArgs,
    TransformImageArgs,
)
from gpt_image_mcp.core.results import (
    HistoryDetail,
    HistoryListResult,
    HistorySummary,
    ImageListResult,
    ImageToolResult,
    ListedImageInfo,
    MetadataCheck,
)
from gpt_image_mcp.core.service import ImageOutcome, ImageService
from gpt_image_mcp.server.tooling import add_model_tool

INSTRUCTIONS = (
    "Create and edit images with OpenAI's GPT image models. generate_image makes images from text; edit_image "
    "changes part of an image (mask: transparent = change here); transform_image restyles whole images. Results "
    "give file locations and links, cost and a history id. For slow work (high quality, many images) prefer the "
    "job tools when they are listed. list_history and get_history_by_uuid recall earlier calls."
)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def summarize(result: ImageToolResult) -> str:
    """The short human text of an image result: where, what it cost, the history id."""
    count = len(result.images)
    lines = [f"Saved {count} image{'s' if count != 1 else ''} ({result.model}, {result.size}, {result.quality}):"]
    lines += [
        f"- {image.location} ({image.width}x{image.height} {image.format}, {image.bytes / 1024:.0f} KB)"
        for image in result.images
    ]
    if result.cost is not None:
        approx = "≈ " if result.cost.estimated else ""
        lines.append(
            f"Cost: {approx}${result.cost.total:.4f} (image output ${result.cost.image_output:.4f}, text input "
            f"${result.cost.text_input:.4f}, image input ${result.cost.image_input:.4f})"
        )
    if result.usage is not None:
        lines.append(
            f"Tokens: {result.usage.input_text_tokens:,} text in, {result.usage.input_image_tokens:,} image in, "
            f"{result.usage.output_tokens:,} out"
        )
    lines.append(f"History id: {result.history_id}")
    lines += [f"Note: {warning}" for warning in result.warnings]
    return "\n".join(lines)


def image_result(outcome: ImageOutcome) -> CallToolResult:
    """Text + resource links (+ thumbnails, + full images when asked and small enough) + structured content."""
    result = outcome.result
    content: list[ContentBlock] = [TextContent(text=summarize(result))]
    for image in result.images:
        content.append(
            ResourceLink(
                name=image.path.rsplit("/", 1)[-1],
                uri=image.link,
                mime_type=image.mime_type,
                size=image.bytes,
                description=image.location,
            )
        )
    content += [
        ImageContent(data=base64.b64encode(t).decode("ascii"), mime_type="image/jpeg") for t in outcome.thumbnails
    ]
    content += [ImageContent(data=base64.b64encode(d).decode("ascii"), mime_type=m) for d, m in outcome.inline]
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


def handoff_result(handoff: Handoff, args: ImageToolArgs) -> CallToolResult:
    """The answer of a call that continues as a background job: which job, why, and how to follow it."""
    record = handoff.record
    text = (
        f"This {record.tool_name} call continues as background job {record.job_id}: {handoff.why}. Nothing is lost "
        f"and it is charged once. Follow it with check_job_status, then get_job_result (job_id '{record.job_id}')."
    )
    result = ImageToolResult(
        status="continues_as_job",
        job_id=record.job_id,
        history_id=None,
        tool=record.tool_name,
        model=args.model or "",
        prompt=args.prompt,
        size=args.size,
        quality=args.quality,
        output_format=args.output_format,
        images=[],
        usage=None,
        cost=None,
    )
    return structured(text, result)


def structured(text: str, model: Any) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], structured_content=model.model_dump(mode="json"))


def build_server(
    service: ImageService,
    current_user: Callable[[], str],
    *,
    name: str = "gpt-image-mcp",
    safety_identifier: Callable[[str], str | None] = lambda user: None,
    extensions: Sequence[Extension] | None = None,
    calls: CallPolicy | None = None,
    **server_options: Any,
) -> MCPServer:
    """An MCPServer with the image and library tools, registered in a stable order.

    `calls` decides how an image call runs and when it continues as a background job (`core.handoff`);
    by default it runs in the request.
    """
    policy = calls or DirectCalls(service)
    server = MCPServer(name, version=__version__, instructions=INSTRUCTIONS, extensions=extensions, **server_options)

    def image_handler(tool: ToolName) -> Any:
        async def handle(args: ImageToolArgs, ctx: Context) -> CallToolResult:
            user = current_user()

            async def progress(fraction: float, message: str) -> None:
                await ctx.report_progress(fraction, 1.0, message)

            outcome = await policy.run(user, tool, args, progress=progress, safety_identifier=safety_identifier(user))
            if isinstance(outcome, Handoff):
                return handoff_result(outcome, args)
            return image_result(outcome)

        return handle

    add_model_tool(
        server,
        "generate_image",
        GenerateImageArgs,
        image_handler("generate_image"),
        title="Generate image",
        annotations=WRITES,
        output=ImageToolResult,
        description="Create images from a text prompt with a GPT image model and save them.",
    )
    add_model_tool(
        server,
        "edit_image",
        EditImageArgs,
        image_handler("edit_image"),
        title="Edit image (inpainting)",
        annotations=WRITES,
        output=ImageToolResult,
        description=(
            "Change part of a reference image as the prompt says. An optional mask PNG marks the area "
            "to change with fully transparent pixels. Several reference images may be given."
        ),
    )
    add_model_tool(
        server,
        "transform_image",
        TransformImageArgs,
        image_handler("transform_image"),
        title="Transform image",
        annotations=WRITES,
        output=ImageToolResult,
        description="Restyle or reinterpret reference image(s) as a whole, e.g. 'as an oil painting'.",
    )

    async def list_generated_images(args: ListGeneratedImagesArgs, ctx: Context) -> CallToolResult:
        listed = await anyio.to_thread.run_sync(service.images.list_images, current_user(), args.directory, args.limit)
        images = [
            ListedImageInfo(path=i.key, location=i.location, link=i.link, bytes=i.size_bytes, modified=i.modified)
            for i in listed
        ]
        lines = [f"{len(images)} image(s), newest first:"]
        lines += [f"- {i.location} ({i.bytes / 1024:.0f} KB, {i.modified})" for i in images]
        return structured(
            "\n".join(lines), ImageListResult(directory=args.directory or "", count=len(images), images=images)
        )

    async def list_history(args: ListHistoryArgs, ctx: Context) -> CallToolResult:
        user = current_user()
        page = await anyio.to_thread.run_sync(
            lambda: service.history.search(
                user, limit=args.limit, offset=args.offset, tool_name=args.tool_name, query=args.query or None
            )
        )
        records = [
            HistorySummary(
                uuid=r.uuid,
                created_at=r.created_at,
                tool_name=r.tool_name,
                model=r.model,
                prompt=r.prompt,
                image_count=len(r.images),
                paths=[i.location for i in r.images],
                cost_usd=(r.cost or {}).get("total"),
            )
            for r in page.records
        ]
        shown = f"{args.offset + 1}-{args.offset + len(records)}" if records else "none"
        lines = [f"History: {page.total} record(s); showing {shown}."]
        lines += [
            f"- {r.created_at} {r.tool_name} [{r.uuid}] {r.prompt[:80]!r} -> {r.image_count} image(s)" for r in records
        ]
        return structured(
            "\n".join(lines), HistoryListResult(total=page.total, offset=args.offset, limit=args.limit, records=records)
        )

    async def get_history_by_uuid(args: GetHistoryArgs, ctx: Context) -> CallToolResult:
        record = await service.get_history(current_user(), args.uuid)
        detail = HistoryDetail(
            uuid=record.uuid,
            created_at=record.created_at,
            tool_name=record.tool_name,
            model=record.model,
            prompt=record.prompt,
            parameters=record.parameters,
            param_hash=record.param_hash,
            images=[asdict(i) for i in record.images],
            usage=record.usage,
            cost=record.cost,
        )
        files = ", ".join(i.location for i in record.images)
        text = f"{record.created_at} {record.tool_name} with {record.model}: {record.prompt!r}\nFiles: {files}"
        return structured(text, detail)

    async def get_metadata_from_image(args: GetMetadataArgs, ctx: Context) -> CallToolResult:
        check = await service.check_metadata(current_user(), args.image_path, args.image_base64)
        lines = [f"{check.status}: {check.detail}"] + [f"{k}: {v}" for k, v in check.metadata.items()]
        return structured("\n".join(lines), check)

    add_model_tool(
        server,
        "list_generated_images",
        ListGeneratedImagesArgs,
        list_generated_images,
        title="List generated images",
        annotations=READS,
        output=ImageListResult,
        description="List saved images, newest first, with their locations and links.",
    )
    add_model_tool(
        server,
        "list_history",
        ListHistoryArgs,
        list_history,
        title="List history",
        annotations=READS,
        output=HistoryListResult,
        description="Browse earlier image calls, newest first, filtered by tool or by text in the prompt.",
    )
    add_model_tool(
        server,
        "get_history_by_uuid",
        GetHistoryArgs,
        get_history_by_uuid,
        title="Get history record",
        annotations=READS,
        output=HistoryDetail,
        description="Everything recorded about one image call: prompt, parameters, files, usage, cost.",
    )
    add_model_tool(
        server,
        "get_metadata_from_image",
        GetMetadataArgs,
        get_metadata_from_image,
        title="Read image metadata",
        annotations=READS,
        output=MetadataCheck,
        description="Read the metadata this server embeds in images and check it against history.",
    )
    return server
