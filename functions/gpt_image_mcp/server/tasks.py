"""MCP tasks (SEP-2663, `io.modelcontextprotocol/tasks`, protocol 2026-07-28) over the durable job store.

A slow image call can outlast the client's patience, an HTTP gateway's time limit (API Gateway: 30 s) and the
process that took it. A client that declares this extension on a `tools/call` of an image tool therefore gets a
task handle at once instead of the images: the call becomes a job (`JobService.start`: validated and planned
first, then written, then queued), and the task id is the job id. `tasks/get` reads the job back and, once it
completed, answers with exactly the tool result the synchronous call would have given; `tasks/cancel` is
`JobService.cancel`. So tasks are a second door into the same jobs the job tools show, with the same per-user
isolation, restart recovery and leases, and nothing task-specific is stored.

mcp 2.3.0 ships no tasks runtime; this is built on its extension seams (`Extension.intercept_tool_call`,
`MethodBinding`). Clients that do not declare the extension (2026 without it, or any 2025-era client) keep the
synchronous tools unchanged: the spec forbids a task handle to them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, cast

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolRequestParams, CallToolResult, RequestParams
from mcp.types.methods import serialize_server_result
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field, ValidationError

from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.requests import ARGS_BY_TOOL, ImageToolName, JobStatus
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.replies import error_result, image_result
from gpt_image_mcp.server.tooling import guarded, validate

log = logging.getLogger(__name__)

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TASK_TOOLS: tuple[ImageToolName, ...] = ("generate_image", "edit_image", "transform_image")
DEFAULT_POLL_INTERVAL_MS = 1000  # an image takes seconds to minutes; faster polling only costs requests
TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]

# A failed job is a tool call that ended in a refusal (moderation, upstream error, ...): the synchronous tool
# answers that with an is_error tool result, and SEP-2663 puts such a result in a *completed* task ("failed" is
# reserved for JSON-RPC errors, which these tools never raise). The task's result is that same is_error result.
TASK_STATUS: dict[JobStatus, TaskStatus] = {
    "pending": "working",
    "running": "working",
    "completed": "completed",
    "failed": "completed",
    "cancelled": "cancelled",
}

TaskId = Annotated[str, Field(min_length=1, max_length=200)]


class TaskIdParams(RequestParams):
    """Params of tasks/get and tasks/cancel (wire: `taskId`)."""

    task_id: TaskId


class UpdateTaskParams(TaskIdParams):
    """Params of tasks/update (wire: `taskId`, `inputResponses`)."""

    input_responses: dict[str, Any] = Field(default_factory=dict)


def status_message(record: JobRecord) -> str:
    """The progress text a poller shows: what the worker is doing and how far it got."""
    if record.status == "running":
        note = " (cancelling)" if record.cancel_requested else ""
        return f"{record.progress:.0%}: {record.message}{note}"
    if record.status == "failed" and record.error:
        return record.error
    return record.message


def unknown_task(action: str) -> MCPError:
    """The spec's answer for a task id that does not exist, expired, or belongs to another user (-32602)."""
    return MCPError(code=INVALID_PARAMS, message=f"Failed to {action} task: Task not found")


