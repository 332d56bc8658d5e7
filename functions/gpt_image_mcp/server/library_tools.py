"""The caller's library: saved images, the history of calls, and the metadata embedded in a file. All read-only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from gpt_image_mcp.core.requests import GetHistoryArgs, GetMetadataArgs, ListGeneratedImagesArgs, ListHistoryArgs
from gpt_image_mcp.core.results import (
    CostInfo,
    HistoryDetail,
    HistoryListResult,
    HistorySummary,
    ImageListResult,
    ListedImageInfo,
    MetadataCheck,
    UsageInfo,
)
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.replies import cost_lines, structured
from gpt_image_mcp.server.tooling import READS, ToolSpec


async def list_generated_images(tools: ToolContext, args: ListGeneratedImagesArgs, ctx: Context) -> CallToolResult:
    images_store = tools.service.images
    listed = await anyio.to_thread.run_sync(images_store.list_images, tools.current_user(), args.directory, args.limit)
    images = [
        ListedImageInfo(path=i.key, location=i.location, link=i.link, bytes=i.size_bytes, modified=i.modified)
        for i in listed
    ]
    lines = [f"{len(images)} image(s), newest first:"]
    lines += [f"- {i.location} ({i.bytes / 1024:.0f} KB, {i.modified})" for i in images]
    return structured(
        "\n".join(lines), ImageListResult(directory=args.directory or "", count=len(images), images=images)
    )


async def list_history(tools: ToolContext, args: ListHistoryArgs, ctx: Context) -> CallToolResult:
    user, history = tools.current_user(), tools.service.history
    page = await anyio.to_thread.run_sync(
        lambda: history.search(
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
    result = HistoryListResult(total=page.total, offset=args.offset, limit=args.limit, records=records)
    return structured("\n".join(lines), result)


async def get_history_by_uuid(tools: ToolContext, args: GetHistoryArgs, ctx: Context) -> CallToolResult:
    user = tools.current_user()
    record = await tools.service.get_history(user, args.uuid)
    links = await tools.service.fresh_links(user, [image.key for image in record.images])  # made now: links expire
    detail = HistoryDetail(
        uuid=record.uuid,
        created_at=record.created_at,
        tool_name=record.tool_name,
        model=record.model,
        prompt=record.prompt,
        parameters=record.parameters,
        param_hash=record.param_hash,
        images=[{**asdict(image), "link": link} for image, link in zip(record.images, links, strict=True)],
        usage=record.usage,
        cost=record.cost,
    )
    files = ", ".join(i.location for i in record.images)
    cost = CostInfo.model_validate(record.cost) if record.cost else None
    usage = UsageInfo.model_validate(record.usage) if record.usage else None
    lines = [f"{record.created_at} {record.tool_name} with {record.model}: {record.prompt!r}", f"Files: {files}"]
    return structured("\n".join([*lines, *cost_lines(cost, usage)]), detail)


async def get_metadata_from_image(tools: ToolContext, args: GetMetadataArgs, ctx: Context) -> CallToolResult:
    check = await tools.service.check_metadata(tools.current_user(), args.image_path, args.image_base64)
    lines = [f"{check.status}: {check.detail}"] + [f"{k}: {v}" for k, v in check.metadata.items()]
    return structured("\n".join(lines), check)


LIBRARY_TOOLS: tuple[ToolSpec[Any], ...] = (
    ToolSpec(
        name="list_generated_images",
        title="List generated images",
        description="List saved images, newest first, with their locations and links.",
        arguments=ListGeneratedImagesArgs,
        output=ImageListResult,
        annotations=READS,
        handler=list_generated_images,
    ),
    ToolSpec(
        name="list_history",
        title="List history",
        description="Browse earlier image calls, newest first, filtered by tool or by text in the prompt.",
        arguments=ListHistoryArgs,
        output=HistoryListResult,
        annotations=READS,
        handler=list_history,
    ),
    ToolSpec(
        name="get_history_by_uuid",
        title="Get history record",
        description="Everything recorded about one image call: prompt, parameters, files, usage, cost.",
        arguments=GetHistoryArgs,
        output=HistoryDetail,
        annotations=READS,
        handler=get_history_by_uuid,
    ),
    ToolSpec(
        name="get_metadata_from_image",
        title="Read image metadata",
        description="Read the metadata this server embeds in images and check it against history.",
        arguments=GetMetadataArgs,
        output=MetadataCheck,
        annotations=READS,
        handler=get_metadata_from_image,
    ),
)
