"""The async job tools, with the reference's names and parameters, as thin handlers over `JobService`."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations

from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.requests import JobIdArgs, ListJobsArgs, StartJobArgs
from gpt_image_mcp.core.results import JobInfo, JobListResult, JobResult
from gpt_image_mcp.core.stages import shows_preview
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.replies import describe_job, image_result, job_info, structured
from gpt_image_mcp.server.resources import JobPreviews
from gpt_image_mcp.server.tooling import READS, WRITES, ToolSpec

# Changes a job's state (the work is stopped, its result discarded); asking twice changes nothing more.
CANCELS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def info_result(tools: ToolContext, record: JobRecord, text: str | None = None) -> CallToolResult:
    return structured(text or describe_job(record, tools.clock()), job_info(record))


async def start_generation_job(tools: ToolContext, args: StartJobArgs, ctx: Context) -> CallToolResult:
    key = args.idempotency_key
    record = await tools.jobs.start(tools.current_user(), args.tool_name, args.tool_args(), idempotency_key=key)
    if key is not None:  # a new job or the one this key started before: say where it stands either way
        return info_result(tools, record, f"idempotency_key {key!r}: {describe_job(record, tools.clock())}")
    text = (
        f"Started job {record.job_id} ({record.tool_name}). It runs in the background: check_job_status "
        "shows its progress, get_job_result the images when it completes."
    )
    return info_result(tools, record, text)


async def check_job_status(tools: ToolContext, args: JobIdArgs, ctx: Context) -> CallToolResult:
    """The job's state; while it runs with a partial image kept, a link to that preview (`resources/read`)."""
    record = await tools.jobs.status(tools.current_user(), args.job_id)
    reply = info_result(tools, record)
    if record.status == "running" and shows_preview(record.message):
        reply.content.append(
            ResourceLink(
                name=f"{record.job_id} preview",
                uri=JobPreviews.uri(record.job_id),
                description="The latest partial image of this job, while it is being made.",
            )
        )
    return reply


async def get_job_result(tools: ToolContext, args: JobIdArgs, ctx: Context) -> CallToolResult:
    record, outcome = await tools.jobs.result(tools.current_user(), args.job_id)
    if outcome is None:
        return structured(describe_job(record, tools.clock()), JobResult(job=job_info(record), result=None))
    reply = image_result(outcome, tools.resources.uri)  # the same text, links and previews as the image tool itself
    reply.content.insert(0, TextContent(text=f"Job {record.job_id} ({record.tool_name}) completed."))
    reply.structured_content = JobResult(job=job_info(record), result=outcome.result).model_dump(mode="json")
    return reply


async def cancel_job(tools: ToolContext, args: JobIdArgs, ctx: Context) -> CallToolResult:
    record = await tools.jobs.cancel(tools.current_user(), args.job_id)
    if record.status == "cancelled":
        return info_result(tools, record, f"Job {record.job_id} cancelled: {record.message}.")
    return info_result(
        tools,
        record,
        f"Job {record.job_id}: cancellation requested; the worker stops it before anything is saved "
        "(check_job_status confirms).",
    )


async def list_jobs(tools: ToolContext, args: ListJobsArgs, ctx: Context) -> CallToolResult:
    page = await tools.jobs.list(
        tools.current_user(),
        status=args.status,
        tool_name=args.tool_name,
        background=None if args.include_synchronous else True,
        limit=args.limit,
        offset=args.offset,
    )
    shown = f"{args.offset + 1}-{args.offset + len(page.records)}" if page.records else "none"
    lines = [f"Jobs: {page.total}; showing {shown}, newest first."]
    lines += [
        f"- {r.created_at} [{r.job_id}] {r.tool_name} {r.status} ({r.progress:.0%}) {r.prompt[:60]!r}"
        for r in page.records
    ]
    result = JobListResult(
        total=page.total, offset=args.offset, limit=args.limit, jobs=[job_info(r) for r in page.records]
    )
    return structured("\n".join(lines), result)


JOB_TOOLS: tuple[ToolSpec[Any], ...] = (
    ToolSpec(
        name="start_generation_job",
        title="Start image job",
        description=(
            "Run generate_image, edit_image or transform_image in the background and return a job id at once. "
            "Give tool_name and that tool's parameters. Use it for slow work (high quality, large sizes, many "
            "images); the job survives a server restart."
        ),
        arguments=StartJobArgs,
        output=JobInfo,
        annotations=WRITES,
        handler=start_generation_job,
    ),
    ToolSpec(
        name="check_job_status",
        title="Check job status",
        description="Status and progress of a background job: pending, running, completed, failed or cancelled.",
        arguments=JobIdArgs,
        output=JobInfo,
        annotations=READS,
        handler=check_job_status,
    ),
    ToolSpec(
        name="get_job_result",
        title="Get job result",
        description="The images of a completed job (locations, links, cost, history id), or where the job stands.",
        arguments=JobIdArgs,
        output=JobResult,
        annotations=READS,
        handler=get_job_result,
    ),
    ToolSpec(
        name="cancel_job",
        title="Cancel job",
        description=(
            "Cancel a pending or running job. A running job's request is stopped and nothing is saved or recorded."
        ),
        arguments=JobIdArgs,
        output=JobInfo,
        annotations=CANCELS,
        handler=cancel_job,
    ),
    ToolSpec(
        name="list_jobs",
        title="List jobs",
        description=(
            "Your background jobs, newest first, filtered by status or tool; include_synchronous also lists the "
            "jobs recorded for synchronous image calls."
        ),
        arguments=ListJobsArgs,
        output=JobListResult,
        annotations=READS,
        handler=list_jobs,
    ),
)