class TasksExtension(Extension):
    """Answer image tool calls from declaring clients with a task backed by a durable job.

    `context` is the tools' own (`server.context.ToolContext`): the same jobs, and the same caller, so a task id
    resolves only for the user who created it and another user's (unguessable) id gets the same -32602 as an id
    that never existed; a finished task's links are the tools' resource URIs. `ttl_ms` is what the
    job store promises to keep a job for (None: kept indefinitely, as locally; remotely, the jobs table's
    retention).
    """

    identifier = TASKS_EXTENSION

    def __init__(
        self,
        context: ToolContext,
        *,
        tools: Iterable[str] = TASK_TOOLS,
        poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS,
        ttl_ms: int | None = None,
    ) -> None:
        names = frozenset(tools)
        unknown = sorted(names - set(ARGS_BY_TOOL))
        if unknown:
            raise ValueError(f"only the image tools can run as tasks ({', '.join(ARGS_BY_TOOL)}); got {unknown}")
        self.jobs = context.jobs
        self.current_user = context.current_user
        self.resource_uri = context.resources.uri
        self.task_tools = names
        self.poll_interval_ms = poll_interval_ms
        self.ttl_ms = ttl_ms

    def methods(self) -> Sequence[MethodBinding]:
        # 2026-07-28 only: a 2025-era client gets METHOD_NOT_FOUND, as the extension does not exist there.
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=versions),
            MethodBinding("tasks/update", UpdateTaskParams, self._update, protocol_versions=versions),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=versions),
        ]

    # -- tools/call ---------------------------------------------------------------------------------

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if not self._answers_with_task(params, ctx):
            return await call_next(ctx)  # the synchronous tool, exactly as without this extension
        tool = cast(ImageToolName, params.name)
        try:
            args = validate(ARGS_BY_TOOL[tool], params.arguments or {})
        except (ValidationError, InvalidArgumentError):
            # The synchronous tool validates the same way before it does anything, so it refuses these arguments
            # too, in its own words: word for word the same result.
            return await call_next(ctx)

        async def start() -> JobRecord:
            # Inside `guarded`, like the synchronous handler: a caller without an identity is refused the same way.
            return await self.jobs.start(self.current_user(), tool, args)

        # `JobService.start` plans before it persists: a refusal (model, size, quality, references...) raises
        # here, becomes the synchronous tool's is_error result, and leaves no job behind. Otherwise the row is
        # committed when it returns, so the handle's `tasks/get` resolves.
        started = await guarded(start())
        if isinstance(started, CallToolResult):
            return started
        log.info("%s: task %s", tool, started.job_id)
        return {"resultType": "task", **self._task(started)}

    def _answers_with_task(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any]) -> bool:
        """Only for our tools, and only when this very request declared the extension at a version that has it."""
        if params.name not in self.task_tools or ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return False
        capabilities = ctx.session.client_capabilities
        return bool(capabilities and capabilities.extensions and TASKS_EXTENSION in capabilities.extensions)

    # -- tasks/* ------------------------------------------------------------------------------------

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        """A pure read. A finished task carries the tool result the synchronous call would have returned."""
        require_client_extension(ctx, TASKS_EXTENSION)
        try:
            record, outcome = await self.jobs.result(self.current_user(), params.task_id)
        except NotFoundError:
            raise unknown_task("retrieve") from None
        task = self._task(record)
        if outcome is not None:
            task["result"] = self._wire(image_result(outcome, self.resource_uri), ctx)
        elif record.status == "failed":
            task["result"] = self._wire(error_result(record.error or record.message), ctx)
        return {"resultType": "complete", **task}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        """Image jobs never ask for input (no task is ever `input_required`), so there is nothing to deliver:
        responses to keys that are not outstanding are ignored, as the spec asks, and the ack is empty."""
        require_client_extension(ctx, TASKS_EXTENSION)
        try:
            await self.jobs.status(self.current_user(), params.task_id)
        except NotFoundError:
            raise unknown_task("update") from None
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        """Cooperative, as the spec has it: a pending job is cancelled at once; a running one has its upstream
        request stopped before anything is saved. A task that already finished keeps its outcome (the ack
        promises nothing more; `tasks/get` shows how it ended)."""
        require_client_extension(ctx, TASKS_EXTENSION)
        try:
            await self.jobs.cancel(self.current_user(), params.task_id)
        except NotFoundError:
            raise unknown_task("cancel") from None
        except InvalidArgumentError as finished:
            log.info("tasks/cancel of a finished task: %s", finished.message)
        return {"resultType": "complete"}

    # -- wire shapes --------------------------------------------------------------------------------

    def _task(self, record: JobRecord) -> dict[str, Any]:
        return {
            "taskId": record.job_id,
            "status": TASK_STATUS[record.status],
            "statusMessage": status_message(record),
            "createdAt": record.created_at,
            "lastUpdatedAt": record.updated_at,
            "ttlMs": self.ttl_ms,
            "pollIntervalMs": self.poll_interval_ms,
        }

    @staticmethod
    def _wire(result: CallToolResult, ctx: ServerRequestContext[Any, Any]) -> dict[str, Any]:
        """The tool result as the SDK would put it on the wire for a synchronous `tools/call`."""
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return serialize_server_result("tools/call", ctx.protocol_version, dumped)
