"""The async job tools, with the reference's names and parameters, as thin handlers over `JobService`.

Kept apart from `app.build_server` so a deployment adds them only where a worker runs the jobs:
`register_job_tools(build_server(...), jobs, current_user)`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.requests import JobIdArgs, ListJobsArgs, StartJobArgs
from gpt_image_mcp.core.results import JobInfo, JobListResult, JobResult
from gpt_image_mcp.server.app import READS, WRITES, image_result, structured
from gpt_image_mcp.server.tooling import add_model_tool

CANCELS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


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
        error=record.error,
        history_id=record.history_id,
    )


def describe(record: JobRecord) -> str:
    """One line a person can act on: id, tool, state, progress, and what comes next."""
    head = f"Job {record.job_id} ({record.tool_name}): {record.status}"
    if record.status == "running":
        note = " (cancelling)" if record.cancel_requested else ""
        return f"{head}, {record.progress:.0%}{note}: {record.message}. Created {_ago(record.created_at)}."
    if record.status == "pending":
        return f"{head}: {record.message}. get_job_result shows the images when it completes."
    if record.status == "completed":
        return f"{head}. History id: {record.history_id}. get_job_result shows the images."
    if record.status == "failed":
        return f"{head}: {record.error}"
    return f"{head}: {record.message}."


def _ago(iso: str) -> str:
    try:
        seconds = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return iso
    return f"{max(seconds, 0):.0f} s ago"


def register_job_tools(server: MCPServer, jobs: JobService, current_user: Callable[[], str]) -> None:
    """Add start_generation_job, check_job_status, get_job_result, cancel_job and list_jobs, in that order."""

    def info_result(record: JobRecord, text: str | None = None) -> CallToolResult:
        return structured(text or describe(record), job_info(record))

    async def start_generation_job(args: StartJobArgs, ctx: Context) -> CallToolResult:
        record = await jobs.start(current_user(), args.tool_name, args.tool_args())
        text = (
            f"Started job {record.job_id} ({record.tool_name}). It runs in the background: check_job_status "
            "shows its progress, get_job_result the images when it completes."
        )
        return info_result(record, text)

    async def check_job_status(args: JobIdArgs, ctx: Context) -> CallToolResult:
        return info_result(await jobs.status(current_user(), args.job_id))

    async def get_job_result(args: JobIdArgs, ctx: Context) -> CallToolResult:
        record, outcome = await jobs.result(current_user(), args.job_id)
        if outcome is None:
            return structured(describe(record), JobResult(job=job_info(record), result=None))
        reply = image_result(outcome)  # the same text, links and previews as the image tool itself
        reply.content.insert(0, TextContent(text=f"Job {record.job_id} ({record.tool_name}) completed."))
        reply.structured_content = JobResult(job=job_info(record), result=outcome.result).model_dump(mode="json")
        return reply

    async def cancel_job(args: JobIdArgs, ctx: Context) -> CallToolResult:
        record = await jobs.cancel(current_user(), args.job_id)
        if record.status == "cancelled":
            return info_result(record, f"Job {record.job_id} cancelled: {record.message}.")
        return info_result(
            record,
            f"Job {record.job_id}: cancellation requested; the worker stops it before anything is saved "
            "(check_job_status confirms).",
        )

    async def list_jobs(args: ListJobsArgs, ctx: Context) -> CallToolResult:
        page = await jobs.list(
            current_user(), status=args.status, tool_name=args.tool_name, limit=args.limit, offset=args.offset
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

    add_model_tool(
        server,
        "start_generation_job",
        StartJobArgs,
        start_generation_job,
        title="Start image job",
        annotations=WRITES,
        output=JobInfo,
        description=(
            "Run generate_image, edit_image or transform_image in the background and return a job id at once. "
            "Give tool_name and that tool's parameters. Use it for slow work (high quality, large sizes, many "
            "images); the job survives a server restart."
        ),
    )
    add_model_tool(
        server,
        "check_job_status",
        JobIdArgs,
        check_job_status,
        title="Check job status",
        annotations=READS,
        output=JobInfo,
        description="Status and progress of a background job: pending, running, completed, failed or cancelled.",
    )
    add_model_tool(
        server,
        "get_job_result",
        JobIdArgs,
        get_job_result,
        title="Get job result",
        annotations=READS,
        output=JobResult,
        description="The images of a completed job (locations, links, cost, history id), or where the job stands.",
    )
    add_model_tool(
        server,
        "cancel_job",
        JobIdArgs,
        cancel_job,
        title="Cancel job",
        annotations=CANCELS,
        output=JobInfo,
        description=(
            "Cancel a pending or running job. A running job's request is stopped and nothing is saved or recorded."
        ),
    )
    add_model_tool(
        server,
        "list_jobs",
        ListJobsArgs,
        list_jobs,
        title="List jobs",
        annotations=READS,
        output=JobListResult,
        description="Your background jobs, newest first, filtered by status or tool.",
    )
