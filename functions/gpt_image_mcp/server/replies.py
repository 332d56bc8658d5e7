"""What a tool call answers: the short text a person reads, and the structured content its output schema declares.

The image tools, the job tools and the tasks extension all answer through these builders, so a finished job or task
reads exactly like the synchronous call that made its images.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from gpt_image_mcp.core.handoff import Handoff
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.requests import ImageToolArgs
from gpt_image_mcp.core.results import CostInfo, ImageFile, ImageToolResult, JobInfo, UsageInfo
from gpt_image_mcp.core.service import ImageOutcome


def structured(text: str, model: BaseModel) -> CallToolResult:
    """The human text, and `model` as the structured content (the SDK checks it against the output schema)."""
    return CallToolResult(content=[TextContent(text=text)], structured_content=model.model_dump(mode="json"))


def error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)


def summarize(result: ImageToolResult) -> str:
    """The short human text of an image result: where, what it cost, the history id."""
    count = len(result.images)
    lines = [f"Saved {count} image{'s' if count != 1 else ''} ({result.model}, {result.size}, {result.quality}):"]
    lines += [
        f"- {image.location} ({image.width}x{image.height} {image.format}, {image.bytes / 1024:.0f} KB)"
        for image in result.images
    ]
    lines += cost_lines(result.cost, result.usage)
    lines.append(f"History id: {result.history_id}")
    lines += [f"Note: {warning}" for warning in result.warnings]
    return "\n".join(lines)


def cost_lines(cost: CostInfo | None, usage: UsageInfo | None) -> list[str]:
    """What a call cost and the tokens it used, when known."""
    lines = []
    if cost is not None:
        approx = "≈ " if cost.estimated else ""
        partials = f" incl. partial images ${cost.partial_images:.4f}" if cost.partial_images else ""
        lines.append(
            f"Cost: {approx}${cost.total:.4f} (image output ${cost.image_output:.4f}{partials}, text "
            f"input ${cost.text_input:.4f}, image input ${cost.image_input:.4f})"
        )
    if usage is not None:
        lines.append(
            f"Tokens: {usage.input_text_tokens:,} text in, {usage.input_image_tokens:,} image in, "
            f"{usage.output_tokens:,} out"
        )
    return lines


def image_result(outcome: ImageOutcome, resource_uri: Callable[[ImageFile], str]) -> CallToolResult:
    """Text + resource links (+ previews, + full images when asked and small enough) + structured content; each
    link's URI is what `resources/read` serves (`resource_uri`: server.resources)."""
    result = outcome.result
    content: list[ContentBlock] = [TextContent(text=summarize(result))]
    for image in result.images:
        content.append(
            ResourceLink(
                name=image.path.rsplit("/", 1)[-1],
                uri=resource_uri(image),
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


def job_info(record: JobRecord) -> JobInfo:
    return JobInfo(
        job_id=record.job_id,
        tool_name=record.tool_name,
        prompt=record.prompt,
        status=record.status,
        progress=record.progress,
        message=record.message,
        created_at=record.created_at,
        updated_at=record.updated_at,
        attempts=record.attempts,
        cancel_requested=record.cancel_requested,
        background=record.background,
        error=record.error,
        history_id=record.history_id,
    )


def describe_job(record: JobRecord, now: dt.datetime) -> str:
    """One line a person can act on: id, tool, state, progress, and what comes next."""
    head = f"Job {record.job_id} ({record.tool_name}): {record.status}"
    if record.status == "running":
        note = " (cancelling)" if record.cancel_requested else ""
        return f"{head}, {record.progress:.0%}{note}: {record.message}. Created {_ago(record.created_at, now)}."
    if record.status == "pending":
        return f"{head}: {record.message}. get_job_result shows the images when it completes."
    if record.status == "completed":
        return f"{head}. History id: {record.history_id}. get_job_result shows the images."
    if record.status == "failed":
        return f"{head}: {record.error}"
    return f"{head}: {record.message}."


def _ago(iso: str, now: dt.datetime) -> str:
    try:
        seconds = (now - dt.datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return iso
    return f"{max(seconds, 0):.0f} s ago"
